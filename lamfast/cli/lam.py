"""``lamfast lam``: LAM for one window of one image, with the official figures.

Flags follow the popular unofficial LAM tool (``--modelpath --imgpath --w
--h --window_size --fold --sigma --l --alpha --zoomfactor --kde
--output_dir``; each also with hyphens, e.g. ``--window-size``). With no model flags it runs the bundled TinySR on the
bundled astronaut image: the README's demo.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_IMAGE = "astronaut.png"
# The default window (h, w) on an image: the official demo's.
IMAGE_WINDOW = (150, 110)
# Every figure lamfast lam can write (see lamfast.viz.lam_panels).
PANELS = ("window_position", "sr", "saliency_abs", "blend_abs", "blend_kde", "grid")


def run(args: argparse.Namespace) -> int:
    if args.video is not None:
        from lamfast.cli.lam_video import run_video

        return run_video(args)
    if args.frame is not None:
        from lamfast.cli.common import CLIError

        raise CLIError("--frame picks an output frame of a clip: it needs --video")
    args.h = IMAGE_WINDOW[0] if args.h is None else args.h
    args.w = IMAGE_WINDOW[1] if args.w is None else args.w
    import lamfast
    from lamfast.cli.common import color_flag, lam_params, note, parse_arch_kwargs_flag, resolve_device
    from lamfast.cli.lam_output import check_figure_flags, load_model, remove_stale, run_lam, write_outputs
    from lamfast.imageio import check_bands, parse_bands, read_bands, read_rgb
    from lamfast.models import data_path
    from lamfast.request import ModelSpec, prepare_input
    from lamfast.viz import lam_panels

    params = lam_params(args)
    bands = parse_bands(args.bands)
    arch_kwargs = parse_arch_kwargs_flag(args.arch_kwargs)
    out_dir = check_figure_flags(args, params)
    device = resolve_device(args.device)
    img_path = Path(args.imgpath) if args.imgpath else data_path(DEFAULT_IMAGE)
    (read_bands if img_path.suffix.lower() == ".npy" else read_rgb)(img_path)  # a bad image fails before model work
    loaded = load_model(ModelSpec.of(args.modelpath, args.arch), args, device, arch_kwargs)
    model = loaded.model
    sr_input = prepare_input(model, img_path, args.lr_input, device=device, color=color_flag(args))
    for line in sr_input.notes:
        note(f"{sr_input.name}: {line}")
    check_bands(bands, sr_input.tensor().shape[0])
    hr, lr = sr_input.views(bands)  # RGB, the gray band the model gets, or the bands' mean or three of them
    remove_stale(out_dir, [f"{name}.png" for name in PANELS])

    result = run_lam(lambda: lamfast.lam_windows(model, sr_input.tensor(), [(args.h, args.w, args.window_size)],
                                                 params=params, progress=not args.no_progress, crop=args.crop),
                     "image")
    panels = lam_panels(result, hr, lr, alpha=args.alpha, zoom=args.zoomfactor, kde=args.kde, bands=bands)
    write_outputs(out_dir, panels, {
        "image": str(img_path),
        "lr_input": bool(args.lr_input),
        "color": sr_input.color,
        "bands": list(bands) if bands else None,
        "alpha": args.alpha,
        "zoomfactor": args.zoomfactor or result.scale,
        **result.summary(),
    }, args, device, loaded, arch_kwargs)
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
    g.add_argument("--bands", default=None, metavar="R,G,B",
                   help="for a multi-band input (.npy [C,H,W]): the three bands, numbered from 1, drawn as red, "
                        "green and blue, e.g. 3,2,1 (default: the mean of the bands, in gray)")
    g.add_argument("--h", type=int, default=None, help="window top row in SR pixels (default 150, the official "
                   "demo's; with --video, 56)")
    g.add_argument("--w", type=int, default=None, help="window left column in SR pixels (default 110; with "
                   "--video, 72)")
    g.add_argument("--window-size", "--window_size", type=int, default=16, help="window side in SR pixels (default 16)")
    g = p.add_argument_group("video")
    g.add_argument("--video", nargs="?", const="bundled", default=None, metavar="FRAMES",
                   help="attribute a window of a video SR model's output: FRAMES is a folder of frame images or a "
                        "glob pattern (sorted by name, numbers as numbers), HR unless --lr-input; alone, the "
                        "bundled coffee clip. The model takes [B,T,C,H,W] (default: the bundled x2 TinyVSR)")
    g.add_argument("--frame", type=int, default=None, metavar="K",
                   help="the output frame whose window is attributed, for models that return every frame "
                        "(default: the middle one, ceil(T/2) - 1)")
    add_lam_arguments(p.add_argument_group("path"))
    g = p.add_argument_group("output")
    g.add_argument("--alpha", type=float, default=0.5, help="LR weight in the blends (default 0.5)")
    g.add_argument("--zoomfactor", type=int, default=None, help="zoom of the saliency panels (default: the scale)")
    g.add_argument("--kde", action="store_true", help="also write the KDE blend")
    g.add_argument("--output-dir", "--output_dir", default="lam_results", help="where to write (default ./lam_results)")
    g.add_argument("--no-progress", "--no_progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
