"""lamfast.cem against the official CEM algorithm written out as a plain loop (tests/cem/official_cem.py):
one-patch parity with local and global models, every task, many-patch parity under the documented
draws, and the reach-aware path against every block on the whole image."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lamfast
from lamfast.cem import PatchBank, cem, default_bank
from lamfast.errors import LamfastError
from lamfast.lam.progress import PathProgress

from official_cem import official_cem  # noqa: E402  (pytest puts this folder on the path)

TOL_DB = 1e-6


class GlobalSR(nn.Module):
    """x2 with a global term (the image mean through a gate): every block reaches the ROI."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x):
        y = self.conv(x) + 4 * x.mean(dim=(2, 3), keepdim=True).repeat(1, 4, 1, 1)
        return F.pixel_shuffle(torch.sigmoid(y), 2)


class LocalSR(nn.Module):
    """x2, two 3x3 convolutions: reach 2 input px."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 12, 3, padding=1)

    def forward(self, x):
        return F.pixel_shuffle(torch.sigmoid(self.b(torch.tanh(self.a(x)))) , 2)


class Denoiser(nn.Module):
    """Scale 1: the input minus a predicted residual (DnCNN's form), local."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(5)
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        return x - 0.3 * torch.tanh(self.b(torch.relu(self.a(x))))


class GatedSR(LocalSR):
    """Local, unless some input pixel is white: then a global switch moves every output. Random probe
    images always hold a near-white pixel, so the probe sees a local model; an image without one runs
    its crop exactly, and only replacing far blocks (with a white patch) shows the switch."""

    def forward(self, x):
        gate = (x.amax(dim=(1, 2, 3), keepdim=True) > 0.995).to(x.dtype)
        return super().forward(x) + 0.2 * gate


def u8(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def sr_case(model, lr: torch.Tensor, dtype=torch.float32):
    """An 8-bit LR image and a ground truth: the model's own output, 8-bit, with a ramp added (so the
    ROI has a finite PSNR)."""
    x = torch.from_numpy(u8(lr)).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        y = model(x[None].to(dtype))[0].float()
    ramp = torch.linspace(-0.1, 0.1, y.shape[-1])
    return x, u8(lr), u8((y + ramp).clamp(0, 1))


@pytest.fixture(scope="module")
def astronaut32(lr32):
    return lr32


def one_patch(value: int = 0, size: int = 8) -> np.ndarray:
    g = np.random.default_rng(value)
    return g.integers(0, 256, (1, size, size, 3), dtype=np.uint8)


def check_parity(r, ref) -> None:
    assert r.psnr == pytest.approx(ref["psnr"], abs=TOL_DB)
    assert np.abs(r.effect - ref["effect"]).max() <= TOL_DB
    np.testing.assert_array_equal(r.effect != 0, ref["effect"] != 0)


# float32 batches and crops round differently from a batch-1 forward of the whole image (as the official
# code's batches of 100 differ from its batch-1 unperturbed forward): an 8-bit rounding of the ROI can flip,
# which moves a block's PSNR by ~1e-4 dB (seen on this case). float64 leaves no such flip.
FLOAT32_FLIP_DB = 1e-3


@pytest.fixture(scope="module")
def tinysr64(tinysr):
    return copy.deepcopy(tinysr).double()


@pytest.mark.parametrize("h,w,roi,block_size", [(48, 40, 16, 8), (0, 0, 8, 12), (100, 64, 12, 16)])
def test_one_patch_parity_local(tinysr64, astronaut32, h, w, roi, block_size):
    x, lr_u8, gt = sr_case(tinysr64, astronaut32, torch.float64)
    bank = one_patch(1)
    ref = official_cem(tinysr64, lr_u8, gt, h, w, roi, scale=4, block_size=block_size, bank=bank, coarse=3, fine=5,
                       tol=0.01, seed=0, dtype=torch.float64)
    r = cem(tinysr64, x, gt, h, w, roi, block_size=block_size, patches=list(bank), coarse=3, fine=5)
    check_parity(r, ref)
    assert r.box is not None and not r.reached.all(), r.path
    assert r.resize == "opencv" and r.official_forwards == ref["forwards"]
    # one patch: every intervention of a block is one image, run once per stage (plus the whole-image
    # forward, the reach probe's 4 rows and the 3 rows of the checks)
    fine_blocks = int((r.fine_psnr[r.reached] != 0).any(axis=1).sum())
    assert r.forwards <= 1 + 4 + 3 + int(r.reached.sum()) + fine_blocks
    assert (r.effect != 0).any()


@pytest.mark.parametrize("h,w,roi,block_size", [(48, 40, 16, 8), (100, 64, 12, 16)])
def test_one_patch_parity_float32(tinysr, astronaut32, h, w, roi, block_size):
    x, lr_u8, gt = sr_case(tinysr, astronaut32)
    bank = one_patch(1)
    ref = official_cem(tinysr, lr_u8, gt, h, w, roi, scale=4, block_size=block_size, bank=bank, coarse=3, fine=5,
                       tol=0.01, seed=0)
    plain = cem(tinysr, x, gt, h, w, roi, block_size=block_size, patches=list(bank), coarse=3, fine=5, crop="off",
                batch_size=1)
    check_parity(plain, ref)  # the same forwards: equal
    r = cem(tinysr, x, gt, h, w, roi, block_size=block_size, patches=list(bank), coarse=3, fine=5)
    assert np.abs(r.effect - ref["effect"]).max() <= FLOAT32_FLIP_DB
    assert np.abs(r.effect - ref["effect"]).max() <= 1e-6 or (r.effect != ref["effect"]).sum() <= 2


def test_one_patch_parity_global():
    model = GlobalSR().double().eval()
    lr = torch.rand(3, 12, 14, generator=torch.Generator().manual_seed(0))
    x, lr_u8, gt = sr_case(model, lr, torch.float64)
    bank = one_patch(2)
    ref = official_cem(model, lr_u8, gt, 4, 6, 8, scale=2, block_size=4, bank=bank, coarse=2, fine=3, tol=0.01,
                       seed=0, dtype=torch.float64)
    r = cem(model, x, gt, 4, 6, 8, block_size=4, patches=list(bank), coarse=2, fine=3)
    check_parity(r, ref)
    assert r.box is None and r.reached.all() and "reaches the image border" in r.path
    assert (r.effect[~r.roi_blocks] != 0).sum() > 10  # a global model: blocks far from the ROI matter


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_many_patches_parity(dtype):
    model = LocalSR().to(dtype).eval()
    lr = torch.rand(3, 20, 18, generator=torch.Generator().manual_seed(1))
    x, lr_u8, gt = sr_case(model, lr, dtype)
    bank = default_bank().patches[::7]
    ref = official_cem(model, lr_u8, gt, 14, 10, 8, scale=2, block_size=4, bank=bank, coarse=3, fine=6, tol=0.01,
                       seed=7, dtype=dtype)
    r = cem(model, x, gt, 14, 10, 8, block_size=4, patches=list(bank), coarse=3, fine=6, seed=7, batch_size=5)
    check_parity(r, ref)
    assert r.box is not None and 0 < r.reached.sum() < r.reached.size
    np.testing.assert_allclose(r.coarse_psnr[r.reached], ref["coarse"][r.reached], atol=TOL_DB)
    # every block on the whole image: the same numbers
    off = cem(model, x, gt, 14, 10, 8, block_size=4, patches=list(bank), coarse=3, fine=6, seed=7, crop="off")
    assert off.box is None and off.reached.all()
    np.testing.assert_array_equal(off.effect, r.effect)
    assert r.forwards < off.forwards


def test_denoise_parity():
    model = Denoiser().eval()
    clean = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2))
    clean_u8 = u8(clean)
    # the official noisy input: sigma 50/255 from np.random.seed(0), clipped, truncated to 8 bits
    gauss = np.random.RandomState(0).normal(0, 50 / 255, clean_u8.shape)
    noisy_u8 = np.uint8(np.clip(gauss + clean_u8 / 255, 0, 1) * 255)
    x = torch.from_numpy(noisy_u8).permute(2, 0, 1).float() / 255
    bank = default_bank().patches[:40]
    ref = official_cem(model, noisy_u8, clean_u8, 6, 5, 4, scale=1, block_size=2, bank=bank, coarse=2, fine=4,
                       tol=0.01, seed=3, task="denoise")
    r = cem(model, x, clean_u8, 6, 5, 4, block_size=2, patches=list(bank), coarse=2, fine=4, seed=3, task="denoise")
    check_parity(r, ref)
    assert r.scale == 1 and r.resize == "opencv" and not r.reached.all()


