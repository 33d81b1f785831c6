"""``lamfast lam`` (an image) and ``lamfast lam-video`` (a clip): LAM for one window, with the official figures.

Flags follow the popular unofficial LAM tool (``--modelpath --imgpath --w
--h --window_size --fold --sigma --l --alpha --zoomfactor --kde
--output_dir``, kept as aliases; each also with hyphens). With no model
flags ``lam`` runs the bundled TinySR on the bundled astronaut image (the
README's demo) and ``lam-video`` the bundled TinyVSR on the bundled coffee
clip. ``lamfast lam --video ...`` is ``lamfast lam-video ...``.

``lam-video`` writes one figure row per input frame (``frame_<t>.png``: the
window's place, the abs map on the clip's joint scale, its blend, the KDE
blend), ``frame_share.png``, ``grid.png`` (all of them) and ``result.json``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The default window (h, w): the official demo's on an image; a textured one (the cup's rim) on the bundled clip.
DEFAULT_WINDOW = {"image": (150, 110), "clip": (56, 72)}


def route(argv: list[str]) -> str | None:
    """``lam --video ...`` (the single-command spelling) is the ``lam-video`` command."""
    return "lam-video" if any(a == "--video" or a.startswith("--video=") for a in argv) else None


def _check_figure_flags(window_size: int, alpha: float, zoomfactor: int | None) -> None:
    from lamfast.cli.common import CLIError

    if window_size < 2:
        raise CLIError(f"--window-size must be >= 2, got {window_size}")
    if not 0.0 <= alpha <= 1.0:
        raise CLIError(f"--alpha must be in [0, 1], got {alpha}")
    if zoomfactor is not None and zoomfactor < 1:
        raise CLIError(f"--zoomfactor must be >= 1, got {zoomfactor}")


def run(args: argparse.Namespace) -> int:
    """One window of an image (``lam``) or of a clip's output frame (``lam-video``).

    In three steps, each in one place: this command's own flags and its input's files are checked; the
    shared flags become typed values, and the model and the input load with their notes printed
    (:mod:`lamfast.cli.common`); LAM runs and the folder is written (:mod:`lamfast.cli.lam_output`).
    """
    import lamfast
    from lamfast.bundled import bundled_file, resolve
    from lamfast.cli.common import (color_of, lam_params, load_noted, prepare_noted, remove_stale,
                                    resolve_device)
    from lamfast.cli.lam_output import Figures, lam_noted, output_files, write_lam_folder
    from lamfast.imageio import parse_bands, read_bands, read_rgb
    from lamfast.lam.official_path import require_opencv
    from lamfast.lam.progress import said_if_slow
    from lamfast.outputs import check_output_dir
    from lamfast.request import frame_files

    video = args.command == "lam-video"
    _check_figure_flags(args.window_size, args.alpha, args.zoomfactor)
    h, w = DEFAULT_WINDOW["clip" if video else "image"]
    window = (args.h if args.h is not None else h, args.w if args.w is not None else w, args.window_size)
    bands = None if video else parse_bands(args.bands)
    if args.mode == "official":
        require_opencv()  # its error names param "mode": printed as --mode
    # A missing or unreadable input fails before any model work.
    if video:
        source = resolve(args.video, "clip")
        frames = len(frame_files(source))
    else:
        source, frames = Path(resolve(args.imgpath or "bundled", "image")), None
        (read_bands if source.suffix.lower() == ".npy" else read_rgb)(source)

    params = lam_params(vars(args))
    out_dir = check_output_dir(args.output)
    remove_stale(out_dir, output_files(frames))
    device = resolve_device(args.device)
    color = color_of(args.color, args.channels)
    default_model = str(bundled_file("video_model")) if video and args.arch is None else "bundled"
    with said_if_slow(f"lamfast: loading the model ({args.model or default_model})", not args.no_progress):
        model = load_noted(args.model, arch=args.arch, default=default_model, model_kwargs=args.model_kwargs,
                           unsafe_pickle=args.unsafe_pickle, rgb_range=args.rgb_range, device=device)
    with said_if_slow(f"lamfast: reading {'the clip' if video else 'the image'} {source}", not args.no_progress):
        prepared = prepare_noted(model, source, args.lr_input, clip=video, bands=bands, device=device, color=color)

    result = lam_noted(lambda: lamfast.lam_windows(model, prepared.tensor(), [window], params=params,
                                                   frame=args.frame if video else None, batch_size=args.batch_size,
                                                   crop=args.crop, progress=not args.no_progress),
                       "clip" if video else "image")

    record = {"image": str(source)} if not video else {}
    record.update(model_kwargs=args.model_kwargs or {}, lr_input=bool(args.lr_input))
    figures = Figures(args.alpha, args.zoomfactor, video or args.kde, bands)  # a clip always gets its KDE rows
    print(write_lam_folder(out_dir, result, prepared, window, figures, record, device, model), file=sys.stdout)
    return 0


def _add_common(p, video: bool) -> None:
    from lamfast.cli.common import (add_input_arguments, add_lam_arguments, add_model_arguments, add_output_argument,
                                    add_progress_argument)

    g = p.add_argument_group("model")
    add_model_arguments(g, aliases=("--modelpath",), arch=True,
                        what="'bundled', a checkpoint (.pt/.pth/.safetensors) or ARCH:CHECKPOINT"
                             + (" of a video SR model [B,T,C,H,W] -> [B,T,C,sH,sW] or [B,C,sH,sW]" if video else ""),
                        default="the bundled x2 TinyVSR" if video else "the bundled x4 TinySR")
    g = p.add_argument_group("clip and window" if video else "image and window")
    if video:
        g.add_argument("--video", nargs="?", const="bundled", default="bundled", metavar="FRAMES",
                       help="a folder of frame images or a glob pattern (sorted by name, numbers as numbers), HR "
                            "unless --lr-input (default: the bundled coffee clip)")
        g.add_argument("--frame", type=int, default=None, metavar="K",
                       help="the output frame whose window is attributed, for models that return every frame "
                            "(default: the middle one, ceil(T/2) - 1)")
    else:
        g.add_argument("--imgpath", "--image", dest="imgpath", default=None,
                       help="HR image (made LR by PIL bicubic), or a .npy array of bands [C,H,W]; default: the "
                            "bundled astronaut")
        g.add_argument("--bands", default=None, metavar="R,G,B",
                       help="for a multi-band input (.npy [C,H,W]): the three bands, numbered from 1, drawn as red, "
                            "green and blue, e.g. 3,2,1 (default: the mean of the bands, in gray)")
    g.add_argument("--lr-input", "--lr_input", action="store_true",
                   help="the input is already the LR input (also for scale-1 models: denoising, deblurring, JPEG)")
    add_input_arguments(g)
    h, w = DEFAULT_WINDOW["clip" if video else "image"]
    g.add_argument("--h", type=int, default=None, help=f"window top row in SR pixels (default {h})")
    g.add_argument("--w", type=int, default=None, help=f"window left column in SR pixels (default {w})")
    g.add_argument("--window-size", "--window_size", type=int, default=16, help="window side in SR pixels (default 16)")
    add_lam_arguments(p.add_argument_group("path"))
    g = p.add_argument_group("output")
    g.add_argument("--alpha", type=float, default=0.5, help="LR weight in the blends (default 0.5)")
    g.add_argument("--zoomfactor", type=int, default=None, help="zoom of the saliency panels (default: the scale)")
    if not video:
        g.add_argument("--kde", action="store_true", help="also write the KDE blend")
    add_output_argument(g, default="lam_results", aliases=("--output-dir", "--output_dir"),
                        what="the folder the figures and result.json go to")
    add_progress_argument(g)
    p.set_defaults(func=run)


def add_parser(sub) -> None:
    p = sub.add_parser("lam", help="Local Attribution Map of one SR-output window (writes PNGs and result.json)",
                       description="Local Attribution Map of one window of an SR model's output, with the official "
                                   "figures.")
    _add_common(p, video=False)
    v = sub.add_parser("lam-video", help="LAM of one window of one output frame of a video SR model "
                                         "(also: lam --video FRAMES)",
                       description="LAM of one window of one output frame of a clip, over every input frame.")
    _add_common(v, video=True)
