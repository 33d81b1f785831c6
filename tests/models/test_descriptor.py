"""lamfast.load_model returns a ModelDescriptor: scale, channels and size requirements taken from spandrel's
descriptor or lamfast's architectures, measured only where nothing is known; registered architectures are
detected before they are built; the loader's --arch hints are real class names; size requirements are
honoured (padded inputs, aligned crops)."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import lamfast
from lamfast.descriptor import ModelDescriptor, SizeRequirements, describe, first_convolution
from lamfast.errors import LamfastError
from lamfast.models import CheckpointError, load_model, register_model

from conftest import optional_module

# spandrel classes built small (or with their defaults where those are small), untrained.
SPANDREL = {
    "Compact": ("Compact", {}),
    "ESRGAN": ("ESRGAN", {"num_blocks": 2}),
    "SwinIR": ("SwinIR", dict(upscale=2, img_size=32, window_size=8, depths=[2, 2], num_heads=[3, 3], embed_dim=24,
                              mlp_ratio=2, upsampler="pixelshuffle")),
    "OmniSR": ("OmniSR", {}),
    "SAFMN": ("SAFMN", dict(dim=16, n_blocks=2, upscaling_factor=2)),
    "SPAN": ("SPAN", dict(num_in_ch=3, num_out_ch=3)),
    "RCAN": ("RCAN", dict(n_resgroups=1, n_resblocks=1)),
    "RealCUGAN": ("UpCunet2x", {}),
}


def _spandrel(name: str, tmp_path):
    module_name, (cls_name, kwargs) = name, SPANDREL[name]
    module = optional_module(f"spandrel.architectures.{module_name}")
    torch.manual_seed(0)
    model = getattr(module, cls_name)(**kwargs).eval()
    path = tmp_path / f"{name}.pth"
    torch.save(model.state_dict(), path)
    return model, path


class TestModelDescriptor:
    """What lamfast.load_model says of a model."""

    def test_the_bundled_model_is_described_by_its_architecture(self):
        d = load_model()
        assert isinstance(d, ModelDescriptor)
        assert (d.arch, d.scale, d.in_channels, d.out_channels, d.size.none) == ("tinysr", 4, 3, 3, True)
        assert d.summary()["source"] == "bundled:tinysr_x4.pt"

    @pytest.mark.parametrize("name", list(SPANDREL))
    def test_spandrel_models_keep_spandrels_descriptor(self, name, tmp_path):
        model, path = _spandrel(name, tmp_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spandrel = optional_module("spandrel")
            theirs = spandrel.ModelLoader().load_from_state_dict(torch.load(path, weights_only=True))
            d = load_model(path)
        assert (d.scale, d.in_channels, d.out_channels) == (theirs.scale, theirs.input_channels, theirs.output_channels)
        req = theirs.size_requirements
        assert d.size == SizeRequirements(req.minimum, req.multiple_of, req.square)
        assert d.arch == f"spandrel:{theirs.architecture.name}"

    @pytest.mark.parametrize("name", list(SPANDREL))
    def test_every_arch_hint_is_a_class_that_loads_the_checkpoint(self, name, tmp_path):
        """The loader's note names the class as spandrel exports it; fed back with the class's settings, it
        loads the same weights and gives the same output."""
        model, path = _spandrel(name, tmp_path)
        d = load_model(path)
        hint = next(n for n in d.notes if "name the class" in n)
        spec = hint.split("e.g. ", 1)[1].split(":CHECKPOINT", 1)[0]
        assert spec.startswith("spandrel.architectures.") and spec.count(":") == 1
        named = load_model(f"{spec}:{path}", model_kwargs=SPANDREL[name][1])
        x = d.size.pad(torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)))
        with torch.no_grad():  # copies: some of spandrel's models scale their input in place
            assert torch.allclose(named.model(x.clone()), d.model(x.clone()), atol=1e-6)

    def test_omnisr_takes_three_channels_though_its_blocks_register_first(self, tmp_path):
        model, path = _spandrel("OmniSR", tmp_path)
        first_registered = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
        assert first_registered == 64  # why "the first registered Conv2d" misread it
        assert first_convolution(model) == 3 and load_model(path).in_channels == 3
        from lamfast.request.sr_input import choose_color

        assert choose_color(load_model(path), None) == ("rgb", [])
        assert choose_color(model, None) == ("rgb", [])  # the bare module: the first convolution it runs

    def test_a_bare_module_is_measured_with_one_forward(self):
        class X3(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(2, 2 * 9, 3, padding=1)

            def forward(self, x):
                return nn.functional.pixel_shuffle(self.conv(x), 3)[:, :1]

        d = describe(X3())
        assert (d.scale, d.in_channels, d.out_channels) == (3, 2, 1)


class TestDetection:
    """Registered architectures are detected from a checkpoint's keys before anything is built."""

    def test_every_shipped_architecture_declares_detect(self):
        from lamfast.models.registry import get_architecture

        for name in ("tinysr", "tinyvsr", "edsr", "carn", "san", "rnan"):
            assert get_architecture(name).detect is not None, name

    def test_a_bug_in_a_builder_is_said_not_read_as_another_architecture(self, tmp_path):
        @register_model("test-buggy", detect=("buggy.head.weight",))
        class Buggy(nn.Module):
            @classmethod
            def infer(cls, sd, given=None):
                return {"width": sd["buggy.hed.weight"].shape[0]}, {}  # the bug: a misspelt key

        path = tmp_path / "buggy.pt"
        torch.save({"buggy.head.weight": torch.zeros(4, 3, 3, 3)}, path)
        with pytest.raises(CheckpointError, match="test-buggy.*its sizing code failed.*KeyError") as info:
            load_model(path)
        assert "spandrel" not in str(info.value)

    def test_two_matching_layouts_ask_for_a_name(self, tmp_path):
        for name in ("test-twin-a", "test-twin-b"):
            register_model(name, detect=("twin.weight",))(nn.Identity)
        path = tmp_path / "twin.pt"
        torch.save({"twin.weight": torch.zeros(1)}, path)
        with pytest.raises(CheckpointError, match="several registered architectures.*test-twin-a, test-twin-b"):
            load_model(path)


