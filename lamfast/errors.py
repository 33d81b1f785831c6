"""The errors and notes every lamfast module shares.

Every library error derives from :class:`LamfastError` (a ValueError), whose
``param`` names the argument at fault where there is one (``"fold"``,
``"windows"``, ``"model"``, ...). Front ends point at their own spelling of
that argument through ``param``; the message itself names Python arguments,
never command-line flags.
"""
from __future__ import annotations


PARAM = "{param}"  # where a message names its own argument, in whichever spelling is shown


class LamfastError(ValueError):
    """A failure with a one-line message; ``param`` names the argument at fault, if any.

    A message that names its argument writes it as ``{param}``: ``str()``
    shows the keyword (``unsafe_pickle``), :meth:`spelled` another spelling
    of it (a front end's flag), so no front end edits message text.
    """

    def __init__(self, message: str = "", param: str | None = None):
        super().__init__(message)
        self.param = param

    def spelled(self, name: str | None) -> str:
        """The message with the argument spelled ``name``; without the placeholder, ``name: message``."""
        template = str(self.args[0]) if self.args else ""
        if name is None:
            return template.replace(PARAM, self.param or "the argument")
        if PARAM in template:
            return template.replace(PARAM, name)
        return f"{name}: {template}"

    def __str__(self) -> str:  # also for subclasses that are KeyErrors, which would quote the message
        return self.spelled(None)


class LamfastKeyError(LamfastError, KeyError):
    """A name that is not known (an architecture, a layer)."""


class LAMError(LamfastError):
    """LAM cannot give a meaningful answer for these inputs (one-line message).

    ``param`` names the argument at fault where there is one (``"fold"``,
    ``"window"``, ``"model"``, ...), so a front end can point at its own spelling of it.
    """


class LAMNaNWarning(UserWarning):
    """Some path steps had NaN input gradients and were zeroed (compat mode)."""


class LamfastNote(UserWarning):
    """Something the library assumed or worked around for you; front ends show it as a note."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name when there is none.

    ``KeyError`` quotes its message in ``str()``; its argument is used as it is.
    """
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


__all__ = ["LAMError", "LAMNaNWarning", "LamfastError", "LamfastKeyError", "LamfastNote", "first_line"]
