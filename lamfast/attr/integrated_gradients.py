"""Integrated Gradients on lamfast's path engine (the one LAM uses)."""
from __future__ import annotations

import functools

import torch

from lamfast.attr.base import AttrError, Attribution, TargetSpec, scores, target_indices
from lamfast.modelstate import attribution_state
from lamfast.path import integrate_path

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


@functools.lru_cache(maxsize=64)
def gauss_legendre(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Gauss-Legendre nodes and weights on [-1, 1] (numpy's ``leggauss``, which captum uses).

    Golub-Welsch in float64 torch, then one Newton step on the nodes and
    weights from P_n' as numpy does, so they agree to about 1e-15. Not
    numpy's LAPACK: its worker threads spin for a while after each call and
    take a core from the model on a small machine.
    """
    k = torch.arange(1, n, dtype=torch.float64)
    beta = k / torch.sqrt(4 * k * k - 1)
    nodes = torch.linalg.eigvalsh(torch.diag(beta, 1) + torch.diag(beta, -1))
    # P_n and P_n' by the three-term recurrence, for the Newton step and the weights
    def legendre(x):
        p0, p1 = torch.ones_like(x), x
        for j in range(2, n + 1):
            p0, p1 = p1, ((2 * j - 1) * x * p1 - (j - 1) * p0) / j
        p = p1 if n > 0 else p0
        dp = n * (x * p - p0) / (x * x - 1) if n > 1 else torch.ones_like(x)
        return p, dp
    p, dp = legendre(nodes)
    nodes = nodes - p / dp
    _, dp = legendre(nodes)
    weights = 2 / ((1 - nodes * nodes) * dp * dp)
    return tuple(nodes.tolist()), tuple(weights.tolist())


def approximation(method: str, n_steps: int) -> tuple[list[float], list[float]]:
    """(step sizes, alphas) of captum's approximation methods for ``n_steps`` points."""
    if method not in METHODS:
        raise AttrError(f"method must be one of {METHODS}, got {method!r}")
    if n_steps < 2 and method != "gausslegendre":
        raise AttrError(f"n_steps must be >= 2 for {method}, got {n_steps}")
    if n_steps < 1:
        raise AttrError(f"n_steps must be >= 1, got {n_steps}")
    if method == "gausslegendre":
        x, w = gauss_legendre(n_steps)
        return [0.5 * v for v in w], [0.5 * (v + 1) for v in x]
    # captum's Riemann rules: steps 1/n (halved at both ends for the
    # trapezoid, as captum does), alphas from float32 torch.linspace.
    steps = [1 / n_steps] * n_steps
    if method == "riemann_trapezoid":
        steps[0] /= 2
        steps[-1] /= 2
        return steps, torch.linspace(0, 1, n_steps).tolist()
    if method == "riemann_left":
        return steps, torch.linspace(0, 1 - 1 / n_steps, n_steps).tolist()
    if method == "riemann_right":
        return steps, torch.linspace(1 / n_steps, 1, n_steps).tolist()
    return steps, torch.linspace(1 / (2 * n_steps), 1 - 1 / (2 * n_steps), n_steps).tolist()


class IntegratedGradients(Attribution):
    """IG (Sundararajan et al., 2017) with captum's API and numbers.

    The straight path from ``baselines`` to ``inputs`` runs through
    :func:`lamfast.path.integrate_path`: path points ``b + α_j (x - b)``,
    derivative ``w_j (x - b)``, accumulated by ``path_accumulate``.

    Example:
        >>> import torch
        >>> from lamfast.models.classifier import load_classifier
        >>> from lamfast.attr import IntegratedGradients
        >>> ig = IntegratedGradients(load_classifier("bundled").model)
        >>> a, delta = ig.attribute(torch.rand(2, 3, 64, 64), target=[3, 1], n_steps=16, internal_batch_size=16,
        ...                         return_convergence_delta=True)  # 16 path points per forward, over both images
        >>> tuple(a.shape), tuple(delta.shape)  # delta per image: F(x) - F(baseline) - sum(a)
        ((2, 3, 64, 64), (2,))
    """

    def attribute(self, inputs: torch.Tensor, baselines: torch.Tensor | float | None = None, target: TargetSpec = None,
                  n_steps: int = 50, method: str = "gausslegendre", internal_batch_size: int | None = None,
                  return_convergence_delta: bool = False):
        """Args:
            inputs: [B, ...] float.
            baselines: like inputs, a scalar, or None (zeros).
            target: class per example (see captum).
            n_steps, method: the quadrature (captum's names).
            internal_batch_size: path points per forward, across the batch (default: all at
                once, as captum; a chunk that runs out of GPU memory is halved and retried).
        Returns:
            attributions like inputs (and the convergence delta [B] if asked).
        """
        self._check(inputs)
        steps, alphas = approximation(method, n_steps)
        B = inputs.shape[0]
        x = inputs.detach()
        if baselines is None:
            base = torch.zeros_like(x)
        elif isinstance(baselines, (int, float)):
            base = torch.full_like(x, float(baselines))
        else:
            base = baselines.detach().to(x).expand_as(x)
        t = target_indices(target, B, x.device)
        diff = x - base
        flat = diff.reshape(B, 1, -1)
        a = torch.tensor(alphas, dtype=x.dtype, device=x.device).view(1, -1, 1)
        w = torch.tensor(steps, dtype=x.dtype, device=x.device).view(1, -1, 1)
        # [B, S, 1, 1, D]: one "image" of D values per point, the engine's [*lead, S, C, H, W]
        path = (base.reshape(B, 1, -1) + a * flat).reshape(B, n_steps, 1, 1, -1)
        deriv = (w * flat).expand(B, n_steps, flat.shape[-1]).reshape(B, n_steps, 1, 1, -1)
        item = x.shape[1:]

        def objective(points: torch.Tensor, chunk) -> torch.Tensor:  # [k, 1, 1, D] -> [k]
            return scores(self.model, points.reshape(-1, *item), None if t is None else t[chunk.lead_index])

        with attribution_state(self.model):
            total = integrate_path(objective, path, deriv, batch_size=internal_batch_size or B * n_steps,
                                   zero_nan=False).total[0]
        attributions = total.reshape(x.shape).to(x.dtype)
        if not return_convergence_delta:
            return attributions
        with attribution_state(self.model), torch.no_grad():
            delta = attributions.reshape(B, -1).sum(1) - (scores(self.model, x, t) - scores(self.model, base, t))
        return attributions, delta
