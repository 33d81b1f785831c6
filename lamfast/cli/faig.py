"""``lamfast faig --baseline B --target T --img1 DIR --img2 DIR --gt DIR -o OUT``: which filters a fine-tuning
changed for a degradation (FAIG), over a dataset, and what masking them costs.

The three folders hold one image each per name (``img1/x.png``, ``img2/x.png``, ``gt/x.png``): img1 the
degradation whose filters are sought (e.g. noisy inputs), img2 the other (blurry), gt the ground truth.
Writes ``scores.npy`` (the mean score per filter), ``ranking.txt`` (filter indices, best first, one per
line, as the official code writes them), ``faig.json`` (the images, the top filters by name, per layer
counts, the masking table) and ``layers.png`` (where the top filters sit).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

OUTPUTS = ["scores.npy", "ranking.txt", "faig.json", "layers.png"]


def _shares(text: str) -> list[float]:
    try:
        values = [float(v) / 100 for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes percentages like 1,3,5,10, got {text!r}") from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"takes percentages in (0, 100], got {text!r}")
    return values


def _triples(img1: str, img2: str, gt: str) -> tuple[list[str], list[tuple[Path, Path, Path]]]:
    """The images of the three folders, matched by file name (every name in all three)."""
    from lamfast.cli.common import CLIError
    from lamfast.cem.patches import IMAGE_SUFFIXES

    folders = [Path(f) for f in (img1, img2, gt)]
    for flag, f in zip(("--img1", "--img2", "--gt"), folders):
        if not f.is_dir():
            raise CLIError(f"{flag} {f}: not a folder")
    files = [{p.name: p for p in f.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES} for f in folders]
    names = sorted(files[0])
    if not names:
        raise CLIError(f"--img1 {folders[0]}: no images")
    for flag, have in zip(("--img2", "--gt"), files[1:]):
        missing = [n for n in names if n not in have]
        if missing:
            raise CLIError(f"{flag} has no {missing[0]} (every image of --img1 needs one of the same name)"
                           + (f", and {len(missing) - 1} more are missing" if len(missing) > 1 else ""))
    return names, [(files[0][n], files[1][n], files[2][n]) for n in names]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from lamfast.cli.common import CLIError, load_noted, remove_stale, resolve_device
    from lamfast.filter_attribution import faig_dataset
    from lamfast.filter_figure import filter_layers_figure, layer_counts
    from lamfast.filter_masking import masking_study
    from lamfast.imageio import read_rgb, to_tensor
    from lamfast.outputs import check_output_dir

    if args.steps < 1:
        raise CLIError(f"--steps must be >= 1, got {args.steps}")
    names, paths = _triples(args.img1, args.img2, args.gt)
    tensors = [tuple(to_tensor(read_rgb(p)[0]) for p in triple) for triple in paths]  # unreadable: before any work
    out_dir = check_output_dir(args.output)
    remove_stale(out_dir, OUTPUTS)
    device = resolve_device(args.device)
    base = load_noted(args.baseline, label="baseline: ", model_kwargs=args.model_kwargs,
                      unsafe_pickle=args.unsafe_pickle, rgb_range=args.rgb_range, device=device)
    target = load_noted(args.target, label="target: ", model_kwargs=args.model_kwargs,
                        unsafe_pickle=args.unsafe_pickle, rgb_range=args.rgb_range, device=device)
    result = faig_dataset(base, target, tensors, steps=args.steps, batch_size=args.batch_size, names=names,
                          progress=not args.no_progress)
    study = masking_study(base, target, result.ranking(), result.filters, tensors, shares=args.shares,
                          seed=args.seed) if args.shares else None
    top = result.top(args.top / 100)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.save(out_dir / "scores.npy", result.scores.detach().cpu().numpy())
    np.savetxt(out_dir / "ranking.txt", result.ranking().cpu().numpy(), fmt="%d")
    summary = {"images": names, "steps": args.steps, "filters": len(result.filters), "batched": result.batched,
               "top_share": args.top / 100,
               "top_filters": [{"index": int(i), "parameter": result.filters[int(i)][0],
                                "out_channel": result.filters[int(i)][1], "in_channel": result.filters[int(i)][2],
                                "score": float(result.scores[int(i)])} for i in result.ranking()[:20]],
               "layers": [{"parameter": n, "filters": total, "in_top": hits}
                          for n, total, hits in layer_counts(result.filters, top)],
               "masking": study.summary() if study else None}
    (out_dir / "faig.json").write_text(json.dumps(summary, indent=2) + "\n")
    filter_layers_figure(result.filters, top, title=f"top {args.top:g}% of {len(result.filters)} filters "
                                                    f"({len(top)}), FAIG over {len(names)} images").save(
        out_dir / "layers.png")  # written last: its presence means the folder is whole
    print(f"FAIG over {len(names)} images, {len(result.filters)} filters; the top one: "
          f"{result.filters[int(result.ranking()[0])][0]} {result.filters[int(result.ranking()[0])][1:]}")
    if study:
        print(f"target PSNR {study.target_psnr1:.2f} dB (img1), {study.target_psnr2:.2f} dB (img2)")
        for r in study.rows:
            print(f"mask {r.how:6} {r.share:.0%} ({r.k} filters): PSNR drop {r.drop1:+.2f} dB on img1, "
                  f"{r.drop2:+.2f} dB on img2")
    print(f"-> {out_dir}/scores.npy, ranking.txt, faig.json, layers.png", file=sys.stdout)
    return 0


def add_parser(sub) -> None:
    from lamfast.cli.common import add_batch_size, add_output_argument, add_progress_argument, json_object

    p = sub.add_parser("faig", help="FAIG: the filters a fine-tuning changed for a degradation, over a dataset, "
                                    "and the PSNR cost of masking them", description=__doc__.splitlines()[0])
    p.add_argument("--baseline", "--baseline-model-path", "--baseline_model_path", dest="baseline", required=True,
                   metavar="SPEC", help="the model before fine-tuning: a checkpoint or ARCH:CHECKPOINT")
    p.add_argument("--target", "--target-model-path", "--target_model_path", dest="target", required=True,
                   metavar="SPEC", help="the fine-tuned model, of the same architecture")
    p.add_argument("--model-kwargs", "--model_kwargs", "--arch-kwargs", "--arch_kwargs", dest="model_kwargs",
                   type=json_object, default=None, metavar="JSON", help="keyword arguments for both architectures")
    p.add_argument("--rgb-range", "--rgb_range", type=float, default=None,
                   help="the input range the models expect (default: the architecture's own, else 1)")
    p.add_argument("--unsafe-pickle", "--unsafe_pickle", action="store_true",
                   help="allow full-pickle checkpoints (loading one runs code from the file)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available, else cpu)")
    p.add_argument("--img1", required=True, metavar="DIR",
                   help="the inputs with the degradation whose filters are sought (e.g. noisy)")
    p.add_argument("--img2", required=True, metavar="DIR", help="the same images with the other degradation")
    p.add_argument("--gt", "--gt-folder", "--gt_folder", dest="gt", required=True, metavar="DIR",
                   help="the ground truth of each image")
    p.add_argument("--steps", "--total-step", "--total_step", dest="steps", type=int, default=100,
                   help="integration points (default 100)")
    add_batch_size(p, "steps of one image")
    p.add_argument("--top", type=float, default=1.0, metavar="PERCENT",
                   help="the share of filters faig.json and layers.png count as the top (default 1)")
    p.add_argument("--shares", type=_shares, default=[0.01, 0.03, 0.05, 0.10], metavar="LIST",
                   help="percentages of filters to mask, top-ranked and random (default 1,3,5,10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random filters masked (default 0)")
    add_progress_argument(p)
    add_output_argument(p, default="faig_results", what="the folder the results go to")
    p.set_defaults(func=run)
