"""What lamfast knows of an image-to-image model besides its module: :class:`ModelDescriptor`.

A descriptor is what :func:`lamfast.load_model` returns: the module, its
scale, its input and output channels and its size requirements, with how
each was found. spandrel's descriptor gives them where spandrel loaded the
model; lamfast's registered architectures give them from their settings;
for any other module :func:`describe` measures them with one forward.

The LAM engine takes a descriptor wherever it takes a module, and honours
its size requirements: inputs are padded up to them as spandrel pads
(reflect, then replicate, at the bottom and right; the output cut back),
and receptive-field crops are aligned to them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from lamfast.errors import LAMError, LamfastError
from lamfast.modelstate import attribution_state, call_model, model_device, model_dtype


@dataclass(frozen=True)
class SizeRequirements:
    """Input sizes a model accepts, as spandrel states them.

    Attributes:
        minimum: the smallest side, in input pixels (0: any).
        multiple_of: both sides must be multiples of this (1: any).
        square: the input must be square.

    Example:
        >>> from lamfast.descriptor import SizeRequirements
        >>> SizeRequirements(minimum=16, multiple_of=8).padding(30, 17)
        (2, 7)
    """

    minimum: int = 0
    multiple_of: int = 1
    square: bool = False

    def __post_init__(self) -> None:
        for name, value, low in (("minimum", self.minimum, 0), ("multiple_of", self.multiple_of, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise LamfastError(f"size requirements: {name} must be an integer >= {low}, got {value!r}",
                                   param="size")

    @property
    def none(self) -> bool:
        """Whether any size is accepted."""
        return self.minimum == 0 and self.multiple_of == 1 and not self.square

    def padding(self, height: int, width: int) -> tuple[int, int]:
        """(rows, columns) to add at the bottom and right so that an input of this size is accepted."""
        def up(x: int) -> int:
            x = max(x, self.minimum)
            return -(-x // self.multiple_of) * self.multiple_of

        h, w = up(height), up(width)
        if self.square:
            h = w = max(h, w)
        return h - height, w - width

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [..., H, W] padded as spandrel pads: reflect as far as it reaches, then replicate."""
        ph, pw = self.padding(*x.shape[-2:])
        if not (ph or pw):
            return x
        h, w = x.shape[-2:]
        rh, rw = min(ph, h - 1), min(pw, w - 1)
        lead = x.shape[:-3]
        flat = x.reshape(-1, *x.shape[-3:])
        if rh or rw:
            flat = torch.nn.functional.pad(flat, (0, rw, 0, rh), mode="reflect")
        if ph - rh or pw - rw:
            flat = torch.nn.functional.pad(flat, (0, pw - rw, 0, ph - rh), mode="replicate")
        return flat.reshape(*lead, *flat.shape[-3:])

    def summary(self) -> dict:
        return {"minimum": self.minimum, "multiple_of": self.multiple_of, "square": self.square}


