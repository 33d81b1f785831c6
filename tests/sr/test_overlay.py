"""Display helpers of the classifier CLI: captum's attribution scale."""
from __future__ import annotations

import pytest
import torch

from conftest import assert_close


@pytest.mark.parametrize("outlier_perc", [1, 2, 10])
def test_display_scale_matches_captum(outlier_perc):
    # lamfast attr's PNGs use captum visualize_image_attr's scale (sign="absolute_value").
    visualization = pytest.importorskip("captum.attr._utils.visualization")
    from lamfast.overlay import normalise_attribution

    a = torch.randn(3, 17, 23, generator=torch.Generator().manual_seed(outlier_perc)) ** 3
    expected = visualization._normalize_attr(a.permute(1, 2, 0).double().numpy().sum(2), "absolute_value",
                                             outlier_perc)
    got = normalise_attribution(a, outlier_perc)
    assert got.shape == (17, 23)
    assert_close(got, expected, "official")
    assert normalise_attribution(torch.zeros(3, 4, 4)).max() == 0
