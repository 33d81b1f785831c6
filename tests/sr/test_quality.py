"""PSNR and SSIM beside DI (P15): ``lamfast.quality.sr_quality`` against scikit-image's metrics on
the SR field's convention, a known value, and the dataset run's rows."""
from __future__ import annotations

import math
import sqlite3

import numpy as np
import pytest
import torch

from lamfast.cli import main
from lamfast.errors import LamfastError
from lamfast.models import bundled_model, data_path
from lamfast.quality import sr_quality
from lamfast.request import prepare_input

from conftest import astronaut_images

skimage = pytest.importorskip("skimage")


def _oracle(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> tuple[float, float]:
    """scikit-image on the convention: 8-bit images, Y of YCbCr for RGB, the border cropped."""
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    def prep(t):
        u8 = np.round(np.clip(t.double().numpy(), 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
        bands = rgb2ycbcr(u8)[..., :1] if u8.shape[-1] == 3 else u8.astype(np.float64)
        return bands[scale:-scale, scale:-scale] if scale else bands

    a, b = prep(sr), prep(hr)
    ssim = np.mean([structural_similarity(a[..., c], b[..., c], gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False, data_range=255) for c in range(a.shape[-1])])
    return peak_signal_noise_ratio(b, a, data_range=255), float(ssim)


@pytest.mark.parametrize("channels,size,scale", [(3, (48, 40), 4), (3, (33, 57), 3), (1, (64, 64), 2), (4, (30, 30), 0)])
def test_psnr_and_ssim_equal_scikit_image_on_the_y_channel_convention(channels, size, scale):
    g = torch.Generator().manual_seed(channels * 100 + scale)
    hr = torch.rand(channels, *size, generator=g, dtype=torch.float64)
    sr = (hr + 0.08 * torch.randn(channels, *size, generator=g, dtype=torch.float64)).clamp(-0.1, 1.1)
    got = sr_quality(sr, hr, scale)
    psnr, ssim = _oracle(sr, hr, scale)
    assert abs(got.psnr - psnr) < 1e-9 and abs(got.ssim - ssim) < 1e-9, (got, psnr, ssim)


def test_known_values():
    hr = torch.full((1, 32, 32), 100 / 255, dtype=torch.float64)
    sr = torch.full((1, 32, 32), 110 / 255, dtype=torch.float64)
    q = sr_quality(sr, hr, 4)
    assert abs(q.psnr - 10 * math.log10(255 ** 2 / 100)) < 1e-12  # 28.1308 dB
    same = sr_quality(hr, hr, 4)
    assert same.psnr == math.inf and abs(same.ssim - 1.0) < 1e-12
    with pytest.raises(LamfastError, match="too small for SSIM"):
        sr_quality(hr[:, :16, :16], hr[:, :16, :16], 4)
    with pytest.raises(LamfastError, match="must be one"):
        sr_quality(hr, hr[:, :16], 4)


def test_a_dataset_run_stores_psnr_and_ssim_beside_di(tmp_path, capsys):
    folder = astronaut_images(tmp_path / "imgs", {"a.png": (0, 0, 96, 96)})
    store = tmp_path / "s.sqlite"
    assert main(["run", str(folder), "--windows", "list:8,8;40,40:16", "--fold", "2", "--no-progress",
                 "--store", str(store)]) == 0
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT psnr, ssim, lr_size FROM results").fetchall()
    model = bundled_model().model
    sr_input = prepare_input(model, folder / "a.png")
    with torch.no_grad():
        sr = model(sr_input.tensor()[None])[0]
    want = sr_quality(sr, sr_input.hr_tensor(), 4)
    assert len(rows) == 2 and all(r == rows[0] for r in rows)
    assert abs(rows[0][0] - want.psnr) < 1e-6 and abs(rows[0][1] - want.ssim) < 1e-6 and rows[0][2] == "24x24"
    assert 20 < want.psnr < 40  # a trained x4 model on a photo
    # an LR input has no HR to compare with
    assert main(["run", str(folder), "--lr-input", "--windows", "list:8,8:16", "--fold", "2", "--no-progress",
                 "--store", str(store)]) == 0
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT psnr, ssim, lr_size FROM results WHERE params LIKE '%\"lr_input\": true%'").fetchall() \
            == [(None, None, "96x96")]
    # the export carries them as numbers
    assert main(["export", str(store), "-o", str(tmp_path / "r.csv")]) == 0
    header = (tmp_path / "r.csv").read_text().splitlines()[0].split(",")
    assert {"psnr", "ssim", "lr_size"} <= set(header)


def test_the_report_shows_quality_beside_di_per_image_and_warns_when_sizes_are_pooled(tmp_path):
    import html
    import re

    folder = astronaut_images(tmp_path / "imgs", {"big.png": (0, 0, 96, 96), "small.png": (96, 96, 160, 160)})
    store = tmp_path / "s.sqlite"
    torch.manual_seed(0)
    from lamfast.models import EDSR

    torch.save(EDSR(n_resblocks=1, n_feats=8, rgb_range=1.0).state_dict(), tmp_path / "e.pt")
    assert main(["run", str(folder), "--model", "TinySR=bundled", "--model", f"E={tmp_path / 'e.pt'}", "--windows",
                 "list:8,8:16", "--fold", "2", "--no-progress", "--store", str(store)]) == 0
    assert main(["report", str(store), "-o", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "images of 2 LR sizes (16x16, 24x24), pooled below" in page
    with sqlite3.connect(store) as db:
        psnr = dict(db.execute("SELECT label || '|' || image, psnr FROM results"))
    big = next(v for k, v in psnr.items() if k.startswith("TinySR|") and k.endswith("big.png"))
    small = next(v for k, v in psnr.items() if k.startswith("TinySR|") and k.endswith("small.png"))
    per_image = page.split("<h3>Per image</h3>")[1].split("</table>")[0]
    assert f"data-v='{big}'" in per_image and "24x24" in per_image and "16x16" in per_image
    models = page.split("<h3>DI per model</h3>")[1].split("</table>")[0]
    assert f"data-v='{(big + small) / 2}'" in models  # the mean over the images
    scatter = page.split("<svg class=\"scatter\"")[1].split("</svg>")[0]
    assert len(re.findall(r"<circle ", scatter)) == 2 and "TinySR" in html.unescape(scatter)
    assert "Y channel (BT.601)" in page
    pairs = page.split("<h3>Paired comparison</h3>")[1].split("</table>")[0]
    assert "Wilcoxon p" in pairs and "<td class='name'>windows</td>" in pairs and "<td class='name'>images</td>" in pairs


def test_di_of_one_window_grows_as_the_image_around_it_shrinks():
    """What the README says of image size: the same window content, a smaller LR image, a higher DI."""
    import lamfast

    model = bundled_model().model
    x = prepare_input(model, data_path("astronaut.png")).tensor()
    whole = lamfast.lam(model, x, 72, 72, 16, fold=10).di
    crops = [lamfast.lam(model, x[:, 16:16 + s, 16:16 + s].contiguous(), 8, 8, 16, fold=10).di for s in (32, 16)]
    assert round(whole, 2) == 0.74 and [round(d, 2) for d in crops] == [2.81, 11.22]


def test_paired_comparisons_give_wilcoxon_over_windows_and_over_images():
    from scipy.stats import wilcoxon

    from lamfast.dataset.stats import paired, paired_images

    g = np.random.default_rng(0)
    rows_a, rows_b = [], []
    for i in range(6):  # 6 images, 5 windows each; B has one window fewer on image 0
        for k in range(5):
            a, b = g.normal(1.0, 0.3), g.normal(0.8, 0.3)
            rows_a.append({"image": f"i{i}", "h": k, "w": 0, "size": 16, "di": a})
            if i or k:
                rows_b.append({"image": f"i{i}", "h": k, "w": 0, "size": 16, "di": b})
    b = {(r["image"], r["h"]): r["di"] for r in rows_b}
    diff = [r["di"] - b[(r["image"], r["h"])] for r in rows_a if (r["image"], r["h"]) in b]
    w = paired(rows_a, rows_b)
    assert w["n"] == 29 and abs(w["wilcoxon_p"] - wilcoxon(diff).pvalue) < 1e-12
    per_image = [np.mean([r["di"] for r in rows_a if r["image"] == f"i{i}" and (r["image"], r["h"]) in b])
                 - np.mean([r["di"] for r in rows_b if r["image"] == f"i{i}"]) for i in range(6)]
    im = paired_images(rows_a, rows_b)
    assert im["n"] == 6 and abs(im["mean_diff"] - np.mean(per_image)) < 1e-12
    assert abs(im["wilcoxon_p"] - wilcoxon(per_image).pvalue) < 1e-12
    same = paired(rows_a, rows_a)
    assert same["wilcoxon_p"] is None and same["mean_diff"] == 0
