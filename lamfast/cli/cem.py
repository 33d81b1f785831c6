"""``lamfast cem IMAGE --roi H W SIZE --model M -o DIR``: the causal effect map of one output ROI.

IMAGE is the ground truth (the HR image for SR, the clean image for denoising and deraining). The
model's input is made from it as the official code makes it: for SR cropped to a multiple of the
scale and PIL-bicubic downscaled; for ``--task denoise`` Gaussian noise of σ 50/255 from
``np.random.seed(0)``; for ``--task derain`` it is given (``--input`` with ``--rain`` and ``--beta``).
``--input`` gives the input file in any task.

Writes ``cem.png`` (the figure), ``effect.npy`` (the signed map in dB, [blocks_h, blocks_w]) and
``cem.json`` (PSNR, counts, range, forwards against the official loop's, which path ran).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUTPUTS = ["cem.png", "effect.npy", "cem.json"]


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    import lamfast
    from lamfast.bundled import resolve
    from lamfast.cem.figure import cem_figure
    from lamfast.cem.interventions import noisy_input
    from lamfast.cli.common import CLIError, cem_params, load_noted, remove_stale, resolve_device
    from lamfast.imageio import prepare_images, read_rgb
    from lamfast.lam.progress import said_if_slow
    from lamfast.outputs import check_output_dir

    h, w, size = args.roi
    if min(h, w) < 0 or size < 1:
        raise CLIError(f"--roi: H and W must be >= 0 and SIZE >= 1, got {h} {w} {size}")
    if args.task == "derain" and (args.input is None or args.rain is None or args.beta is None):
        raise CLIError("--task derain needs --input (the rainy image), --rain (the rain layer) and --beta")
    if args.task != "derain" and (args.rain is not None or args.beta is not None):
        raise CLIError("--rain and --beta belong to --task derain")
    truth, _ = read_rgb(resolve(args.image, "image"))  # unreadable files fail before any model work
    if h + size > truth.height or w + size > truth.width:
        raise CLIError(f"--roi {h} {w} {size} runs outside the {truth.height}x{truth.width} image")
    given = read_rgb(args.input)[0] if args.input else None
    rain = np.asarray(read_rgb(args.rain)[0]) if args.rain else None
    out_dir = check_output_dir(args.output)
    remove_stale(out_dir, OUTPUTS)
    device = resolve_device(args.device)
    with said_if_slow(f"lamfast: loading the model ({args.model or 'bundled'})", not args.no_progress):
        model = load_noted(args.model, model_kwargs=args.model_kwargs, unsafe_pickle=args.unsafe_pickle,
                           rgb_range=args.rgb_range, device=device)
    if args.task == "sr" and given is None:
        scale = lamfast.lam.infer_scale(model, device)
        truth, lr_img = prepare_images(truth, scale)
        lr = np.asarray(lr_img)
    elif given is not None:
        lr = np.asarray(given)
    else:
        lr = noisy_input(np.asarray(truth))
    x = torch.from_numpy(np.array(lr)).permute(2, 0, 1).float() / 255
    result = lamfast.cem(model, x, np.asarray(truth), h, w, size, **cem_params(vars(args)).kwargs(), task=args.task,
                         rain=(rain, args.beta) if rain is not None else None, batch_size=args.batch_size,
                         crop=args.crop, device=device, progress=not args.no_progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "effect.npy", result.effect)
    (out_dir / "cem.json").write_text(json.dumps({"image": str(args.image), "input": args.input, "model":
                                                  args.model or "bundled", **result.summary()}, indent=2) + "\n")
    cem_figure(result, x).save(out_dir / "cem.png")  # written last: its presence means the folder is whole
    c, (lo, hi) = result.counts, result.effect_range
    print(f"CEM of the ROI ({h}, {w}, {size}): PSNR {result.psnr:.2f} dB; {c['positive']} blocks help, "
          f"{c['negative']} hurt, {c['zero']} none; effect {lo:+.2f} to {hi:+.2f} dB; {result.forwards} forwards "
          f"(the official loop: {result.official_forwards})", file=sys.stdout)
    print(f"-> {out_dir}/cem.png, effect.npy, cem.json")
    return 0


def add_parser(sub) -> None:
    from lamfast.cli.common import (_crop, add_batch_size, add_cem_arguments, add_model_arguments,
                                    add_output_argument, add_progress_argument)

    p = sub.add_parser("cem", help="causal effect map of one output ROI (CEM: which input blocks help or hurt it)",
                       description=__doc__.splitlines()[0])
    p.add_argument("image", nargs="?", default="bundled",
                   help="the ground truth: HR image (SR) or clean image (denoise, derain) (default bundled)")
    p.add_argument("--roi", type=int, nargs=3, required=True, metavar=("H", "W", "SIZE"),
                   help="top-left row and column of the ROI and its side, output pixels")
    add_model_arguments(p, what="'bundled', a checkpoint or ARCH:CHECKPOINT")
    p.add_argument("--input", default=None, metavar="FILE",
                   help="the model's input as a file (default: made from IMAGE as the official code makes it)")
    p.add_argument("--task", choices=["sr", "denoise", "derain"], default="sr",
                   help="what an intervention writes: the patch (sr), the patch with Gaussian noise of 50/255 "
                        "(denoise), the patch with the image's rain (derain) (default sr)")
    p.add_argument("--rain", default=None, metavar="FILE", help="--task derain: the 8-bit rain layer image")
    p.add_argument("--beta", type=float, default=None, help="--task derain: the rain layer's weight")
    add_cem_arguments(p)
    add_batch_size(p, "interventions", default=None)
    p.add_argument("--crop", type=_crop, default="auto", metavar="auto|off|N",
                   help="auto: skip blocks beyond the model's measured reach of the ROI and run the others on a "
                        "crop, where the checks on the image allow; off: every block on the whole image; N: "
                        "reach N in input pixels (default auto)")
    add_progress_argument(p)
    add_output_argument(p, default="cem_results", what="the folder cem.png, effect.npy and cem.json go to")
    p.set_defaults(func=run)