@dataclass
class ModelDescriptor:
    """A model ready for lamfast and what is known of it.

    Attributes:
        model: the module: [B,C,H,W] in [0,1] -> [B,C',sH,sW] in [0,1].
        scale: the SR factor s (1 for restoration models); None where not known yet (a model that
            takes no image, such as a video model, is measured on the input it gets).
        in_channels, out_channels: C and C' (None where not known yet).
        size: the input sizes it accepts (:class:`SizeRequirements`).
        arch: the architecture's name (``"tinysr"``, ``"spandrel:SwinIR"``, a class name).
        source: where it came from (a checkpoint path, ``"bundled:..."``, ``"module"``).
        notes: every guess the loader made and how to override it, one line each.

    Example:
        >>> import lamfast
        >>> d = lamfast.load_model()  # the bundled x4 TinySR
        >>> d.scale, d.in_channels, d.out_channels, d.size.none
        (4, 3, 3, True)
    """

    model: nn.Module
    scale: int | None
    in_channels: int | None
    out_channels: int | None
    size: SizeRequirements = field(default_factory=SizeRequirements)
    arch: str = ""
    source: str = "module"
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready: everything but the module."""
        return {"arch": self.arch, "source": self.source, "scale": self.scale, "in_channels": self.in_channels,
                "out_channels": self.out_channels, "size": self.size.summary(), "notes": list(self.notes)}


def module_of(model: "nn.Module | ModelDescriptor") -> nn.Module:
    """The module of a module or a descriptor."""
    return model.model if isinstance(model, ModelDescriptor) else model


def size_of(model: "nn.Module | ModelDescriptor") -> SizeRequirements:
    """The size requirements of a descriptor; none for a bare module."""
    return model.size if isinstance(model, ModelDescriptor) else SizeRequirements()


def first_convolution(model: nn.Module) -> int | None:
    """The input channels of the first convolution the model *runs* on an image (None: none ran).

    Found by a forward with pre-hooks on every convolution, stopped at the
    first one that fires: the order modules are registered in is not the
    order they run in (OmniSR registers its blocks before its input
    convolution). The image tried has the channels of the first registered
    convolution, then 3, then 1, until a convolution runs.
    """
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d))]
    if not convs:
        return None

    class _Seen(Exception):
        pass

    seen: list[int] = []

    def hook(module, args):
        seen.append(int(module.in_channels))
        raise _Seen

    handles = [m.register_forward_pre_hook(hook) for m in convs]
    try:
        with attribution_state(model), torch.no_grad():
            for channels in dict.fromkeys((convs[0].in_channels, 3, 1)):
                x = torch.rand(1, channels, 16, 16, generator=torch.Generator().manual_seed(0))
                try:
                    model(x.to(model_device(model), model_dtype(model)))
                except _Seen:
                    return seen[0]
                except Exception:  # noqa: BLE001 - this guess of the channels failed before any convolution
                    continue
    finally:
        for h in handles:
            h.remove()
    return None


def describe(model: nn.Module, size: SizeRequirements | None = None, arch: str | None = None,
             sample: torch.Tensor | None = None) -> ModelDescriptor:
    """Measure a module's scale and channels with one forward (model state restored).

    Args:
        model: any image-to-image module.
        size: its size requirements where known (the probe is padded to them).
        arch: its name (default: the class name).
        sample: [C,h,w] the input to try, e.g. a corner of the user's image, so errors are about
            it; default a 24x24 random image with the channels of the first convolution the model
            runs (3 if none runs).
    Returns:
        ModelDescriptor (``source="module"``), with a note of what was measured.
    Raises:
        LAMError (``param="model"``): the model fails on the sample or is not an image-to-image model.
    """
    size = size or SizeRequirements()
    channels = first_convolution(model) if sample is None else sample.shape[0]
    if sample is None:
        sample = torch.rand(channels or 3, 24, 24, generator=torch.Generator().manual_seed(0))
    x = size.pad(sample.detach()[None].to(model_device(model), model_dtype(model)))
    with attribution_state(model), torch.no_grad():
        y = call_model(model, x.clone(), f"a {x.shape[-2]}x{x.shape[-1]} input")
    scale = output_scale(y, tuple(x.shape[-2:]))
    return ModelDescriptor(model, scale, int(x.shape[1]), int(y.shape[1]), size, arch or type(model).__name__,
                           notes=[f"{arch or type(model).__name__}: scale x{scale}, {x.shape[1]} input and "
                                  f"{y.shape[1]} output channels, measured with one forward"])


def output_scale(y, lr_shape: tuple[int, int]) -> int:
    """The SR factor of an output [1,C',sH,sW] for an input of ``lr_shape``.

    Raises:
        LAMError (``param="model"``): not such a tensor, not an integer multiple, or not finite.
    """
    H, W = lr_shape
    if not isinstance(y, torch.Tensor) or y.dim() != 4 or y.shape[0] != 1 or y.shape[1] < 1:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise LAMError(f"model must return a tensor [B,C,sH,sW] for input [1,C,{H},{W}], got {shape}",
                           param="model")
    sH, sW = y.shape[-2:]
    if sH % H or sW % W or sH // H != sW // W or sH < H:
        raise LAMError(f"model output {sH}x{sW} is not an integer multiple of the input {H}x{W}: not an SR "
                           "model for this input", param="model")
    if not bool(torch.isfinite(y).all()):
        raise LAMError("model returned NaN or inf for the input image", param="model")
    return sH // H


__all__ = ["ModelDescriptor", "SizeRequirements", "describe", "first_convolution", "module_of", "output_scale",
           "size_of"]
