"""``lamfast erf IMGS --model M [--model M2 ...] -o DIR``: effective receptive fields of SR models.

Writes ``erf.png`` (one panel per model, one colour scale) and ``erf.json``
(per model: the images averaged, the map size, and RepLKNet's
high-contribution area ratios at t = 0.2, 0.3, 0.5, 0.99).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    import torch

    from lamfast.cli.common import CLIError, load_noted, resolve_device
    from lamfast.outputs import check_output_dir
    from lamfast.dataset.runner import discover_images
    from lamfast.erf import erf, erf_figure
    from lamfast.imageio import read_rgb
    from lamfast.models import ModelSpec, model_labels
    from lamfast.request import prepare_input

    out_dir = Path(args.output)
    check_output_dir(out_dir)
    if args.size is not None and args.size < 3:
        raise CLIError(f"--size must be >= 3, got {args.size}")
    device = resolve_device(args.device)
    paths = discover_images(args.images)
    if not paths:
        raise CLIError("no images found in the inputs")
    for p in paths:
        read_rgb(p)  # every image is readable before any model work
    specs = [ModelSpec.parse(m) for m in (args.model or ["bundled"])]
    results = {}
    for spec, label in zip(specs, model_labels(specs)):
        model = load_noted(spec.text, label=f"{label}: ", model_kwargs=args.model_kwargs,
                           unsafe_pickle=args.unsafe_pickle, rgb_range=args.rgb_range, device=device)
        lrs = [prepare_input(model, p, args.lr_input, device=device).tensor() for p in paths]
        side = args.size or min(min(t.shape[-2:]) for t in lrs)
        if any(min(t.shape[-2:]) < side for t in lrs):
            raise CLIError(f"--size {side} is larger than the smallest LR image")
        results[label] = erf(model, torch.stack([_centre(t, side) for t in lrs]), batch_size=args.batch_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    erf_figure(results).save(out_dir / "erf.png")
    summary = {"images": [Path(p).name for p in paths], "lr_input": bool(args.lr_input),
               "models": {name: r.summary() for name, r in results.items()}}
    (out_dir / "erf.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, r in results.items():
        ratios = ", ".join(f"t={t}: {v[1]:.4f}" if v[1] is not None else f"t={t}: none" for t, v in r.ratios.items())
        print(f"{name}: ERF over {r.images} images of {r.map.shape[0]}x{r.map.shape[1]}; area ratio {ratios}",
              file=sys.stdout)
    print(f"-> {out_dir}/erf.png, erf.json")
    return 0


def _centre(t, side: int):
    h, w = t.shape[-2:]
    top, left = (h - side) // 2, (w - side) // 2
    return t[:, top:top + side, left:left + side]


def add_parser(sub) -> None:
    from lamfast.cli.common import add_batch_size, add_model_arguments, add_output_argument

    p = sub.add_parser("erf", help="effective receptive fields of SR models (RepLKNet's definition)",
                       description=__doc__.splitlines()[0])
    p.add_argument("images", nargs="+", help="image folders, globs or files (HR, made LR with the model's scale)")
    add_model_arguments(p, many=True, what="'bundled', a checkpoint or ARCH:CHECKPOINT")
    p.add_argument("--lr-input", "--lr_input", action="store_true", help="the images are LR inputs already")
    p.add_argument("--size", type=int, default=None, help="centre crop side of the LR inputs (default: the smallest)")
    add_batch_size(p, "images", default=8)
    add_output_argument(p, default="erf_results", aliases=("--output-dir", "--output_dir"),
                        what="the folder erf.png and erf.json go to")
    p.set_defaults(func=run)