def test_derain_parity():
    cv2 = pytest.importorskip("cv2")
    model = Denoiser().eval()
    clean_u8 = u8(torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(4)))
    rain = np.zeros((16, 16, 3), np.uint8)
    rain[::3, 2::4] = 180
    rain[5:9, 7] = 255
    beta = 0.7314
    rainy = cv2.addWeighted(clean_u8, 1, rain, beta, 0)
    x = torch.from_numpy(rainy).permute(2, 0, 1).float() / 255
    bank = default_bank().patches[100:104, :2, :2]  # block size: written as they are, as the official DR task
    ref = official_cem(model, rainy, clean_u8, 6, 6, 4, scale=1, block_size=2, bank=bank, coarse=2, fine=3,
                       tol=0.01, seed=1, task="derain", clean_u8=clean_u8, rain=rain, beta=beta)
    r = cem(model, x, clean_u8, 6, 6, 4, block_size=2, patches=list(bank), coarse=2, fine=3, seed=1, task="derain",
            rain=(rain, beta))
    check_parity(r, ref)
    assert r.resize == "none"


def test_beyond_reach_check_falls_back():
    model = GatedSR().eval()
    lr = 0.9 * torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(5))
    x, lr_u8, gt = sr_case(model, lr)
    white = np.full((1, 2, 2, 3), 255, np.uint8)
    r = cem(model, x, gt, 8, 8, 8, block_size=4, patches=list(white), coarse=1, fine=2)
    assert r.box is None and r.reached.all() and "beyond the measured reach" in r.path
    ref = official_cem(model, lr_u8, gt, 8, 8, 8, scale=2, block_size=4, bank=white, coarse=1, fine=2, tol=0.01,
                       seed=0)
    check_parity(r, ref)


