"""FAIG: filter attribution integrated gradients (Xie et al., NeurIPS 2021), for any pair of models.

Integrated gradients in parameter space, along the straight line from a baseline model to a
fine-tuned target model of the same shapes:

- at ``steps`` points, θ(α) = α θ_baseline + (1 - α) θ_target with α = s / steps,
  s = 0 … steps - 1 (every tensor of the state, buffers included, as the official code builds
  each step's network from the interpolated state dict);
- the loss is the summed squared error between the network's output and the ground truth;
- per filter (one input-channel kernel ``[kh, kw]`` of a 4-D ``...weight`` parameter),
  FAIG(img) = Σ over the kernel of |Σ_s ∇θ(α_s) · (θ_baseline - θ_target)| / steps;
- the score is FAIG(img1) - FAIG(img2): a filter that matters more for the first degradation
  (e.g. noise) than for the second (e.g. blur) scores high.

Over a dataset (:func:`faig_dataset`), the per-image scores are averaged and the filters ranked by
the mean (the official code sums them; the ranking is the same).

The official code rebuilds the network at every step and runs each image at batch 1. Here each
image's steps run in chunks, batched over the steps with ``torch.func.vmap`` of
``torch.func.functional_call`` (one forward and backward per chunk); a model that vmap cannot
batch falls back to a step-by-step loop, and the result says which ran. The models are not
changed: their parameters are read, never written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lamfast.descriptor import module_of
from lamfast.errors import LamfastError
from lamfast.modelstate import attribution_state

# Steps per batched forward when none is given: a step costs one forward and backward of the
# image with its own weights, so chunks stay small on CPU, where larger ones do not pay.
DEFAULT_CHUNK = 8


@dataclass
class FAIGResult:
    """FAIG of one image pair.

    Attributes:
        scores: [F] FAIG(img1) - FAIG(img2), one per filter.
        faig1, faig2: [F] each image's FAIG.
        filters: F entries ``(parameter name, output channel, input channel)``: which kernel each
            score belongs to, in ``named_parameters()`` order, as ``weight.reshape(-1, kh, kw)``
            numbers them.
        steps: integration points.
        batched: True when the steps ran batched through ``torch.func.vmap``; False for the
            step-by-step loop (a model vmap cannot batch).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import lamfast
        >>> _ = torch.manual_seed(0)
        >>> base, tuned = (nn.Sequential(nn.Conv2d(3, 2, 3, padding=1)) for _ in range(2))
        >>> r = lamfast.faig(base, tuned, torch.rand(3, 6, 6), torch.rand(3, 6, 6), torch.rand(2, 6, 6), steps=5)
        >>> top = int(r.ranking()[0])
        >>> r.filters[top][0], bool(r.scores[top] == r.scores.max()), r.batched
        ('0.weight', True, True)
    """

    scores: torch.Tensor
    faig1: torch.Tensor
    faig2: torch.Tensor
    filters: list[tuple[str, int, int]]
    steps: int
    batched: bool

    def ranking(self) -> torch.Tensor:
        """Filter indices, highest score first (the official ``argsort(...)[::-1]``)."""
        return torch.argsort(self.scores, descending=True, stable=True)


def filter_parameters(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The parameters FAIG scores: every 4-D parameter whose name ends in ``weight`` (convolution
    kernels; biases and other weights are left out, as officially), in ``named_parameters()`` order."""
    return [(n, p) for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 4]


def _module(model: Any, name: str) -> nn.Module:
    module = module_of(model)
    if not isinstance(module, nn.Module):
        raise LamfastError(f"{name} must be an nn.Module or a lamfast ModelDescriptor, got {type(model).__name__}",
                           param=name)
    return module


def _image(x: Any, name: str, like: torch.Tensor) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or (x.dim() == 4 and x.shape[0] != 1):
        raise LamfastError(f"{name} must be a tensor [C,H,W] or [1,C,H,W], got "
                           f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}", param=name)
    x = x if x.dim() == 4 else x[None]
    return x.detach().to(like.device, like.dtype)


