"""``lamfast explore IMG --model M [--model M2 ...]``: DI maps of one image and an offline page to explore them.

Every window of a grid over the SR output runs through :func:`lamfast.di_map` into
``DIR/explore.sqlite`` (a rerun resumes from it); ``DIR/index.html`` then shows each model's DI
map over its SR image, the window's LAM on click, and a difference panel for two models.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    import lamfast
    from lamfast.cli.common import (CLIError, check_output_dir, color_flag, lam_params, note,
                                    parse_arch_kwargs_flag, resolve_device)
    from lamfast.dataset.explorer import windows_from_dimap, write_explorer
    from lamfast.imageio import read_bands, read_rgb, to_pil
    from lamfast.models import data_path
    from lamfast.request import ModelSpec, prepare_input

    params = lam_params(args)
    arch_kwargs = parse_arch_kwargs_flag(args.arch_kwargs)
    out_dir = Path(args.output_dir)
    check_output_dir(out_dir, "--output-dir")
    device = resolve_device(args.device)
    img_path = Path(args.image) if args.image else data_path("astronaut.png")
    (read_bands if img_path.suffix.lower() == ".npy" else read_rgb)(img_path)  # a bad image fails first
    specs = [ModelSpec.parse(m).resolved() for m in (args.model or ["bundled"])]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise CLIError(f"--model: two models are both called {next(n for n in names if names.count(n) > 1)!r}")
    maps, windows, backgrounds, lr, scale = {}, [], {}, None, None
    for spec, name in zip(specs, names):
        loaded = spec.load(device=device, unsafe_pickle=args.unsafe_pickle, rgb_range=args.rgb_range,
                           arch_kwargs=arch_kwargs)
        for line in loaded.notes:
            note(f"{name}: {line}")
        sr_input = prepare_input(loaded.model, img_path, args.lr_input, device=device, color=color_flag(args))
        for line in sr_input.notes:
            note(f"{name}: {sr_input.name}: {line}")
        view = sr_input.views()[1]
        if lr is not None and (sr_input.scale, view.size) != (scale, lr.size):
            raise CLIError(f"--model {name}: x{sr_input.scale} on a {view.width}x{view.height} LR image, but "
                           f"{names[0]} is x{scale} on {lr.width}x{lr.height}: the models of one explorer share "
                           f"one grid")
        lr, scale = view, sr_input.scale
        dimap = lamfast.di_map(loaded.model, sr_input.tensor(), args.window_size, args.stride, params=params,
                               store=out_dir / "explore.sqlite", name=str(img_path), model_name=name,
                               lr_input=args.lr_input, crop=args.crop, device=device,
                               progress=not args.no_progress)
        maps[name] = dimap
        windows += windows_from_dimap(name, dimap)
        backgrounds[name] = to_pil(dimap.sr)
        if dimap.failures:
            note(f"{name}: {len(dimap.failures)} window(s) failed; the page lists them")
    first = next(iter(maps.values()))
    index = write_explorer(out_dir, str(img_path), lr, scale, windows, backgrounds=backgrounds,
                           params={**params.defining(), "window_size": args.window_size,
                                   "stride": first.stride, "lr_input": bool(args.lr_input)})
    for name, dimap in maps.items():
        t = dimap.timings
        done = dimap.di[~dimap.di.isnan()]
        mean = f"{float(done.mean()):.4f}" if done.numel() else "n/a"
        print(f"{name}: {dimap.shape[0]}x{dimap.shape[1]} windows, mean DI {mean}, {int(t['computed'])} computed "
              f"in {t['total']:.1f}s, {int(t['resumed'])} from the store", file=sys.stdout)
    print(f"-> {index}", file=sys.stdout)
    return 0


def add_parser(sub) -> None:
    from lamfast.cli.common import add_input_arguments, add_lam_arguments

    p = sub.add_parser("explore", help="DI maps of one image (every window of a grid) and an offline page to "
                                       "explore them", description=__doc__.splitlines()[0])
    p.add_argument("image", nargs="?", default=None, help="HR image (default: the bundled astronaut)")
    p.add_argument("--model", action="append", help="'bundled', a checkpoint, or ARCH:CHECKPOINT (repeatable; "
                                                    "default bundled); two models also get a difference panel")
    p.add_argument("--arch-kwargs", "--arch_kwargs", default=None, metavar="JSON")
    p.add_argument("--rgb-range", "--rgb_range", type=float, default=None)
    p.add_argument("--unsafe-pickle", "--unsafe_pickle", action="store_true")
    p.add_argument("--device", default=None)
    p.add_argument("--lr-input", "--lr_input", action="store_true", help="the image is the LR input already")
    add_input_arguments(p)
    p.add_argument("--window-size", "--window_size", type=int, default=16, help="window side, SR pixels (default 16)")
    p.add_argument("--stride", type=int, default=None, help="grid step, SR pixels (default: the window size); the "
                                                            "last row and column are clamped inside")
    add_lam_arguments(p)
    p.add_argument("-o", "--output-dir", "--output_dir", default="explore_results",
                   help="where the page, explore.json and the store go (default ./explore_results)")
    p.add_argument("--no-progress", "--no_progress", action="store_true")
    p.set_defaults(func=run)
