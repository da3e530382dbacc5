"""Fixtures shared by several test files; the values themselves live in tests/helpers.py."""

import pytest

from helpers import FAST, TINY_SPACE, tiny_config


@pytest.fixture
def tiny_space():
    """:data:`helpers.TINY_SPACE`."""
    return TINY_SPACE


@pytest.fixture
def fast_protocol():
    """:data:`helpers.FAST`, a timing protocol of milliseconds."""
    return FAST


@pytest.fixture
def make_tiny_config():
    """:func:`helpers.tiny_config` (call it with overrides)."""
    return tiny_config