def test_counts_range_and_reproducible(tinysr, astronaut32):
    x, _, gt = sr_case(tinysr, astronaut32)
    a = cem(tinysr, x, gt, 48, 40, 16, coarse=2, fine=3, seed=11)
    b = cem(tinysr, x, gt, 48, 40, 16, coarse=2, fine=3, seed=11)
    c = cem(tinysr, x, gt, 48, 40, 16, coarse=2, fine=3, seed=12)
    np.testing.assert_array_equal(a.effect, b.effect)
    assert not np.array_equal(a.coarse_psnr, c.coarse_psnr)
    outside = a.effect[~a.roi_blocks]
    assert a.counts == {"positive": int((outside > 0).sum()), "negative": int((outside < 0).sum()),
                        "zero": int((outside == 0).sum())}
    # the official table: ROI blocks set to 999 before counting (so they count as positive)
    marked = a.effect.copy()
    marked[a.roi_blocks] = 999
    assert a.official_counts() == (int((marked < 0).sum()), int((marked > 0).sum()), int((marked == 0).sum()))
    lo, hi = a.effect_range
    assert lo == min(0.0, outside.min()) and hi == max(0.0, outside.max())
    assert a.roi_blocks.sum() == (16 // 8) ** 2 and a.roi_blocks[48 // 8, 40 // 8]


def test_progress_events(tinysr, astronaut32):
    x, _, gt = sr_case(tinysr, astronaut32)

    class Count(PathProgress):
        expected = done = 0
        estimates = []

        def expect(self, points, windows):
            self.expected += points

        def advance(self, points):
            self.done += points

        def estimate(self, seconds):
            self.estimates.append(seconds)

    counter = Count()
    r = cem(tinysr, x, gt, 48, 40, 16, coarse=2, fine=3, progress=counter)
    assert counter.done == counter.expected > 0 and len(counter.estimates) >= 1
    assert r.forwards > counter.done  # plus the whole-image forward, the reach probe and the checks


def test_model_untouched(tinysr, astronaut32):
    x, _, gt = sr_case(tinysr, astronaut32)
    model = copy.deepcopy(tinysr).train()
    model.body[0].weight.requires_grad_(False) if hasattr(model, "body") and isinstance(model.body, nn.Sequential) \
        else None
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    cem(model, x, gt, 48, 40, 16, coarse=1, fine=1)
    with pytest.raises(LamfastError):
        cem(model, x, gt[:-4], 48, 40, 16, coarse=1, fine=1)
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model._forward_pre_hooks


@pytest.mark.parametrize("kwargs,param", [
    ({"h": 250}, "roi_size"),
    ({"block_size": 2}, "block_size"),
    ({"task": "deblur"}, "task"),
    ({"task": "derain"}, "rain"),
    ({"rain": (np.zeros((64, 64, 3), np.uint8), 0.5)}, "rain"),
    ({"patches": [np.zeros((8, 8), np.float32)]}, "patches"),
    ({"patches": [np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4, 3), np.uint8)]}, "patches"),
    ({"patches": "/no/such/folder"}, "patches"),
    ({"tol": -1}, "tol"),
    ({"coarse": 0}, "coarse"),
    ({"crop": "sometimes"}, "crop"),
    ({"progress": "yes"}, "progress"),
])
def test_errors(tinysr, astronaut32, kwargs, param):
    x, _, gt = sr_case(tinysr, astronaut32)
    args = {"h": 48, "w": 40, "roi_size": 16, **kwargs}
    h, w, roi = args.pop("h"), args.pop("w"), args.pop("roi_size")
    with pytest.raises(LamfastError) as info:
        cem(tinysr, x, gt, h, w, roi, **args)
    assert info.value.param == param and "\n" not in str(info.value)


