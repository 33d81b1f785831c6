"""The report's CEM part: causal effect maps stored by ``run --method cem``, compared across models.

One set per CEM parameter set (never pooled). Models are compared over the ROIs every model of the
set has, on inputs of one LR size (the same image and window), so each number averages the same
ROIs; ROIs some model lacks are counted and left out. Per model: ROIs, the mean numbers of blocks
that help, hurt and do nothing, the mean smallest and largest effect, and the mean effect range
(largest minus smallest, the paper's "effect range") with a bootstrap 95% CI; for every two models
the paired difference of their ranges. Then every ROI.
"""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from itertools import combinations
from typing import Any

from lamfast.dataset.stats import bootstrap_ci, compare_pairs
from lamfast.lam.windows import parse_windows


def cem_words(params: dict[str, Any]) -> str:
    """A stored CEM parameter set as one phrase.

    Example:
        >>> from lamfast.cem.params import CEMParams
        >>> from lamfast.dataset import RunConfig
        >>> from lamfast.dataset.cem_report import cem_words
        >>> cem_words(RunConfig(windows="list:152,96:32", method="cem", cem=CEMParams()).params())
        'CEM: blocks of 8 px, 3 coarse + 50 fine interventions, tol 0.01 dB, seed 0; ROIs: 1 given window of 32 px'
    """
    c = params.get("cem", {})
    text = (f"CEM: blocks of {c.get('block_size')} px, {c.get('coarse')} coarse + {c.get('fine')} fine interventions, "
            f"tol {c.get('tol'):g} dB, seed {c.get('seed')}")
    try:
        windows = parse_windows(params["windows"]).words
    except (KeyError, ValueError):
        windows = str(params.get("windows", "?"))
    return f"{text}; ROIs: {windows}"


def _roi(r: dict) -> tuple:
    return r["image"], r["h"], r["w"], r["size"], r.get("lr_size")


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _model_row(model: str, rows: list[dict]) -> dict[str, Any]:
    spans = [r["cem"]["effect_span"] for r in rows]
    lo, hi = bootstrap_ci(spans) if spans else (None, None)
    return {"model": model, "n": len(rows),
            "positive": _mean([r["cem"]["counts"]["positive"] for r in rows]),
            "negative": _mean([r["cem"]["counts"]["negative"] for r in rows]),
            "zero": _mean([r["cem"]["counts"]["zero"] for r in rows]),
            "min": _mean([r["cem"]["effect_range"][0] for r in rows]),
            "max": _mean([r["cem"]["effect_range"][1] for r in rows]),
            "span": _mean(spans), "ci_low": lo, "ci_high": hi,
            "psnr": _mean([r["cem"]["psnr"] for r in rows if r["cem"]["psnr"] is not None]),
            "forwards": sum(r["cem"]["forwards"] for r in rows),
            "official_forwards": sum(r["cem"]["official_forwards"] for r in rows)}


def cem_sets(rows: list[dict]) -> list[dict[str, Any]]:
    """The report's CEM sets from the store's ok CEM rows (``ResultStore.rows(method="cem")``)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["status"] == "ok" and r.get("cem"):
            groups[r["params_hash"]].append(r)
    out = []
    for gid in sorted(groups):
        rows_g = groups[gid]
        by_model: dict[str, list[dict]] = defaultdict(list)
        for r in rows_g:
            by_model[r["model"]].append(r)
        models = sorted(by_model)
        shared = set.intersection(*({_roi(r) for r in by_model[m]} for m in models))
        left_out = sum(1 for r in rows_g if _roi(r) not in shared)
        table = [_model_row(m, [r for r in by_model[m] if _roi(r) in shared]) for m in models]
        pairs = []
        for a, b in combinations(models, 2):
            span_b = {_roi(r): r["cem"]["effect_span"] for r in by_model[b] if _roi(r) in shared}
            compared = compare_pairs([(r["cem"]["effect_span"], span_b[_roi(r)]) for r in by_model[a]
                                      if _roi(r) in shared])
            if compared is not None:
                pairs.append({"a": a, "b": b, **compared})
        out.append({"gid": gid, "words": cem_words(json.loads(rows_g[0]["params"])), "models": table,
                    "pairs": pairs, "shared": len(shared), "left_out": left_out,
                    "rois": [{**r, "name": r["image"].replace("\\", "/").rpartition("/")[2]} for r in rows_g]})
    return out


__all__ = ["cem_sets", "cem_words"]
