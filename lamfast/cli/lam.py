"""``lamfast lam``: LAM for one window of one image, with the official figures.

Flags follow the popular unofficial LAM tool (``--modelpath --imgpath --w
--h --window_size --fold --sigma --l --alpha --zoomfactor --kde
--output_dir``; each also with hyphens, e.g. ``--window-size``). With no model flags it runs the bundled TinySR on the
bundled astronaut image: the README's demo.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

DEFAULT_IMAGE = "astronaut.png"
# Every figure lamfast lam can write (see lamfast.viz.lam_panels).
PANELS = ("window_position", "sr", "saliency_abs", "blend_abs", "blend_kde", "grid")


def run(args: argparse.Namespace) -> int:
    import torch

    import lamfast
    from lamfast.cli.common import (CLIError, check_output_dir, color_flag, lam_params, note,
                                    parse_arch_kwargs_flag, resolve_device, warn)
    from lamfast.imageio import read_rgb
    from lamfast.lam import LAMNaNWarning
    from lamfast.lam.official_path import require_opencv
    from lamfast.models import data_path
    from lamfast.request import ModelSpec, prepare_input
    from lamfast.viz import lam_panels

    params = lam_params(args)
    arch_kwargs = parse_arch_kwargs_flag(args.arch_kwargs)
    out_dir = Path(args.output_dir)
    check_output_dir(out_dir, "--output-dir")
    if params.mode == "official":
        require_opencv()  # its error names param "mode": printed as --mode
    if args.window_size < 2:
        raise CLIError(f"--window-size must be >= 2, got {args.window_size}")
    if not 0.0 <= args.alpha <= 1.0:
        raise CLIError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.zoomfactor is not None and args.zoomfactor < 1:
        raise CLIError(f"--zoomfactor must be >= 1, got {args.zoomfactor}")
    device = resolve_device(args.device)
    img_path = Path(args.imgpath) if args.imgpath else data_path(DEFAULT_IMAGE)
    read_rgb(img_path)  # a bad image fails before any model work
    spec = ModelSpec.of(args.modelpath, args.arch)
    loaded = spec.load(device=device, unsafe_pickle=args.unsafe_pickle, rgb_range=args.rgb_range,
                       arch_kwargs=arch_kwargs)
    for line in loaded.notes:
        note(line)
    model = loaded.model
    sr_input = prepare_input(model, img_path, args.lr_input, device=device, color=color_flag(args))
    for line in sr_input.notes:
        note(f"{sr_input.name}: {line}")
    hr, lr = sr_input.views()  # RGB, or the gray band the model gets
    # A failed run must not leave an earlier run's files looking like its output.
    for stale in [out_dir / "result.json", *(out_dir / f"{name}.png" for name in PANELS)]:
        stale.unlink(missing_ok=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LAMNaNWarning)
        (result,) = lamfast.lam_windows(model, sr_input.tensor(), [(args.h, args.w, args.window_size)],
                                        params=params, progress=not args.no_progress, crop=args.crop)
    for w in caught:
        if issubclass(w.category, LAMNaNWarning):
            warn(str(w.message))
    if result.crop.box is not None:
        t, left, b, r = result.crop.box
        note(f"ran on the LR crop rows {t}:{b}, columns {left}:{r} (radius {result.crop.radius}; {result.crop.reason})")
    else:
        note(f"ran on the whole image: {result.crop.reason}")

    panels = lam_panels(result, hr, lr, alpha=args.alpha, zoom=args.zoomfactor, kde=args.kde)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for name, img in panels.items():
            target = out_dir / f"{name}.png"
            img.save(target)
            written.append(target)
        summary = {
            "arch_kwargs": arch_kwargs,
            "lamfast_version": lamfast.__version__,
            "torch_version": str(torch.__version__),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "extension": lamfast.ext_available(),
            "model": {"arch": loaded.arch, "source": loaded.source, "notes": loaded.notes},
            "image": str(img_path),
            "lr_input": bool(args.lr_input),
            "color": sr_input.color,
            "alpha": args.alpha,
            "zoomfactor": args.zoomfactor or result.scale,
            **result.summary(),
            "files": [p.name for p in written] + ["result.json"],
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        # result.json last: its presence marks a complete output directory.
        (out_dir / "result.json").write_text(json.dumps(summary, indent=2) + "\n")
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    print(f"DI {result.di:.4f}  Gini {result.gini:.6f}  window h={args.h} w={args.w} size={args.window_size}  "
          f"scale x{result.scale}  {result.timings['total']:.2f}s  -> {out_dir}/", file=sys.stdout)
    return 0


def add_parser(sub) -> None:
    from lamfast.cli.common import add_input_arguments, add_lam_arguments

    p = sub.add_parser("lam", help="Local Attribution Map of one SR-output window (writes PNGs and result.json)",
                       description=__doc__.splitlines()[0])
    g = p.add_argument_group("model")
    g.add_argument("--modelpath", help="checkpoint (.pt/.pth/.safetensors); default: the bundled x4 TinySR")
    g.add_argument("--arch", help="a registered architecture (see 'lamfast archs'), or your own class as "
                   "path/to/file.py:ClassName or package.module:ClassName. Naming a file imports it, which runs "
                   "its code: name only files you trust (default: detect from the checkpoint)")
    g.add_argument("--arch-kwargs", "--arch_kwargs", default=None, metavar="JSON",
                   help="keyword arguments for the architecture as a JSON object, e.g. '{\"width\": 64}'; for "
                        "a registered one they override what is read from the checkpoint")
    g.add_argument("--rgb-range", "--rgb_range", type=float, default=None, help="input range the model expects, e.g. 255 (default: 1)")
    g.add_argument("--unsafe-pickle", "--unsafe_pickle", action="store_true", help="allow full-pickle checkpoints (runs code from the file)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    g = p.add_argument_group("image and window")
    g.add_argument("--imgpath", help="HR image (made LR by PIL bicubic); default: the bundled astronaut")
    g.add_argument("--lr-input", "--lr_input", action="store_true", help="--imgpath is already the LR input "
                   "(also for scale-1 models: denoising, deblurring, JPEG)")
    add_input_arguments(g)
    g.add_argument("--h", type=int, default=150, help="window top row in SR pixels (default 150)")
    g.add_argument("--w", type=int, default=110, help="window left column in SR pixels (default 110)")
    g.add_argument("--window-size", "--window_size", type=int, default=16, help="window side in SR pixels (default 16)")
    add_lam_arguments(p.add_argument_group("path"))
    g = p.add_argument_group("output")
    g.add_argument("--alpha", type=float, default=0.5, help="LR weight in the blends (default 0.5)")
    g.add_argument("--zoomfactor", type=int, default=None, help="zoom of the saliency panels (default: the scale)")
    g.add_argument("--kde", action="store_true", help="also write the KDE blend")
    g.add_argument("--output-dir", "--output_dir", default="lam_results", help="where to write (default ./lam_results)")
    g.add_argument("--no-progress", "--no_progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