def faig(baseline_model: Any, target_model: Any, img1: torch.Tensor, img2: torch.Tensor, gt: torch.Tensor, *,
         steps: int = 100, batch_size: int | None = None) -> FAIGResult:
    """FAIG scores of every filter for one pair of degraded inputs of one image.

    Args:
        baseline_model: the model before fine-tuning (an ``nn.Module`` or a ModelDescriptor).
        target_model: the fine-tuned model: the same parameter and buffer names and shapes.
        img1, img2: the two degraded inputs, [C,H,W] or [1,C,H,W], in the models' range (e.g.
            noisy and blurry LR images).
        gt: the ground truth, shaped as the models' output.
        steps: integration points (the official ``total_step``).
        batch_size: steps per batched forward/backward (default 8).
    Returns:
        FAIGResult (``scores`` [F], ``ranking()``).
    Raises:
        LamfastError: models whose states differ in names or shapes, bad images, bad ``steps``.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import lamfast
        >>> torch.manual_seed(0)
        ... # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> base = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))
        >>> tuned = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 3, 3, padding=1))
        >>> noisy, blurry, gt = torch.rand(3, 8, 8), torch.rand(3, 8, 8), torch.rand(3, 8, 8)
        >>> r = lamfast.faig(base, tuned, noisy, blurry, gt, steps=10)
        >>> r.scores.shape, r.filters[0], r.filters[-1]  # 4·3 kernels of the first conv, 3·4 of the second
        (torch.Size([24]), ('0.weight', 0, 0), ('2.weight', 2, 3))
    """
    base, target = _module(baseline_model, "baseline_model"), _module(target_model, "target_model")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise LamfastError(f"steps must be an integer >= 1, got {steps!r}", param="steps")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise LamfastError(f"batch_size must be an integer >= 1, got {batch_size!r}", param="batch_size")
    base_state, target_state = base.state_dict(), target.state_dict()
    if list(base_state) != list(target_state) or any(base_state[k].shape != target_state[k].shape for k in base_state):
        diff = next((k for k in list(base_state) + list(target_state)
                     if k not in base_state or k not in target_state or base_state[k].shape != target_state[k].shape),
                    None)
        raise LamfastError(f"the baseline and target models differ at {diff!r}: FAIG interpolates between two "
                           "models of the same architecture (the same state names and shapes)", param="target_model")
    weights = filter_parameters(target)
    if not weights:
        raise LamfastError("the target model has no 4-D ...weight parameter (convolution kernels) to score",
                           param="target_model")
    first = weights[0][1]
    x1, x2, y = (_image(v, n, first) for v, n in ((img1, "img1"), (img2, "img2"), (gt, "gt")))
    names = [n for n, _ in weights]
    floats = {k for k, v in target_state.items() if v.is_floating_point()}
    # the straight line, every float tensor of the state (buffers too, as the official state-dict rebuild)
    alphas = torch.arange(steps, dtype=torch.float64) / steps
    delta = {k: (base_state[k] - target_state[k]).detach() for k in floats}
    fixed = {k: v.detach() for k, v in target_state.items() if k not in floats}

    def state_at(a: torch.Tensor) -> dict[str, torch.Tensor]:
        """α θ_b + (1 - α) θ_t, in the official order of operations: one state for a 0-d α, a batch
        [n, *shape] per tensor for n α."""
        out = {}
        for k in floats:
            b, t = base_state[k].detach(), target_state[k].detach()
            w = a.to(b.dtype) if a.dim() == 0 else a.to(b.dtype).view(-1, *([1] * b.dim()))
            out[k] = w * b + (1 - w) * t
        return out

    chunk = batch_size or DEFAULT_CHUNK
    with attribution_state(target):
        with torch.no_grad():  # a ground truth of another shape than the output is one line, not a trace
            shapes = {tuple(target(x).shape) for x in (x1, x2)}
        if shapes != {tuple(y.shape)}:
            raise LamfastError(f"gt is {tuple(y.shape)[1:]} but the model returns {sorted(shapes)[0][1:]} for the "
                               "inputs: gt is the ground truth of the output", param="gt")
        sums, batched = [], True
        for x in (x1, x2):
            total, batched = _gradient_sum(target, state_at, fixed, names, alphas, x, y, chunk, batched)
            sums.append(total)
    filters = [(n, o, i) for n, p in weights for o in range(p.shape[0]) for i in range(p.shape[1])]
    variation = torch.cat([delta[n].reshape(-1, *delta[n].shape[-2:]) for n in names])
    faig1, faig2 = ((s * variation / steps).abs().sum(dim=(1, 2)) for s in sums)
    return FAIGResult(faig1 - faig2, faig1, faig2, filters, steps, batched)


