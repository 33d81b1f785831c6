"""Reference loops for the LAM benchmarks (shared by benchmarks/ and scripts).

- :func:`official_cost_loop`: what LAM_Demo's ``Path_gradient`` costs, batch
  1, parameters requiring grad (weight gradients computed and thrown
  away), per-step numpy round trips, with its one-line torch>=2 fix.
- :func:`bare_cost_loop`: the physical minimum for the same work, the same
  forward passes plus input-only backward passes in lamfast's chunks.
"""
from __future__ import annotations

import numpy as np
import torch

from lamfast.lam.objective import window_objective


def official_cost_loop(model, path: torch.Tensor, deriv: torch.Tensor, h: int, w: int, size: int) -> np.ndarray:
    """Path [fold,3,H,W] -> attribution [3,H,W] the official way (numpy).

    The path lives on the host as officially; each step goes to the model's
    device and its gradient and output come back (per-step host copies).
    """
    device = next(model.parameters()).device
    for p in model.parameters():
        p.requires_grad_(True)
    path_np, deriv_np = path.cpu().numpy(), deriv.cpu().numpy()
    grads, results = [], []
    for j in range(path_np.shape[0]):
        x = torch.from_numpy(path_np[j][None]).to(device).requires_grad_(True)
        y = model(x)
        objective = window_objective(y, h, w, size, "compat").sum()
        model.zero_grad()
        objective.backward()
        g = x.grad.cpu().numpy()[0].copy()
        g[np.isnan(g)] = 0
        grads.append(g * deriv_np[j])
        results.append(y.detach().cpu().numpy())
    return np.mean(np.stack(grads), axis=0)


def bare_cost_loop(model, path: torch.Tensor, h: int, w: int, size: int, batch_size: int) -> None:
    """The same forward passes and input-only backward passes, nothing else."""
    for p in model.parameters():
        p.requires_grad_(False)
    for start in range(0, path.shape[0], batch_size):
        x = path[start : start + batch_size].detach().requires_grad_(True)
        torch.autograd.grad(window_objective(model(x), h, w, size, "compat").sum(), x)
