"""What LAM raises and warns."""
from __future__ import annotations


class LAMError(ValueError):
    """LAM cannot give a meaningful answer for these inputs (one-line message).

    ``param`` names the argument at fault where there is one (``"fold"``,
    ``"window"``, ...), so a front end can point at its own spelling of it.
    """

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


class LAMNaNWarning(UserWarning):
    """Some path steps had NaN input gradients and were zeroed (compat mode)."""
