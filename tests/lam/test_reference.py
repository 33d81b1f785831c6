"""lamfast.lam against the official LAM_Demo reference case."""
from __future__ import annotations

import pytest
import torch

import lamfast

from conftest import assert_close, reference_model, skip_unless_reference_platform


@pytest.fixture(scope="module")
def ref_result(reference):
    model = reference_model(reference)
    return lamfast.lam(model, torch.from_numpy(reference["lr"]), int(reference["h"]), int(reference["w"]),
                       int(reference["window_size"]), fold=int(reference["fold"]), sigma=float(reference["sigma"]),
                       l=int(reference["l"]))


def test_sr_is_the_models_own_forward(ref_result, reference):
    with torch.no_grad():
        plain = reference_model(reference)(torch.from_numpy(reference["lr"])[None])[0]
    assert torch.equal(ref_result.sr, plain)
    assert_close(ref_result.sr, reference["sr"], "official")
    assert ref_result.scale == 4


def test_sr_is_bit_exact(ref_result, reference):
    skip_unless_reference_platform(reference)
    assert torch.equal(ref_result.sr, torch.from_numpy(reference["sr"]))


def test_attribution(ref_result, reference):
    assert ref_result.attribution.shape == (3, 64, 64) and ref_result.attribution.dtype == torch.float32
    assert_close(ref_result.attribution, reference["attribution"], "official")


def test_saliency(ref_result, reference):
    assert ref_result.saliency.shape == (64, 64)
    assert_close(ref_result.saliency, reference["saliency"], "official")
    assert ref_result.saliency.max().item() == 1.0


def test_gini_and_di(ref_result, reference):
    assert_close(ref_result.gini, float(reference["gini"]), "official_di", dtype=torch.float32)
    assert_close(ref_result.di, float(reference["di"]), "official_di", dtype=torch.float32)  # the official gini runs in float32


def test_kde(ref_result, reference):
    assert_close(ref_result.kde(), reference["kde"], "official_path", dtype=torch.float32)  # of a float32 map


def test_no_nan_steps_and_timings(ref_result):
    assert ref_result.nan_steps == 0
    assert set(ref_result.timings) >= {"forward", "crop_plan", "path_integral", "total"}


@pytest.mark.parametrize("batch_size", [1, 7, 50])
def test_chunking_does_not_change_the_result(reference, ref_result, batch_size):
    model = reference_model(reference)
    r = lamfast.lam(model, torch.from_numpy(reference["lr"]), 150, 110, 16, batch_size=batch_size)
    assert r.batch_size == batch_size
    assert_close(r.attribution, ref_result.attribution, "same_lam")
    assert_close(r.di, ref_result.di, "same_lam", dtype=torch.float32)


def test_reference_ran_on_a_crop_and_equals_the_whole_image(reference, ref_result):
    assert ref_result.crop.box is not None  # TinySR is local: the default path crops
    whole = lamfast.lam(reference_model(reference), torch.from_numpy(reference["lr"]), 150, 110, 16, crop="off")
    assert whole.crop.box is None
    assert_close(whole.attribution, reference["attribution"], "official")
    assert_close(ref_result.saliency, whole.saliency, "crop")
    assert_close(ref_result.di, whole.di, "crop", dtype=torch.float32)


def test_robust_equals_compat_without_nan(reference, ref_result):
    r = lamfast.lam(reference_model(reference), torch.from_numpy(reference["lr"]), 150, 110, 16, mode="robust")
    assert r.nan_steps == 0
    assert torch.equal(r.attribution, ref_result.attribution)
