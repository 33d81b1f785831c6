"""SAN (Dai et al., 2019), as LAM_Demo's zoo builds it (``SAN``, ``SAN_BI4X.pt``).

Second-order attention network: 20 share-source residual groups of 10
residual blocks, each group closed by second-order channel attention (SOCA:
covariance pooling, a matrix square root by 5 Newton-Schulz steps, a
squeeze-excite MLP), and a region non-local block before and after the
groups. Inputs are scaled by 255 inside, as in the zoo.

The zoo's details, kept here because the numbers depend on them:
- The non-local block's ``g`` and ``phi`` end in 2x2 max pooling (the zoo
  turns sub-sampling on for 2-D blocks whatever its argument says), so
  its state_dict has ``g.0`` and ``phi.0``. It runs on each image quarter
  separately (``H // 2``, ``W // 2`` split), with a softmax over the last axis.
- SOCA pools the covariance of the whole feature map (a centred 1000 x 1000
  region when a side reaches 1000 px), takes the mean of its square root's rows
  and gates the features with the MLP's sigmoid.
- ``conv_last`` and each group's ``gamma`` are in the checkpoint; the forward
  uses the network's ``gamma`` (share-source skip), not the groups'.

Covariance pooling and the square root run as the zoo runs them, custom
backwards included (see :class:`CovPool`): SAN's LAM is sensitive to their
rounding. That costs an M x M matrix per image and group (64 MB at 64² px).

Shapes: [B,3,H,W] in [0,1] -> [B,3,sH,sW].
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from lamfast.errors import LamfastError

from lamfast.models.registry import register_model
from lamfast.models.zoo_blocks import MeanShift, Upsampler, conv3, count, upsampler_scale

SOCA_REGION = 1000


class CovPool(torch.autograd.Function):
    """Channel covariance ``x I_hat x^T`` with ``I_hat = (I - 11^T / M) / M``:
    [B,C,H,W] -> [B,C,C], with MPN-COV's own backward, ``(G + G^T) x I_hat``.

    Written out as the zoo computes it, the M x M ``I_hat`` included: the
    LAM gradient of SAN is sensitive to rounding here (an algebraically equal
    centred covariance moved the input gradient by 2.4e-4 and the attribution
    by 1e-2), and LAM users compare with the zoo's numbers.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        B, C, h, w = x.shape
        M = h * w
        flat = x.reshape(B, C, M)
        ones = torch.ones(M, M, device=x.device)  # the default dtype, then cast, as the zoo does
        i_hat = ((-1.0 / M / M) * ones + (1.0 / M) * torch.eye(M, M, device=x.device)).to(x.dtype)
        i_hat = i_hat.view(1, M, M).expand(B, M, M)
        ctx.save_for_backward(x, i_hat)
        return flat.bmm(i_hat).bmm(flat.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, i_hat = ctx.saved_tensors
        B, C, h, w = x.shape
        flat = x.reshape(B, C, h * w)
        return (grad + grad.transpose(1, 2)).bmm(flat).bmm(i_hat).reshape(B, C, h, w)


class SqrtmNS(torch.autograd.Function):
    """Matrix square root of [B,C,C] SPD matrices: trace pre-normalisation,
    coupled Newton-Schulz iterations, post-compensation (MPN-COV), with
    MPN-COV's hand-derived backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, steps: int) -> torch.Tensor:
        B, C, _ = x.shape
        store = x.dtype  # the zoo stores the iterates in the default dtype: float32, as its inputs
        i3 = (3.0 * torch.eye(C, C, device=x.device)).view(1, C, C).expand(B, C, C).to(x.dtype)
        norm = (1.0 / 3.0) * x.mul(i3).sum(dim=1).sum(dim=1)
        A = x.div(norm.view(B, 1, 1).expand_as(x))
        ys, zs = [], []
        zy = 0.5 * (i3 - A)
        ys.append(A.bmm(zy).to(store))
        if steps < 2:
            zs.append(torch.eye(C, C, device=x.device).expand(B, C, C))
        else:
            zs.append(zy.to(store))
            for i in range(1, steps - 1):
                zy = 0.5 * (i3 - zs[i - 1].bmm(ys[i - 1]))
                ys.append(ys[i - 1].bmm(zy).to(store))
                zs.append(zy.bmm(zs[i - 1]).to(store))
            zy = 0.5 * ys[steps - 2].bmm(i3 - zs[steps - 2].bmm(ys[steps - 2]))
        y = zy * torch.sqrt(norm).view(B, 1, 1).expand_as(x)
        ctx.save_for_backward(x, A, zy, norm, *ys, *zs)
        ctx.steps = steps
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, A, zy, norm, *rest = ctx.saved_tensors
        steps = ctx.steps
        ys, zs = rest[: len(rest) // 2], rest[len(rest) // 2:]
        B, C, _ = x.shape
        root = torch.sqrt(norm)
        post = grad * root.view(B, 1, 1).expand_as(x)
        post_aux = (grad * zy).sum(dim=1).sum(dim=1).div(2 * root)
        i3 = (3.0 * torch.eye(C, C, device=x.device)).view(1, C, C).expand(B, C, C).to(x.dtype)
        if steps < 2:
            raise LamfastError("SqrtmNS backward needs steps >= 2 (the zoo's SAN uses 5)", param="model_kwargs")
        y_last, z_last = ys[steps - 2], zs[steps - 2]
        dy = 0.5 * (post.bmm(i3 - y_last.bmm(z_last)) - z_last.bmm(y_last).bmm(post))
        dz = -0.5 * y_last.bmm(post).bmm(y_last)
        for i in range(steps - 3, -1, -1):
            yz = i3 - ys[i].bmm(zs[i])
            zy_i = zs[i].bmm(ys[i])
            dy, dz = (0.5 * (dy.bmm(yz) - zs[i].bmm(dz).bmm(zs[i]) - zy_i.bmm(dy)),
                      0.5 * (yz.bmm(dz) - ys[i].bmm(dy).bmm(ys[i]) - dz.bmm(zy_i)))
        d_ns = 0.5 * (dy.bmm(i3 - A) - dz - A.bmm(dy))
        grad_x = d_ns.div(norm.view(B, 1, 1).expand_as(x))
        aux = d_ns.mul(x).sum(dim=1).sum(dim=1)
        coef = post_aux - aux / (norm * norm)
        grad_x = grad_x + coef.view(B, 1, 1) * torch.eye(C, C, device=x.device)
        return grad_x, None


class SOCA(nn.Module):
    def __init__(self, n_feats: int, reduction: int):
        super().__init__()
        self.conv_du = nn.Sequential(nn.Conv2d(n_feats, n_feats // reduction, 1), nn.ReLU(True),
                                     nn.Conv2d(n_feats // reduction, n_feats, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, h, w = x.shape
        r = SOCA_REGION  # the zoo's region rule, branch for branch
        if h < r and w < r:
            sub = x
        elif h < r and w > r:
            sub = x[:, :, :, (w - r) // 2:(w - r) // 2 + r]
        elif w < r and h > r:
            sub = x[:, :, (h - r) // 2:(h - r) // 2 + r, :]
        else:
            H0, W0 = (h - r) // 2, (w - r) // 2
            sub = x[:, :, H0:H0 + r, W0:W0 + r]
        pooled = SqrtmNS.apply(CovPool.apply(sub), 5).mean(dim=1).view(B, C, 1, 1)
        return self.conv_du(pooled) * x


class _RB(nn.Module):
    def __init__(self, n_feats: int):
        super().__init__()
        self.conv_first = nn.Sequential(conv3(n_feats, n_feats), nn.ReLU(True), conv3(n_feats, n_feats))

    def forward(self, x):
        return self.conv_first(x) + x


class LSRAG(nn.Module):
    """Local-source residual attention group: residual blocks, SOCA, conv, plus the input."""

    def __init__(self, n_feats: int, n_resblocks: int, reduction: int):
        super().__init__()
        self.rcab = nn.ModuleList([_RB(n_feats) for _ in range(n_resblocks)])
        self.soca = SOCA(n_feats, reduction)
        self.conv_last = conv3(n_feats, n_feats)
        self.gamma = nn.Parameter(torch.zeros(1))  # in the checkpoint; unused by the forward, as in the zoo

    def forward(self, x):
        residual = x
        for block in self.rcab:
            x = block(x)
        return self.conv_last(self.soca(x)) + residual


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block; ``g`` and ``phi`` are max-pooled
    2x2, ``W`` is a plain 1x1 conv, the softmax runs over the last axis."""

    def __init__(self, n_feats: int, inter: int):
        super().__init__()
        self.inter = inter
        self.g = nn.Sequential(nn.Conv2d(n_feats, inter, 1), nn.MaxPool2d(2))
        self.W = nn.Conv2d(inter, n_feats, 1)
        self.theta = nn.Conv2d(n_feats, inter, 1)
        self.phi = nn.Sequential(nn.Conv2d(n_feats, inter, 1), nn.MaxPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        g = self.g(x).reshape(B, self.inter, -1).permute(0, 2, 1)
        theta = self.theta(x).reshape(B, self.inter, -1).permute(0, 2, 1)
        phi = self.phi(x).reshape(B, self.inter, -1)
        y = F.softmax(theta.matmul(phi), dim=-1).matmul(g)
        y = y.permute(0, 2, 1).reshape(B, self.inter, *x.shape[2:])
        return self.W(y) + x


class RegionNonLocal(nn.Module):
    """The non-local block applied to each quarter of the map. Its ``soca``
    is in the checkpoint but unused by the forward, as in the zoo."""

    def __init__(self, n_feats: int, inter: int, reduction: int = 8):
        super().__init__()
        self.soca = SOCA(n_feats, reduction)
        self.non_local = NonLocalBlock(n_feats, inter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H1, W1 = int(x.shape[2] / 2), int(x.shape[3] / 2)
        block = self.non_local
        top = torch.cat([block(x[:, :, :H1, :W1]), block(x[:, :, :H1, W1:])], dim=3)
        bottom = torch.cat([block(x[:, :, H1:, :W1]), block(x[:, :, H1:, W1:])], dim=3)
        return torch.cat([top, bottom], dim=2)


@register_model("san", "SAN (LAM_Demo zoo's SAN, SAN_BI4X.pt), sized from the checkpoint",
                detect=("RG.0.rcab.0.conv_first.0.weight", "RG.0.soca.conv_du.0.weight", "non_local.non_local.g.0.weight",
                        "head.0.weight", "tail.1.weight", "gamma"))
class SAN(nn.Module):
    """LAM_Demo zoo's SAN: second-order channel attention and region non-local blocks; inputs scaled by 255 inside. [B,3,H,W] in [0,1] -> [B,3,sH,sW].

    Example:
        >>> import torch
        >>> from lamfast.models import SAN
        >>> SAN(scale=2, n_feats=16, n_resgroups=1, n_resblocks=1)(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 16, 16])
    """
    def __init__(self, scale: int = 4, n_feats: int = 64, n_resgroups: int = 20, n_resblocks: int = 10,
                 reduction: int = 16):
        super().__init__()
        self.scale = scale
        self.in_channels = self.out_channels = 3  # what lamfast's descriptor reads
        self.sub_mean = MeanShift(1.0, -1)
        self.add_mean = MeanShift(1.0, +1)
        self.head = nn.Sequential(conv3(3, n_feats))
        self.gamma = nn.Parameter(torch.zeros(1))
        self.RG = nn.ModuleList([LSRAG(n_feats, n_resblocks, reduction) for _ in range(n_resgroups)])
        self.conv_last = conv3(n_feats, n_feats)  # in the checkpoint; unused by the forward, as in the zoo
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv3(n_feats, 3))
        self.non_local = RegionNonLocal(n_feats, n_feats // 8)

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "SAN":
        return cls(**cls.infer(sd)[0])

    @classmethod
    def infer(cls, sd: Mapping[str, torch.Tensor], given: Mapping | None = None) -> tuple[dict, dict]:
        """(constructor arguments read from ``sd``, notes on guesses): see ``register_model``."""
        n = sd["head.0.weight"].shape[0]
        return {"scale": upsampler_scale(sd, "tail.0.", n), "n_feats": n, "n_resgroups": count(sd, "RG."),
                "n_resblocks": count(sd, "RG.0.rcab."),
                "reduction": n // sd["RG.0.soca.conv_du.0.weight"].shape[0]}, {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x * 255.0))
        xx = self.non_local(x)
        residual = xx
        for group in self.RG:
            xx = group(xx) + self.gamma * residual
        res = self.non_local(xx) + x
        return self.add_mean(self.tail(res)) / 255.0
