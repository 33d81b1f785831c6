"""One optional progress bar for long loops (tqdm, imported only when shown)."""
from __future__ import annotations


class Progress:
    """A tqdm bar when ``enabled``, else nothing; usable as a context manager.

    Args:
        total: units of work expected (``add`` can raise it later).
        desc, unit: tqdm's.
        enabled: False makes every method a no-op.
    """

    def __init__(self, total: int, desc: str, unit: str, enabled: bool = True, **kwargs):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, **kwargs)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def add(self, n: int) -> None:
        """Expect ``n`` more units."""
        if self.bar is not None:
            self.bar.total += n
            self.bar.refresh()

    def postfix(self, **values) -> None:
        if self.bar is not None:
            self.bar.set_postfix(**values)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
