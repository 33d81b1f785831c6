"""The statistics of a report: DI per model and paired differences, with bootstrap CIs and Wilcoxon
signed-rank tests, over windows and over images (windows of one image are not independent)."""
from __future__ import annotations

import statistics

import numpy as np

BOOTSTRAP = 2000  # resamples of every CI


def bootstrap_ci(values, seed: int = 0, n: int = BOOTSTRAP) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of ``values`` (seeded, so reports are reproducible)."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return float("nan"), float("nan")
    if a.size == 1:
        return float(a[0]), float(a[0])
    if np.all(a == a[0]):
        return float(a[0]), float(a[0])  # every resample is the same: scipy would warn of a degenerate CI
    from scipy.stats import bootstrap

    res = bootstrap((a,), np.mean, n_resamples=n, confidence_level=0.95, method="percentile",
                    random_state=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def model_summary(dis: list[float]) -> dict[str, float]:
    """mean, median, std (sample), 95% CI of the mean, and n."""
    lo, hi = bootstrap_ci(dis)
    return {"n": len(dis), "mean": statistics.fmean(dis), "median": statistics.median(dis),
            "std": statistics.stdev(dis) if len(dis) > 1 else 0.0, "ci_low": lo, "ci_high": hi}


def wilcoxon_p(diff: list[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (scipy; zeros dropped, as Wilcoxon
    does); None where no difference is non-zero."""
    d = np.asarray(diff, dtype=np.float64)
    if not np.any(d != 0):
        return None
    from scipy.stats import wilcoxon

    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def _compare(pairs: list[tuple[float, float]]) -> dict[str, float] | None:
    if not pairs:
        return None
    diff = [x - y for x, y in pairs]
    lo, hi = bootstrap_ci(diff)
    return {"n": len(pairs), "mean_diff": statistics.fmean(diff), "ci_low": lo, "ci_high": hi,
            "a_higher": sum(d > 0 for d in diff) / len(diff), "b_higher": sum(d < 0 for d in diff) / len(diff),
            "wilcoxon_p": wilcoxon_p(diff)}


def _window(r: dict) -> tuple:
    return r["image"], r["h"], r["w"], r["size"]


def paired(rows_a: list[dict], rows_b: list[dict]) -> dict[str, float] | None:
    """Model A against B over the windows both have: mean of DI_A - DI_B, its 95% CI, who is higher how
    often, and the Wilcoxon signed-rank p-value."""
    b = {_window(r): r["di"] for r in rows_b}
    return _compare([(r["di"], b[k]) for r in rows_a if (k := _window(r)) in b])


def paired_images(rows_a: list[dict], rows_b: list[dict]) -> dict[str, float] | None:
    """As :func:`paired`, over images: each image's DI is the mean over the windows both models have there,
    so an image with many windows counts once."""
    b = {_window(r): r["di"] for r in rows_b}
    per_image: dict[str, list[tuple[float, float]]] = {}
    for r in rows_a:
        if (k := _window(r)) in b:
            per_image.setdefault(r["image"], []).append((r["di"], b[k]))
    return _compare([(statistics.fmean(x for x, _ in p), statistics.fmean(y for _, y in p))
                     for p in per_image.values()])
