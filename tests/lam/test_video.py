"""lamfast.lam / lam_windows on a clip [T,C,H,W] through a video model: against a per-step, batch-1 loop over
the clip written here, in float64; crops against the whole clip; the frame rules; the result's figures; bad input
in one line."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lamfast
from lamfast.ops import blur_path_torch

from conftest import assert_close, lam_loop
from toy_models import CentreVSR, RecurrentVSR, SlidingVSR


def clip_loop(model, clip, frame, h, w, size, fold, sigma=1.2, l=9):
    """The official algorithm on a clip: per step the whole blurred clip in one forward, batch 1, the
    objective on one output frame's window, its gradient times the path derivative, NaN zeroed, averaged."""
    path, deriv = blur_path_torch(clip, fold, sigma, l)  # [T, fold, C, H, W]

    def forward(x):  # [1,T,C,H,W] -> the attributed output frame [1,C,sH,sW]
        y = model(x)
        return y[:, frame] if frame is not None else y

    return lam_loop(forward, path.transpose(0, 1), deriv.transpose(0, 1), (h, w, size))


def _clip(T=5, C=3, H=20, W=22, seed=0):
    return torch.rand(T, C, H, W, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("crop", ["auto", "off"])
@pytest.mark.parametrize("frame", [None, 0, 4])
def test_all_frame_model_equals_the_clip_loop(crop, frame):
    model = SlidingVSR().double().eval()
    clip = _clip()
    r = lamfast.lam(model, clip, 10, 12, 8, frame=frame, fold=5, crop=crop)
    want_frame = math.ceil(5 / 2) - 1 if frame is None else frame
    assert r.frame == want_frame and r.attribution.shape == (5, 3, 20, 22) and r.sr.shape == (3, 40, 44)
    assert_close(r.attribution, clip_loop(model, clip, want_frame, 10, 12, 8, 5), "same_lam")
    assert (r.crop.box is not None) == (crop == "auto")
    # the output frame uses its neighbours only: frames two or more away get nothing
    far = [t for t in range(5) if abs(t - want_frame) > 1]
    assert all(float(r.frame_share[t]) == 0.0 for t in far) and r.frame_share[want_frame] > 0


def test_centre_frame_model_and_its_frame_rule():
    model = CentreVSR().double().eval()
    clip = _clip(T=3)
    r = lamfast.lam(model, clip, 6, 6, 8, fold=4)
    assert r.frame is None and r.sr.shape == (3, 40, 44)
    assert_close(r.attribution, clip_loop(model, clip, None, 6, 6, 8, 4), "same_lam")
    with pytest.raises(lamfast.LAMError, match="frame=1 was given, but the model returns one output frame") as info:
        lamfast.lam(model, clip, 6, 6, 8, frame=1, fold=2)
    assert info.value.param == "frame"


def test_joint_saliency_shares_and_diffusion_index():
    model = SlidingVSR().eval()
    clip = _clip(seed=3).float()
    r = lamfast.lam(model, clip, 10, 12, 8, fold=4)
    grad = r.attribution.sum(dim=1).abs()
    assert_close(r.saliency, grad / grad.max(), "same_lam")  # one peak for the whole clip
    assert_close(r.frame_share.sum(), torch.tensor(1.0), "same_lam")
    assert r.di == pytest.approx(float(lamfast.diffusion_index(r.saliency.reshape(-1, r.saliency.shape[-1]))))
    own = [float(lamfast.diffusion_index(g / g.max())) for g in grad if g.max() > 0]
    assert_close(r.di_per_frame[r.frame_share > 0], torch.tensor(own, dtype=torch.float64), "same_lam",
                 dtype=torch.float32)
    assert r.gini == pytest.approx(1 - r.di / 100) and isinstance(r, lamfast.LAMResult)  # the one result base


def test_the_kde_is_each_frames_own_scaled_by_its_share():
    model = SlidingVSR().eval()
    r = lamfast.lam(model, _clip(seed=3).float(), 10, 12, 8, fold=4)
    kde = r.kde()
    assert kde.shape == r.saliency.shape and kde.dtype == torch.float64
    top = int(r.frame_share.argmax())
    assert float(kde[top].max()) == pytest.approx(1.0)
    for t in range(r.saliency.shape[0]):
        if float(r.saliency[t].max()) > 0:
            share = float(r.frame_share[t].double() / r.frame_share.double().max())
            assert torch.allclose(kde[t], lamfast.kde_map(r.saliency[t].double()) * share)
        else:
            assert not kde[t].any()
    summary = r.summary()
    assert summary["frames"] == 5 and len(summary["frame_share"]) == 5 and summary["lr_size"] == [20, 22]


def test_several_windows_equal_one_at_a_time():
    model = SlidingVSR().eval()
    clip = _clip(seed=4).float()
    many = lamfast.lam_windows(model, clip, [(0, 0, 8), (20, 30, 8)], fold=4)
    one = lamfast.lam(model, clip, 20, 30, 8, fold=4)
    assert_close(many[1].attribution, one.attribution, "same_lam")


def test_a_recurrent_model_runs_the_whole_clip_and_says_why():
    model = RecurrentVSR().double().eval()
    clip = _clip(T=4, seed=5)
    r = lamfast.lam(model, clip, 8, 8, 8, frame=3, fold=3)
    assert r.crop.box is None and "border" in r.crop.reason
    assert_close(r.attribution, clip_loop(model, clip, 3, 8, 8, 8, 3), "same_lam")
    assert all(float(s) > 0 for s in r.frame_share)  # the state carries every earlier frame


@pytest.mark.parametrize("call, match, param", [
    (lambda m: lamfast.lam(m, _clip(), 10, 12, 8, frame=5, fold=2), r"frame must be an output frame index in \[0, 5\)", "frame"),
    (lambda m: lamfast.lam(m, _clip(C=1).float(), 10, 12, 8, fold=2), r"the model failed on the clip \[1,5,1,20,22\]", "model"),
    (lambda m: lamfast.lam(m, _clip().float(), 100, 12, 8, fold=2), "lies outside the 40x44 SR image", "window"),
    (lambda m: lamfast.lam(m, torch.rand(3, 20, 22), 1, 1, 8, fold=2, frame=1), r"frame=1 picks an output frame of a clip", "frame"),
    (lambda m: lamfast.lam(m, torch.rand(3, 20, 22), 1, 1, 8, fold=2), r"a video model takes a clip \[T,C,H,W\]|the model failed", "model"),
])
def test_bad_input_is_one_line(call, match, param):
    with pytest.raises(lamfast.LAMError, match=match) as info:
        call(SlidingVSR().eval())
    assert "\n" not in str(info.value)
    assert info.value.param == param


def test_a_video_model_is_not_kept_alive_by_the_engine():
    """Nothing in the engine holds the user's model after a call: no wrapper cached under it, no cycle through
    a weak key. Once the caller drops the model, it is gone."""
    import gc
    import weakref

    model = SlidingVSR().double().eval()
    clip = _clip(T=3)
    lamfast.lam_windows(model, clip, [(2, 2), (6, 6)], window_size=8, frame=1, fold=2)
    lamfast.lam(model, clip, 2, 2, 8, frame=1, fold=2)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None