class PadTo8(nn.Module):
    """x2, and refuses any side that is not a multiple of 8 (as a U-Net with three poolings would)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"sides must be multiples of 8, got {tuple(x.shape[-2:])}")
        return nn.functional.pixel_shuffle(self.conv(x), 2)


class TestSizeRequirements:
    """A descriptor's size requirements are honoured: the input is padded as spandrel pads, crops aligned."""

    def test_padding_is_spandrels(self):
        spandrel_size = optional_module("spandrel.__helpers.size_req")
        x = torch.rand(1, 3, 13, 30)
        for req in [(16, 1, False), (0, 8, False), (16, 8, True), (0, 4, True)]:
            ours = SizeRequirements(*req).pad(x)
            _, theirs = spandrel_size.pad_tensor(x, spandrel_size.SizeRequirements(*req))
            assert torch.equal(ours, theirs), req

    def test_a_model_that_needs_a_multiple_runs_on_any_size(self):
        d = ModelDescriptor(PadTo8(), 2, 3, 3, SizeRequirements(multiple_of=8), "pad-to-8")
        x = torch.rand(3, 45, 62, generator=torch.Generator().manual_seed(2))
        with pytest.raises(LamfastError, match="multiples of 8"):
            lamfast.lam(d.model, x, 4, 4, 8, fold=2)  # the bare module: nothing known, nothing padded
        for h, w in [(40, 50), (70, 100)]:
            r = lamfast.lam(d, x, h, w, 8, fold=2, crop="off")
            assert r.sr.shape == (3, 90, 124) and r.attribution.shape == (3, 45, 62)
            cropped = lamfast.lam(d, x, h, w, 8, fold=2, crop=3)
            t, left, b, rr = cropped.crop.box
            assert (b - t) % 8 == (rr - left) % 8 == 0 and b - t < 45 and rr - left < 62  # sides the model takes
            if (h, w) == (40, 50):  # inside the image: on the multiple's grid, as the image's own pixels
                assert t % 8 == left % 8 == 0
            assert torch.allclose(cropped.attribution, r.attribution, atol=1e-6)
