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


def compare_pairs(pairs: list[tuple[float, float]]) -> dict[str, float] | None:
    """Paired values (A, B) compared: n, mean of A - B with its bootstrap 95% CI, how often each is the
    higher, and the Wilcoxon signed-rank p-value; None for no pairs.

    Example:
        >>> from lamfast.dataset.stats import compare_pairs
        >>> r = compare_pairs([(2.0, 1.0), (3.0, 1.5), (1.0, 1.2)])
        >>> r["n"], round(r["mean_diff"], 3), round(r["a_higher"], 3)
        (3, 0.767, 0.667)
    """
    return _compare(pairs)


def _window(r: dict) -> tuple:
    return r["image"], r["h"], r["w"], r["size"]


def _matched(rows_a: list[dict], rows_b: list[dict]) -> tuple[list[tuple[dict, dict]], dict[tuple, int]]:
    """The windows both models have, as (row A, row B), where both saw an LR input of one size; and how
    many shared windows were left out per (LR size A, LR size B) because the sizes differ (an x2 and an
    x4 model on one HR image): DI of different LR sizes is not comparable, so those are never paired."""
    b = {_window(r): r for r in rows_b}
    same, other = [], {}
    for r in rows_a:
        s = b.get(_window(r))
        if s is None:
            continue
        if r.get("lr_size") == s.get("lr_size"):
            same.append((r, s))
        else:
            key = (r.get("lr_size"), s.get("lr_size"))
            other[key] = other.get(key, 0) + 1
    return same, other


def paired(rows_a: list[dict], rows_b: list[dict]) -> dict[str, float] | None:
    """Model A against B over the windows both have on LR inputs of one size: mean of DI_A - DI_B, its
    95% CI, who is higher how often, and the Wilcoxon signed-rank p-value (None: no such window)."""
    return _compare([(a["di"], b["di"]) for a, b in _matched(rows_a, rows_b)[0]])


def paired_images(rows_a: list[dict], rows_b: list[dict]) -> dict[str, float] | None:
    """As :func:`paired`, over images: each image's DI is the mean over the windows both models have there,
    so an image with many windows counts once."""
    per_image: dict[str, list[tuple[float, float]]] = {}
    for a, b in _matched(rows_a, rows_b)[0]:
        per_image.setdefault(a["image"], []).append((a["di"], b["di"]))
    return _compare([(statistics.fmean(x for x, _ in p), statistics.fmean(y for _, y in p))
                     for p in per_image.values()])


def not_paired(rows_a: list[dict], rows_b: list[dict]) -> str | None:
    """Why windows both models have were left out of :func:`paired` (their LR inputs differ in size), in
    words; None when none were.

    Example:
        >>> from lamfast.dataset.stats import not_paired
        >>> a = [{"image": "x.png", "h": 0, "w": 0, "size": 16, "lr_size": "64x64", "di": 1.0}]
        >>> b = [{**a[0], "lr_size": "32x32", "di": 2.0}]
        >>> not_paired(a, b)
        '1 window not compared: LR 64x64 against 32x32 (the models have other scales); DI of different LR sizes is not comparable'
    """
    other = _matched(rows_a, rows_b)[1]
    if not other:
        return None
    n = sum(other.values())
    sizes = "; ".join(f"LR {a} against {b}" for a, b in sorted(other, key=str))
    return (f"{n} window{'s' if n != 1 else ''} not compared: {sizes} (the models have other scales); "
            "DI of different LR sizes is not comparable")


def paired_sizes(rows_a: list[dict], rows_b: list[dict]) -> list[str]:
    """The LR sizes of the windows :func:`paired` compares, smallest first."""
    return sorted({a.get("lr_size") or "unknown" for a, _ in _matched(rows_a, rows_b)[0]},
                  key=lambda s: (len(s), s))


def discretisation_error(rows: list[dict]) -> float | None:
    """Mean |DI - DI at fold/2| over ``rows`` that have it: how far the fold Riemann sum is from converged
    (None when no row has it: odd fold, a straight-line path, or a store from before it was recorded)."""
    gaps = [abs(r["di"] - r["di_fold_half"]) for r in rows if r.get("di_fold_half") is not None]
    return statistics.fmean(gaps) if gaps else None


def paired_error(rows_a: list[dict], rows_b: list[dict]) -> float | None:
    """The larger of the two models' :func:`discretisation_error` over the windows :func:`paired` compares."""
    same = _matched(rows_a, rows_b)[0]
    errors = [e for e in (discretisation_error([a for a, _ in same]), discretisation_error([b for _, b in same]))
              if e is not None]
    return max(errors) if errors else None
