"""One target contract for every classifier method (CAM, attribution, attention, faithfulness, CLI).

A *target* says which output of a classifier to explain, per image:

- ``None``: the predicted class (argmax) of each image; for the captum-style
  attribution methods, a model with one output per image;
- an ``int``: that class for every image;
- a sequence or tensor of ints, or of callables ``logits_row -> scalar`` (as
  pytorch-grad-cam's targets): one per image, or one for the whole batch.

Every problem raises :class:`TargetError` with one line.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import torch

from lamfast.errors import LamfastError

Target = Union[int, Callable[[torch.Tensor], torch.Tensor]]
TargetSpec = Union[None, int, Sequence[Target], torch.Tensor]


class TargetError(LamfastError):
    """A target that does not fit the model or the batch (one-line message)."""


def class_score(index: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The score function of class ``index``: logits row [classes] -> scalar."""

    def score(row: torch.Tensor) -> torch.Tensor:
        return row[index]

    score.class_index = index  # type: ignore[attr-defined]
    return score


def _per_image(target: Any, batch: int) -> list:
    if isinstance(target, bool):
        raise TargetError(f"a target is a class index or a callable, got {target!r}")
    if isinstance(target, int):
        return [target] * batch
    if isinstance(target, torch.Tensor):
        target = [int(target)] if target.dim() == 0 else target.tolist()
    elif callable(target):
        return [target] * batch
    try:
        items = list(target)
    except TypeError:
        raise TargetError(f"a target is None, a class index, a callable, or one of those per image; got "
                          f"{type(target).__name__}") from None
    if len(items) == 1:
        items = items * batch  # one target serves every image (not just the first)
    if len(items) != batch:
        raise TargetError(f"got {len(items)} targets for a batch of {batch} images (give 1 or {batch})")
    return items


def _check_index(t: Any, classes: int | None) -> int:
    if isinstance(t, bool) or not isinstance(t, int):
        raise TargetError(f"a target is a class index or a callable, got {t!r}")
    if classes is not None and not 0 <= t < classes:
        raise TargetError(f"target class {t} is out of range for a model with {classes} classes")
    return t


def resolve_targets(target: TargetSpec, logits: torch.Tensor) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """One score function per image, for methods that explain any function of the logits.

    Args:
        target: see the module docstring (``None``: each image's argmax).
        logits: [B, classes] the model's output on the batch.
    """
    B, classes = logits.shape[0], logits.shape[-1]
    items = logits.argmax(dim=-1).tolist() if target is None else _per_image(target, B)
    return [t if callable(t) and not isinstance(t, int) else class_score(_check_index(t, classes)) for t in items]


def target_indices(target: TargetSpec, batch: int, device: torch.device | str | None = None,
                   classes: int | None = None, logits: torch.Tensor | None = None) -> torch.Tensor | None:
    """Class indices [B] (long) for methods that select one output per image.

    ``None`` gives the argmax of ``logits`` when they are given, else None (captum: a model with one
    output per image). Callables are refused: these methods need indices. ``classes`` (or ``logits``)
    enables the range check.
    """
    if logits is not None:
        classes = logits.shape[-1]
        device = logits.device if device is None else device
    if target is None:
        return None if logits is None else logits.argmax(dim=-1)
    items = _per_image(target, batch)
    if any(callable(t) and not isinstance(t, int) for t in items):
        raise TargetError("this method selects outputs by class index; give ints, not callables")
    return torch.tensor([_check_index(t, classes) for t in items], dtype=torch.long, device=device)


__all__ = ["Target", "TargetError", "TargetSpec", "class_score", "resolve_targets", "target_indices"]
