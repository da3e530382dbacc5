"""User-facing errors.

Anything raised as :class:`TrisrError` is printed by the CLI as one line and turned into a non-zero exit
code; everything else is a bug and keeps its traceback.
"""


class TrisrError(Exception):
    """A problem with the user's input or environment, reported as one clear line."""


class ImageError(TrisrError):
    """An image file is missing, unreadable, corrupt or unsuitable."""


class DataError(TrisrError):
    """A data folder is empty, has an unknown layout, or holds images that cannot be paired."""


class BudgetError(TrisrError):
    """A cost budget that no architecture of the search space can meet."""


class CostTableError(TrisrError):
    """A cost table is missing an entry or does not match the search space."""
