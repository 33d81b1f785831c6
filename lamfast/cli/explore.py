"""``lamfast explore [IMG] --model M [--model M2 ...]``: DI maps of one image and an offline page to explore them.

Every window of a grid over the SR output runs, as ``lamfast run --windows
grid:SIZE[:STRIDE]`` runs it, into ``DIR/explore.sqlite`` (a rerun resumes
from it, model by model); ``DIR/index.html`` then shows each model's DI map
over its SR image, the window's LAM on click, and a difference panel for two
models.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from lamfast.bundled import resolve
    from lamfast.cli.common import CLIError, load_noted, resolve_device
    from lamfast.outputs import check_output_dir
    from lamfast.cli.dataset import run_config
    from lamfast.dataset import ResultStore, run as run_dataset
    from lamfast.dataset.explorer import explorer_from_rows
    from lamfast.imageio import read_bands, read_rgb
    from lamfast.lam.windows import Grid
    from lamfast.errors import LamfastError
    from lamfast.models import ModelSpec, model_labels
    from lamfast.request import prepare_input

    out_dir = Path(args.output)
    check_output_dir(out_dir)
    device = resolve_device(args.device)
    image = Path(resolve(args.image or "bundled", "image")).resolve()
    (read_bands if image.suffix.lower() == ".npy" else read_rgb)(image)  # a bad image fails first
    config = run_config({**vars(args), "windows": Grid(args.window_size, args.stride)}, device)
    specs = [ModelSpec.parse(m) for m in (args.model or ["bundled"])]
    labels = model_labels(specs)
    scales = {}
    for spec, label in zip(specs, labels):  # every model loads, and shares the grid, before any window runs
        scales[label] = load_noted(spec.text, label=f"{label}: ", model_kwargs=config.model_kwargs,
                                   unsafe_pickle=config.unsafe_pickle, rgb_range=config.rgb_range, device=device).scale
    if None not in scales.values() and len(set(scales.values())) > 1:
        raise CLIError("--model: the models of one explorer share one grid, but their scales differ ("
                       + ", ".join(f"{m} x{s}" for m, s in scales.items()) + ")")
    scale = next(iter(scales.values()))
    if scale is not None:  # the grid fits the SR image, before any window runs
        lr = prepare_input(None, image, config.lr_input, scale=scale, color=config.color).lr
        if config.windows.size > min(lr.height, lr.width) * scale:
            raise LamfastError(f"window_size {config.windows.size} is larger than the {lr.height * scale}x"
                               f"{lr.width * scale} SR image", param="window_size")
    store = out_dir / "explore.sqlite"
    named = [f"{label}={spec.text}" for spec, label in zip(specs, labels)]
    summary = run_dataset([str(image)], named, store, config, progress=not args.no_progress)
    with ResultStore(store) as db:
        rows = [r for r in db.rows(with_maps=True)
                if r["image"] == str(image) and r["params_hash"] == config.params_hash() and r["model"] in labels]
    index = explorer_from_rows(out_dir, str(image), rows, config.params())
    if index is None:
        raise CLIError(f"no window of {image.name} ran: " + "; ".join(summary.failures[:3]))
    for label in labels:
        mine = [r for r in rows if r["model"] == label and r["h"] >= 0]
        done = [r["di"] for r in mine if r["status"] == "ok"]
        failed = len(mine) - len(done)
        mean = f"{sum(done) / len(done):.4f}" if done else "n/a"
        print(f"{label}: {len(mine)} windows, mean DI {mean}" + (f", {failed} failed (the page lists them)"
                                                                 if failed else ""), file=sys.stdout)
    print(f"{summary.units_done} models computed in {summary.seconds:.1f}s, {summary.units_skipped} from the store "
          f"-> {index}", file=sys.stdout)
    return 0


def add_parser(sub) -> None:
    from lamfast.cli.common import (add_input_arguments, add_lam_arguments, add_model_arguments, add_output_argument,
                                    add_progress_argument)

    p = sub.add_parser("explore", help="DI maps of one image (every window of a grid) and an offline page to "
                                       "explore them", description=__doc__.splitlines()[0])
    p.add_argument("image", nargs="?", default=None, help="HR image (default: the bundled astronaut)")
    add_model_arguments(p, many=True, what="'bundled', a checkpoint, or ARCH:CHECKPOINT; two models also get a "
                                           "difference panel")
    p.add_argument("--lr-input", "--lr_input", action="store_true", help="the image is the LR input already")
    add_input_arguments(p)
    p.add_argument("--window-size", "--window_size", type=int, default=16, help="window side, SR pixels (default 16)")
    p.add_argument("--stride", type=int, default=None, help="grid step, SR pixels (default: the window size); the "
                                                            "last row and column are flush with the border")
    add_lam_arguments(p)
    add_output_argument(p, default="explore_results", aliases=("--output-dir", "--output_dir"),
                        what="the folder the page, explore.json and the store go to")
    add_progress_argument(p)
    p.set_defaults(func=run)