def _gradient_sum(model: nn.Module, state_at, fixed: dict, names: list[str], alphas: torch.Tensor, x: torch.Tensor,
                  y: torch.Tensor, chunk: int, batched: bool) -> tuple[torch.Tensor, bool]:
    """Σ over the steps of d loss / d θ for the filter weights, as [F, kh, kw] (kernels of every weight
    concatenated); batched through vmap unless the model refuses it, then step by step."""
    from torch.func import functional_call, grad, vmap

    def loss(weights: dict, rest: dict, inp: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**rest, **weights}, (inp,))
        return ((y - out) ** 2).sum()  # MSELoss(reduction="sum")

    def split(state: dict) -> tuple[dict, dict]:
        return {n: state[n] for n in names}, {**fixed, **{k: v for k, v in state.items() if k not in names}}

    total = None
    step_grad = grad(loss)
    for start in range(0, len(alphas), chunk):
        part = alphas[start:start + chunk]
        g = None
        if batched:
            try:
                states = state_at(part)
                weights, rest = split(states)
                in_dims_rest = {k: (0 if k in states else None) for k in rest}
                g = vmap(step_grad, in_dims=({n: 0 for n in names}, in_dims_rest, None))(weights, rest, x)
                g = {n: t.sum(dim=0) for n, t in g.items()}
            except Exception:  # noqa: BLE001 - whatever vmap cannot batch: the loop computes the same
                batched, g = False, None
        if g is None:
            g = {n: 0 for n in names}
            for a in part:
                weights, rest = split(state_at(a))
                for n, t in step_grad(weights, rest, x).items():
                    g[n] = g[n] + t
        flat = torch.cat([g[n].reshape(-1, *g[n].shape[-2:]) for n in names])
        total = flat if total is None else total + flat
    return total, batched


@dataclass
class FAIGDatasetResult:
    """FAIG over a dataset of image triples: the mean of the per-image scores, and the ranking by it.

    Attributes:
        scores: [F] the mean over images of FAIG(img1) - FAIG(img2).
        per_image: [N, F] each image's scores.
        names: the N images.
        filters: as :attr:`FAIGResult.filters`; steps; batched: every image ran batched.

    Example:
        >>> import torch, lamfast
        >>> from lamfast.filter_attribution import faig_dataset
        >>> _ = torch.manual_seed(1)
        >>> pair = [torch.nn.Conv2d(3, 2, 3, padding=1) for _ in range(2)]  # baseline, target
        >>> triples = [tuple(torch.rand(c, 6, 6) for c in (3, 3, 2)) for _ in range(3)]
        >>> r = faig_dataset(*pair, triples, steps=4)
        >>> r.per_image.shape, bool(torch.allclose(r.scores, r.per_image.mean(0)))
        (torch.Size([3, 6]), True)
    """

    scores: torch.Tensor
    per_image: torch.Tensor
    names: list[str]
    filters: list[tuple[str, int, int]]
    steps: int
    batched: bool

    def ranking(self) -> torch.Tensor:
        """Filter indices, highest mean score first (the official ``argsort(...)[::-1]`` of the sum)."""
        return torch.argsort(self.scores, descending=True, stable=True)

    def top(self, share: float) -> torch.Tensor:
        """The first ``int(F · share)`` filters of the ranking (``share`` 0.01 is the official 1 %)."""
        return self.ranking()[:int(len(self.filters) * share)]


def faig_dataset(baseline_model: Any, target_model: Any, triples, *, steps: int = 100, batch_size: int | None = None,
                 names: list[str] | None = None, progress: bool = False) -> FAIGDatasetResult:
    """FAIG of every filter averaged over a dataset of (img1, img2, gt) triples, as the official analysis
    ranks filters for one degradation (img1: noisy, img2: blurry finds the filters for noise).

    Args:
        baseline_model, target_model, steps, batch_size: as :func:`faig`.
        triples: (img1, img2, gt) tensors per image, as :func:`faig` takes them.
        names: what to call the images (default ``image 0``, ...).
        progress: a tqdm bar over the images (stderr).
    Returns:
        FAIGDatasetResult.
    Raises:
        LamfastError: no triples, or what :func:`faig` raises for an image.
    """
    from tqdm.auto import tqdm

    triples = list(triples)
    if not triples:
        raise LamfastError("no image triples to average over", param="triples")
    names = list(names) if names is not None else [f"image {i}" for i in range(len(triples))]
    if len(names) != len(triples):
        raise LamfastError(f"{len(names)} names for {len(triples)} triples", param="names")
    results = []
    for (img1, img2, gt), name in tqdm(list(zip(triples, names)), desc="FAIG", unit="image", disable=not progress,
                                       leave=False):
        try:
            results.append(faig(baseline_model, target_model, img1, img2, gt, steps=steps, batch_size=batch_size))
        except LamfastError as exc:
            raise LamfastError(f"{name}: {exc}", param=exc.param) from None
    per_image = torch.stack([r.scores for r in results])
    return FAIGDatasetResult(per_image.mean(0), per_image, names, results[0].filters, steps,
                             all(r.batched for r in results))


__all__ = ["FAIGDatasetResult", "FAIGResult", "faig", "faig_dataset", "filter_parameters"]
