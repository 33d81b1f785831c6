"""FAIG over a dataset (the mean of per-image scores, ranked as the official sum is), masking the top filters
against random ones, the layer figure, and ``lamfast faig``."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

import lamfast
from lamfast.cli import main
from lamfast.errors import LamfastError
from lamfast.filter_attribution import faig_dataset, filter_parameters
from lamfast.filter_figure import filter_layers_figure, layer_counts
from lamfast.filter_masking import masked_model, masking_study
from lamfast.quality import sr_psnr


@pytest.fixture(scope="module")
def pair():
    """The bundled TinySR and a copy with 40 kernels of two layers moved (the only filters that changed)."""
    base = lamfast.load_model().model.eval()
    tuned = copy.deepcopy(base)
    g = torch.Generator().manual_seed(0)
    changed = []
    filters = [(n, o, i) for n, p in filter_parameters(tuned) for o in range(p.shape[0]) for i in range(p.shape[1])]
    params = dict(tuned.named_parameters())
    with torch.no_grad():
        for k in torch.randperm(len(filters), generator=g)[:40].tolist():
            name, o, i = filters[k]
            params[name][o, i] += 0.2 * torch.randn(params[name][o, i].shape, generator=g)
            changed.append(k)
    return base, tuned, filters, sorted(changed)


@pytest.fixture(scope="module")
def triples():
    from lamfast.gaussian import gaussian_blur
    from lamfast.request import prepare_input

    data = prepare_input(lamfast.load_model(), "bundled")
    lr, hr = data.tensor(), data.hr_tensor()
    g = torch.Generator().manual_seed(1)
    out = []
    for y, x in ((0, 0), (24, 24), (40, 8)):
        crop, gt = lr[:, y:y + 24, x:x + 24], hr[:, 4 * y:4 * y + 96, 4 * x:4 * x + 96]
        out.append(((crop + 0.08 * torch.randn(crop.shape, generator=g)).clamp(0, 1), gaussian_blur(crop, 1.5, 9), gt))
    return out


def test_dataset_scores_are_the_mean_of_the_images_and_rank_as_the_official_sum(pair, triples):
    base, tuned, filters, changed = pair
    r = faig_dataset(base, tuned, triples, steps=6)
    singles = [lamfast.faig(base, tuned, a, b, gt, steps=6) for a, b, gt in triples]
    torch.testing.assert_close(r.per_image, torch.stack([s.scores for s in singles]), rtol=0, atol=0)
    torch.testing.assert_close(r.scores, r.per_image.mean(0))
    total = sum(s.scores.numpy() for s in singles)
    official = np.argsort(total, kind="stable")[::-1]
    moved = r.scores != 0
    # unchanged filters score exactly 0 (so do changed ones whose gradient is 0: dead channels); the
    # ranking of the others is the official one of the sum
    assert set(torch.nonzero(moved).flatten().tolist()) <= set(changed) and moved.sum() > 20
    assert [int(i) for i in r.ranking()[:moved.sum()] if r.scores[i] > 0] == \
        [int(i) for i in official if total[i] > 0]
    assert r.filters == filters and r.names == ["image 0", "image 1", "image 2"] and len(r.top(0.01)) == 57


def test_masked_model_swaps_kernels_and_leaves_the_models(pair):
    base, tuned, filters, changed = pair
    before = {k: v.clone() for k, v in tuned.state_dict().items()}
    m = masked_model(tuned, base, filters, changed)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(m(x), base(x), rtol=0, atol=0)  # every change undone: the baseline
    assert all(torch.equal(before[k], v) for k, v in tuned.state_dict().items())
    params = dict(m.named_parameters())
    name, o, i = filters[changed[0]]
    assert torch.equal(params[name][o, i], dict(base.named_parameters())[name][o, i])


def test_masking_study_rows_are_the_masked_models_psnr(pair, triples):
    base, tuned, filters, changed = pair
    r = faig_dataset(base, tuned, triples, steps=4)
    study = masking_study(base, tuned, r.ranking(), r.filters, triples, shares=(0.005, 0.01), seed=3)
    assert [(row.share, row.how) for row in study.rows] == [(0.005, "top"), (0.005, "random"), (0.01, "top"),
                                                             (0.01, "random")]

    def mean_psnr(model, which):
        with torch.no_grad():
            return float(np.mean([sr_psnr(model(t[which][None])[0].clamp(0, 1), t[2], 4) for t in triples]))

    assert study.target_psnr1 == pytest.approx(mean_psnr(tuned, 0), abs=1e-9)
    top = study.rows[2]
    masked = masked_model(tuned, base, r.filters, [int(i) for i in r.ranking()[:top.k]])
    assert top.psnr1 == pytest.approx(mean_psnr(masked, 0), abs=1e-9)
    assert top.drop1 == pytest.approx(study.target_psnr1 - top.psnr1)
    rand = study.rows[3]
    chosen = np.random.default_rng(3).permutation(len(r.filters))[:rand.k]
    assert rand.psnr2 == pytest.approx(mean_psnr(masked_model(tuned, base, r.filters, chosen), 1), abs=1e-9)
    # the top 1 % holds every changed filter with a score: masking them undoes more than random ones do
    assert abs(top.drop1) > abs(rand.drop1)
    with pytest.raises(LamfastError, match="shares"):
        masking_study(base, tuned, r.ranking(), r.filters, triples, shares=(0,))


def test_layer_counts_and_figure(pair):
    _, _, filters, changed = pair
    counts = layer_counts(filters, changed)
    assert sum(n for _, n, _ in counts) == len(filters) and sum(h for _, _, h in counts) == len(changed)
    assert [name for name, _, _ in counts] == [n for n, _ in filter_parameters(lamfast.load_model().model)]
    img = filter_layers_figure(filters, changed, title="changed")
    assert img.size[0] > 200 and img.size[1] > 320


def _write(folder, name, t):
    folder.mkdir(exist_ok=True)
    Image.fromarray((t.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()).save(folder / name)


def test_faig_command(pair, triples, tmp_path, capsys):
    base, tuned, filters, _ = pair
    torch.save(base.state_dict(), tmp_path / "base.pt")
    torch.save(tuned.state_dict(), tmp_path / "tuned.pt")
    for k, (a, b, gt) in enumerate(triples):
        for sub, t in (("noisy", a), ("blurry", b), ("gt", gt)):
            _write(tmp_path / sub, f"{k}.png", t)
    out = tmp_path / "out"
    argv = ["faig", "--baseline", str(tmp_path / "base.pt"), "--target", str(tmp_path / "tuned.pt"), "--img1",
            str(tmp_path / "noisy"), "--img2", str(tmp_path / "blurry"), "--gt", str(tmp_path / "gt"), "--steps", "4",
            "--shares", "1", "--no-progress", "-o", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "mask top" in printed and "mask random" in printed
    summary = json.loads((out / "faig.json").read_text())
    ranking = np.loadtxt(out / "ranking.txt", dtype=int)
    assert len(ranking) == len(filters) == summary["filters"] and summary["images"] == ["0.png", "1.png", "2.png"]
    assert [r["how"] for r in summary["masking"]["rows"]] == ["top", "random"]
    assert (out / "layers.png").is_file() and np.load(out / "scores.npy").shape == (len(filters),)
    # the files read back as the library computes them (8-bit images, as written)
    from lamfast.imageio import read_rgb, to_tensor

    back = [tuple(to_tensor(read_rgb(tmp_path / sub / f"{k}.png")[0]) for sub in ("noisy", "blurry", "gt"))
            for k in range(3)]
    r = faig_dataset(base, tuned, back, steps=4)
    np.testing.assert_array_equal(ranking, r.ranking().numpy())
    # a missing ground truth: one line, before any work
    (tmp_path / "gt" / "2.png").unlink()
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--gt has no 2.png" in err[0]
