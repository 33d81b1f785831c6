"""What LAM raises and warns."""
from __future__ import annotations

from lamfast.errors import LamfastError


class LAMError(LamfastError):
    """LAM cannot give a meaningful answer for these inputs (one-line message).

    ``param`` names the argument at fault where there is one (``"fold"``,
    ``"window"``, ...), so a front end can point at its own spelling of it.
    """


class LAMNaNWarning(UserWarning):
    """Some path steps had NaN input gradients and were zeroed (compat mode)."""
