"""How converged LAM's DI is on the bundled TinySR: for the 8 strongest-edge windows of each bundled photo,
DI, the fold/2 DI and the completeness ratio at several folds (numbers, not timings; the closing figures of
P17). Writes benchmarks/results/convergence_tinysr.json.

    python benchmarks/convergence_tinysr.py
"""
from __future__ import annotations

import json
from pathlib import Path

import lamfast
from lamfast.models import data_path
from lamfast.request import prepare_input

FOLDS = (50, 100, 200, 400, 600, 800)


def main() -> dict:
    model = lamfast.load_model()
    out = {"model": "bundled TinySR x4 (float32)", "windows": "top:8:16", "folds": {}}
    for name in ("astronaut.png", "coffee.png"):
        x = prepare_input(model, data_path(name)).tensor()
        windows = [r.window for r in lamfast.lam_windows(model, x, "top:8:16", fold=2)]
        for fold in FOLDS:
            rs = lamfast.lam_windows(model, x, windows, fold=fold)
            out["folds"].setdefault(str(fold), {})[name] = [
                {"window": list(r.window), "di": r.di, "di_fold_half": r.di_fold_half,
                 "gap": abs(r.di - r.di_fold_half), "completeness": r.completeness} for r in rs]
    for fold, per_image in out["folds"].items():
        gaps = [w["gap"] for rows in per_image.values() for w in rows]
        print(f"fold {fold}: max |DI - DI_half| {max(gaps):.5f}, windows below 1e-3: "
              f"{sum(g < 1e-3 for g in gaps)} of {len(gaps)}")
    path = Path(__file__).parent / "results" / "convergence_tinysr.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