def test_ground_truth_forms(tinysr, astronaut32):
    x, _, gt = sr_case(tinysr, astronaut32)
    as_tensor = torch.from_numpy(gt).permute(2, 0, 1).float() / 255
    a = cem(tinysr, x, gt, 48, 40, 16, coarse=1, fine=2)
    b = cem(tinysr, x, as_tensor, 48, 40, 16, coarse=1, fine=2)
    np.testing.assert_array_equal(a.effect, b.effect)
    with pytest.raises(LamfastError, match="ground truth of the output"):
        cem(tinysr, x, gt[:100], 48, 40, 16)


def test_patch_bank_sources(tmp_path):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / f"p{i}.png")
    bank = PatchBank.of(tmp_path)
    assert len(bank) == 3 and bank.channels == 3 and bank.patches[2, 0, 0, 0] == 80
    assert len(PatchBank.of([tmp_path / "p0.png"])) == 1
    resized, how = bank.resized(2)
    assert resized.shape == (3, 2, 2, 3) and how == "opencv"
    assert len(default_bank()) == 640 and default_bank() is default_bank()


def test_torch_resize_is_close_to_opencv(monkeypatch):
    cv2 = pytest.importorskip("cv2")
    bank = PatchBank.of(list(default_bank().patches[:64]))
    expected = np.stack([cv2.resize(p, (2, 2), interpolation=cv2.INTER_CUBIC) for p in bank.patches])
    import builtins

    real_import = builtins.__import__

    def no_cv2(name, *args, **kwargs):
        if name == "cv2":
            raise ImportError("no cv2")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cv2)
    resized, how = bank.resized(2)
    assert how == "torch"
    # OpenCV rounds its fixed-point cubic differently: within a few grey levels, not bit for bit
    assert np.abs(resized.astype(int) - expected.astype(int)).max() <= 8


def test_public_facade():
    assert lamfast.cem(*()) if False else callable(lamfast.cem)
    assert lamfast.cem.__call__ is cem and lamfast.CEMResult is lamfast.cem.CEMResult
    assert lamfast.cem.default_bank is default_bank


def test_forwards_ten_times_fewer_on_a_256_lr_image():
    """The official configuration on a local model (the bundled TinySR, reach 6 LR px) and an image of
    256² LR (the astronaut tiled 4x4): the official loop's count (validated against the loop itself
    in the parity tests above) is over 10x lamfast's. On the 64² demo image it is 1.8x: the fine stage,
    which runs inside the reach for both, dominates there."""
    from PIL import Image

    from lamfast.bundled import data_path
    from lamfast.imageio import prepare_images, to_tensor

    tile = Image.open(data_path("astronaut.png")).convert("RGB")
    big = Image.new("RGB", (1024, 1024))
    for i in range(4):
        for j in range(4):
            big.paste(tile, (256 * j, 256 * i))
    hr, lr = prepare_images(big, 4)
    r = cem(lamfast.load_model(), to_tensor(lr), np.asarray(hr), 152, 96, 32)
    assert r.effect.shape == (128, 128) and r.reached.sum() == 144
    assert r.official_forwards >= 10 * r.forwards, (r.forwards, r.official_forwards)
