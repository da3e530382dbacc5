"""The CI guard itself: under ``TRISR_CI`` (set by ``.ci/run``) a missing sshd or Chromium makes the remote and
browser tests *fail*, not skip; without ``TRISR_CI`` they skip with a reason. Run as subprocesses with the
prerequisite pointed at a path that does not exist, so the fail path is exercised on a machine that has
both installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "sshd": ("tests/test_remote.py::test_unreachable_host", "TRISR_TEST_SSHD", "remote tests cannot run"),
    "chromium": ("tests/test_report.py::test_study_report_html_in_headless_chromium", "TRISR_TEST_CHROMIUM",
                 "browser check cannot run"),
}


def _pytest(test: str, env_extra: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRISR_CI"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("what", sorted(CASES))
def test_missing_prerequisite_fails_under_ci_and_skips_otherwise(what, tmp_path):
    test, knob, message = CASES[what]
    missing = str(tmp_path / f"no-{what}")
    under_ci = _pytest(test, {knob: missing, "TRISR_CI": "1"})
    assert under_ci.returncode == 1, under_ci.stdout[-2000:]
    # pytest.fail in a fixture is reported as a setup error: either way the run fails, with the reason
    assert message in under_ci.stdout and ("1 failed" in under_ci.stdout or "1 error" in under_ci.stdout)
    outside = _pytest(test, {knob: missing})
    assert outside.returncode == 0, outside.stdout[-2000:]
    assert "1 skipped" in outside.stdout and "SKIPPED" in outside.stdout
