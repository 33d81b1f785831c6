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

    from lamfast.cli.common import CLIError, check_output_dir, note, parse_arch_kwargs_flag, resolve_device
    from lamfast.dataset.runner import discover_images
    from lamfast.erf import erf, erf_figure
    from lamfast.errors import first_line
    from lamfast.imageio import read_rgb
    from lamfast.request import ModelSpec, prepare_input

    out_dir = Path(args.output_dir)
    check_output_dir(out_dir, "-o")
    if args.size is not None and args.size < 3:
        raise CLIError(f"--size must be >= 3, got {args.size}")
    arch_kwargs = parse_arch_kwargs_flag(args.arch_kwargs)
    device = resolve_device(args.device)
    paths = discover_images(args.images)
    if not paths:
        raise CLIError("no images found in the inputs")
    for p in paths:
        read_rgb(p)  # every image is readable before any model work
    results = {}
    for spec in args.model or ["bundled"]:
        loaded = ModelSpec.parse(spec).load(device=device, unsafe_pickle=args.unsafe_pickle, arch_kwargs=arch_kwargs)
        for line in loaded.notes:
            note(line)
        lrs, scale = [], None
        for p in paths:  # the scale found on the first image serves the rest (an SR model has one)
            prepared = prepare_input(loaded.model, p, args.lr_input, device=device, scale=scale)
            lrs.append(prepared.tensor())
            scale = prepared.scale
        side = args.size or min(min(t.shape[-2:]) for t in lrs)
        if any(min(t.shape[-2:]) < side for t in lrs):
            raise CLIError(f"--size {side} is larger than the smallest LR image")
        crops = torch.stack([_centre(t, side) for t in lrs])
        try:
            results[spec] = erf(loaded.model, crops, batch_size=args.batch_size)
        except (ValueError, RuntimeError) as exc:
            raise CLIError(f"{spec}: {first_line(exc)}") from None
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
    p = sub.add_parser("erf", help="effective receptive fields of SR models (RepLKNet's definition)",
                       description=__doc__.splitlines()[0])
    p.add_argument("images", nargs="+", help="image folders, globs or files (HR, made LR with the model's scale)")
    p.add_argument("--model", action="append", help="'bundled', a checkpoint or ARCH:CHECKPOINT (repeatable)")
    p.add_argument("--arch-kwargs", "--arch_kwargs", default=None, metavar="JSON", help="keyword arguments for the architectures")
    p.add_argument("--lr-input", "--lr_input", action="store_true", help="the images are LR inputs already")
    p.add_argument("--size", type=int, default=None, help="centre crop side of the LR inputs (default: the smallest)")
    p.add_argument("--batch-size", "--batch_size", type=int, default=8, help="images per pass (default 8)")
    p.add_argument("--device", default=None)
    p.add_argument("--unsafe-pickle", "--unsafe_pickle", action="store_true")
    p.add_argument("-o", "--output-dir", "--output_dir", default="erf_results", help="where to write (default ./erf_results)")
    p.set_defaults(func=run)
