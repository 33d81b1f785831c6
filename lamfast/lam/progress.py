"""What a LAM call says while it runs: its setup phases, an estimate after the first path points, and the
path points done.

``progress=True`` draws a tqdm bar on stderr (:class:`BarProgress`); ``progress=False`` says nothing; a
:class:`PathProgress` instance receives the events itself (the dataset runner counts path points of many
images on one bar this way).
"""
from __future__ import annotations

import sys
import threading
from typing import Union

from tqdm.auto import tqdm

from lamfast.errors import LAMError
from lamfast.machine_load import oversubscribed

# A setup phase is named only when it lasts this long: a fast call prints nothing but its bar.
PHASE_DELAY_S = 1.5


def duration(seconds: float) -> str:
    """A duration as people say it.

    Example:
        >>> from lamfast.lam.progress import duration
        >>> duration(0.4), duration(75), duration(1080), duration(9000)
        ('0.4 s', '1.2 min', '18 min', '2.5 h')
    """
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        minutes = seconds / 60
        return f"{minutes:.2g} min" if minutes < 10 else f"{minutes:.0f} min"
    return f"{seconds / 3600:.2g} h"


def estimate_text(seconds_per_point: float, points: int, windows: int, *, item: str = "window",
                  noun: str = "path point") -> str:
    """The line printed before the path loop (or another loop of ``points`` units over ``windows`` items).

    Example:
        >>> from lamfast.lam.progress import estimate_text
        >>> estimate_text(21.6, 50, 1)
        'about 18 min for 1 window (21.6 s per path point, 50 points)'
        >>> estimate_text(0.05, 3000, 1, item="ROI", noun="intervention")
        'about 2.5 min for 1 ROI (50 ms per intervention, 3000 interventions)'
    """
    unit = noun.split()[-1]
    return (f"about {duration(seconds_per_point * points)} for {windows} {item}{'s' if windows != 1 else ''} "
            f"({per_point(seconds_per_point)} per {noun}, {points} {unit}{'s' if points != 1 else ''})")


def per_point(seconds: float) -> str:
    """Seconds of one path point, in s or ms."""
    return f"{seconds:.3g} s" if seconds >= 0.1 else f"{seconds * 1e3:.3g} ms"


class PathProgress:
    """The events of a LAM call; this base class ignores them all (``progress=False``).

    Example:
        >>> import lamfast
        >>> from lamfast.lam.progress import PathProgress
        >>> from lamfast.request import prepare_input
        >>> class Count(PathProgress):
        ...     done = 0
        ...     def advance(self, points):
        ...         self.done += points
        >>> model, counter = lamfast.load_model(), Count()
        >>> _ = lamfast.lam(model, prepare_input(model, "bundled").tensor(), 150, 110, fold=4, progress=counter)
        >>> counter.done
        4
    """

    def phase(self, text: str) -> None:
        """A setup step starts (a forward of the whole input, measuring the model's reach)."""

    def expect(self, points: int, windows: int) -> None:
        """``points`` more path points of ``windows`` windows are planned."""

    def estimate(self, seconds_per_point: float) -> None:
        """The first path points took this long each (forward and backward, measured)."""

    def advance(self, points: int) -> None:
        """``points`` more path points are done."""

    def close(self) -> None:
        """The call ended."""


class BarProgress(PathProgress):
    """``progress=True``: setup phases that last are named, the estimate is printed once, and a tqdm bar
    counts the path points (stderr)."""

    def __init__(self, label: str = "LAM", *, item: str = "window", noun: str = "path point",
                 bar: str = "path") -> None:
        self.label, self.item, self.noun, self.bar_name = label, item, noun, bar
        self.bar: tqdm | None = None
        self.points = 0
        self.windows = 0
        self.told = False
        self._timer: threading.Timer | None = None

    def _say(self, text: str) -> None:
        tqdm.write(f"{self.label}: {text}", file=sys.stderr)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def phase(self, text: str) -> None:
        self._cancel()
        self._timer = threading.Timer(PHASE_DELAY_S, self._say, args=(f"{text} ...",))
        self._timer.daemon = True
        self._timer.start()

    def expect(self, points: int, windows: int) -> None:
        self._cancel()
        self.points += points
        self.windows += windows
        desc = f"{self.label} {self.bar_name} ({self.windows} {self.item}{'s' if self.windows != 1 else ''})"
        if self.bar is None:
            self.bar = tqdm(total=self.points, desc=desc, unit=self.noun.split()[-1], leave=False, file=sys.stderr)
        else:
            self.bar.total = self.points
            self.bar.set_description(desc, refresh=True)

    def estimate(self, seconds_per_point: float) -> None:
        if not self.told:
            self.told = True
            self._say(estimate_text(seconds_per_point, self.points, self.windows, item=self.item, noun=self.noun))
            busy = oversubscribed()
            if busy:
                self._say(busy)

    def advance(self, points: int) -> None:
        if self.bar is not None:
            self.bar.update(points)

    def close(self) -> None:
        self._cancel()
        if self.bar is not None:
            self.bar.close()


class said_if_slow:
    """Context manager: ``text ...`` goes to stderr if the block is still running after
    :data:`PHASE_DELAY_S` (loading a large checkpoint, a first forward of a large image); a fast block
    says nothing.

    Example:
        >>> from lamfast.lam.progress import said_if_slow
        >>> with said_if_slow("lamfast: loading the model"):
        ...     pass  # fast: nothing printed
    """

    def __init__(self, text: str, enabled: bool = True) -> None:
        self.text, self.enabled = text, enabled
        self.timer: threading.Timer | None = None

    def __enter__(self) -> "said_if_slow":
        if self.enabled:
            self.timer = threading.Timer(PHASE_DELAY_S, lambda: tqdm.write(f"{self.text} ...", file=sys.stderr))
            self.timer.daemon = True
            self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.timer is not None:
            self.timer.cancel()


Progress = Union[bool, PathProgress]


def as_progress(progress: Progress) -> PathProgress:
    """The events' receiver for a ``progress`` keyword: True, False or a :class:`PathProgress`."""
    if isinstance(progress, PathProgress):
        return progress
    if isinstance(progress, bool):
        return BarProgress() if progress else PathProgress()
    raise LAMError(f"progress must be True, False or a lamfast.lam.progress.PathProgress, got {progress!r}",
                   param="progress")


__all__ = ["BarProgress", "PathProgress", "Progress", "as_progress", "duration", "estimate_text", "per_point",
           "said_if_slow"]
