"""``lamfast lam --video FRAMES``: LAM for one window of one output frame of a clip.

Writes one figure row per input frame (``frame_<t>.png``: the window's place, the abs map on the
clip's joint scale, its blend, the KDE blend), ``frame_share.png``, ``grid.png`` (all of them) and
``result.json``. With no model flags it runs the bundled TinyVSR on the bundled coffee clip.
"""
from __future__ import annotations

import argparse
import sys

# The default window (h, w) on a clip: a textured one (the cup's rim) on the bundled clip.
VIDEO_WINDOW = (56, 72)


def run_video(args: argparse.Namespace) -> int:
    import lamfast
    from lamfast.cli.common import CLIError, color_flag, lam_params, note, parse_arch_kwargs_flag, resolve_device
    from lamfast.cli.lam_output import check_figure_flags, load_model, remove_stale, run_lam, write_outputs
    from lamfast.models import BUNDLED_VIDEO_WEIGHTS, data_path
    from lamfast.request import ModelSpec, frame_files, prepare_clip
    from lamfast.viz_video import video_panels

    if args.imgpath:
        raise CLIError("--imgpath and --video: give the image or the clip, not both")
    if args.bands:
        raise CLIError("--bands is for multi-band images; a clip's frames are image files of 1 or 3 channels")
    params = lam_params(args)
    args.h = VIDEO_WINDOW[0] if args.h is None else args.h
    args.w = VIDEO_WINDOW[1] if args.w is None else args.w
    arch_kwargs = parse_arch_kwargs_flag(args.arch_kwargs)
    out_dir = check_figure_flags(args, params)
    device = resolve_device(args.device)
    files = frame_files(args.video)  # a missing clip fails before any model work
    modelpath = args.modelpath or (str(data_path(BUNDLED_VIDEO_WEIGHTS)) if args.arch is None else None)
    loaded = load_model(ModelSpec.of(modelpath, args.arch), args, device, arch_kwargs)
    model = loaded.model
    clip = prepare_clip(model, args.video, args.lr_input, device=device, color=color_flag(args))
    for line in clip.notes:
        note(f"{clip.name}: {line}")
    hr, lr = clip.views()
    remove_stale(out_dir, ["frame_share.png", "grid.png", *(f"frame_{t}.png" for t in range(len(files)))])

    result = run_lam(lambda: lamfast.lam_video_windows(
        model, clip.tensor(), [(args.h, args.w, args.window_size)], frame=args.frame, params=params,
        progress=not args.no_progress, crop=args.crop, device=device), "clip")
    panels = video_panels(result, hr, lr, alpha=args.alpha, zoom=args.zoomfactor, kde=True)
    write_outputs(out_dir, panels, {
        "video": [str(f) for f in clip.files],
        "lr_input": bool(args.lr_input),
        "color": clip.color,
        "alpha": args.alpha,
        "zoomfactor": args.zoomfactor or result.scale,
        **result.summary(),
    }, args, device, loaded, arch_kwargs)
    shares = " ".join(f"{100 * float(v):.1f}%" for v in result.frame_share)
    target = "the model's one output frame" if result.frame is None else f"output frame {result.frame}"
    print(f"DI {result.di:.4f} over {len(files)} frames  frame share {shares}  window h={args.h} w={args.w} "
          f"size={args.window_size} on {target}  scale x{result.scale}  {result.timings['total']:.2f}s  -> {out_dir}/",
          file=sys.stdout)
    return 0
