"""The statistics of a report: DI per model and paired differences, with bootstrap CIs."""
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


def paired(rows_a: list[dict], rows_b: list[dict]) -> dict[str, float] | None:
    """Model A against B over the windows both have: mean of DI_A - DI_B, its 95% CI, and who is higher how often."""
    b = {(r["image"], r["h"], r["w"], r["size"]): r["di"] for r in rows_b}
    pairs = [(r["di"], b[k]) for r in rows_a if (k := (r["image"], r["h"], r["w"], r["size"])) in b]
    if not pairs:
        return None
    diff = [x - y for x, y in pairs]
    lo, hi = bootstrap_ci(diff)
    return {"n": len(pairs), "mean_diff": statistics.fmean(diff), "ci_low": lo, "ci_high": hi,
            "a_higher": sum(d > 0 for d in diff) / len(diff), "b_higher": sum(d < 0 for d in diff) / len(diff)}
