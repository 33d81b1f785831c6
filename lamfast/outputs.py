"""Where results go: a folder or a file, refused in one line before any work when it cannot be written.

A permission bit is not proof (root passes ``os.access`` on ``/proc``, a read-only mount
passes it too), so the check creates and removes a file in the nearest folder that exists.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from lamfast.errors import LamfastError


def _nearest_folder(path: Path, param: str, target: Path) -> Path:
    """The nearest existing ancestor of ``path`` (``path`` itself when it is a folder), which must be a folder;
    errors name ``target``, the output asked for."""
    for p in [path, *path.parents]:
        if p.exists():
            if not p.is_dir():
                raise LamfastError(f"{target}: {p} is a file, not a directory", param=param)
            return p
    return Path.cwd()


def _probe(folder: Path, path: Path, param: str) -> None:
    """A file can be created (and is removed again) in ``folder``; LamfastError with the reason otherwise."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".lamfast-probe-"):
            pass
    except OSError as exc:
        raise LamfastError(f"{path}: cannot write in {folder} ({exc.strerror or exc})", param=param) from None


def check_output_dir(path: str | Path, param: str = "output") -> Path:
    """The output folder ``path``, checked writable before any work (it is not created).

    Raises:
        LamfastError (``param``): it exists as a file, lies under a file, or nothing can be written where it
            would be.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from lamfast.outputs import check_output_dir
        >>> out = Path(tempfile.mkdtemp()) / "lam" / "run1"
        >>> check_output_dir(out) == out, out.exists()  # checked, not created
        (True, False)
        >>> try:
        ...     check_output_dir("/proc/lam")
        ... except ValueError as exc:
        ...     print(exc)
        /proc/lam: cannot write in /proc (No such file or directory)
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise LamfastError(f"{path}: exists and is not a directory", param=param)
    _probe(_nearest_folder(path, param, path), path, param)
    return path


def check_output_file(path: str | Path, param: str = "output") -> Path:
    """The output file ``path`` (a store, a table, a figure), checked writable before any work.

    Raises:
        LamfastError (``param``): it is a folder, lies under a file, exists read-only, or its folder
            cannot be written.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from lamfast.outputs import check_output_file
        >>> blocker = Path(tempfile.mkdtemp()) / "a_file"
        >>> _ = blocker.write_text("")
        >>> try:
        ...     check_output_file(blocker / "results.sqlite")
        ... except ValueError as exc:
        ...     print(str(exc).endswith("a_file is a file, not a directory"))
        True
    """
    path = Path(path)
    if path.is_dir():
        raise LamfastError(f"{path}: is a directory, not a file", param=param)
    if path.exists():
        try:
            with open(path, "r+b"):
                pass
        except OSError as exc:
            raise LamfastError(f"{path}: cannot write it ({exc.strerror or exc})", param=param) from None
        return path
    _probe(_nearest_folder(path.parent, param, path), path, param)
    return path


__all__ = ["check_output_dir", "check_output_file"]
