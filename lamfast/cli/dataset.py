"""``lamfast run`` / ``export`` / ``report``: LAM over whole datasets.

``lamfast run`` exits 0 when every unit of its work set is in the store as
a success; otherwise its exit status is the number of failed (image, model)
units of the work set, counting those that failed in earlier runs and were
skipped, capped at 125 (126 and up mean other things to shells).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys

from lamfast.cli.common import (CLIError, add_input_arguments, add_lam_arguments, color_flag, lam_params, note,
                                parse_arch_kwargs_flag, resolve_device)


FAILURES_SHOWN = 20


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes k/n (e.g. 0/4), got {text!r}") from None
    if not (n >= 1 and 0 <= k < n):
        raise argparse.ArgumentTypeError(f"--shard k/n needs 0 <= k < n, got {text!r}")
    return k, n


def _terminate(signum, frame):
    raise KeyboardInterrupt


def run_cmd(args: argparse.Namespace) -> int:
    from lamfast.dataset import RunConfig, run

    params = lam_params(args)
    arch_kwargs = parse_arch_kwargs_flag(args.arch_kwargs)
    device = resolve_device(args.device)
    config = RunConfig(windows=args.windows, lam=params, lr_input=args.lr_input, rgb_range=args.rgb_range,
                       crop=args.crop, unsafe_pickle=args.unsafe_pickle, device=str(device),
                       arch_kwargs=json.dumps(arch_kwargs, sort_keys=True) if arch_kwargs else None,
                       windows_from=args.windows_from, color=color_flag(args), video=args.video,
                       frame=args.frame, min_distance=args.min_distance)
    if args.frame is not None and not args.video:
        raise CLIError("--frame picks an output frame of a clip: it needs --video")
    if args.video and args.windows_from:
        raise CLIError("--windows-from picks windows on an image model's output; with --video the windows come "
                       "from the HR frame of the attributed output frame")
    if args.video:
        from lamfast.models import BUNDLED_VIDEO_WEIGHTS, data_path

        default_model = str(data_path(BUNDLED_VIDEO_WEIGHTS))
    else:
        default_model = "bundled"
    # SIGTERM (a scheduler's cancel) unwinds like Ctrl-C: the unit in flight is
    # dropped, the store closes, and a Ray runtime this run started shuts down.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        summary = run(args.inputs, args.model or [default_model], args.store, config, shard=args.shard,
                      engine=args.engine, progress=not args.no_progress, retry_failed=args.retry_failed,
                      ray_actors=args.ray_actors, ray_cpus=args.ray_cpus, verbose=args.verbose,
                      lease_seconds=None if args.no_leases else args.lease_seconds)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for line in summary.notes:
        note(line)
    failed = summary.units_failed_total
    skipped = summary.units_skipped - summary.units_failed_before
    text = f"{summary.units_done} units done, {skipped} skipped (already in the store), {failed} failed"
    if summary.units_failed_before:
        text += f" ({summary.units_failed_before} from earlier runs; --retry-failed redoes them)"
    if summary.units_by_others:
        text += f"; {summary.units_by_others} done by other workers on this store"
    if summary.units_taken_over:
        text += f"; {summary.units_taken_over} taken over from workers whose lease expired"
    if summary.units_stale:
        text += f"; {summary.units_stale} recomputed because their image or checkpoint changed"
    print(f"{text}; {summary.windows_done} windows in {summary.seconds:.1f}s -> {args.store}")
    shown = summary.failures if len(summary.failures) <= FAILURES_SHOWN else summary.failures[:FAILURES_SHOWN - 1]
    for line in shown:
        print(f"lamfast: failed: {line}", file=sys.stderr)
    if len(shown) < len(summary.failures):
        print(f"lamfast: failed: ... and {len(summary.failures) - len(shown)} more (lamfast export lists every row)",
              file=sys.stderr)
    return min(failed, 125)


def export_cmd(args: argparse.Namespace) -> int:
    from lamfast.dataset import export

    n = export(args.store, args.output, maps=args.maps)
    print(f"wrote {n} rows to {args.output}")
    return 0


def merge_cmd(args: argparse.Namespace) -> int:
    from lamfast.dataset import merge

    s = merge(args.output, args.stores, rtol=args.rtol)
    n = len(s.sources)
    text = f"merged {n} store{'s' if n != 1 else ''} into {args.output}: {s.units_added} units added, {s.units_same} already there"
    if s.units_replaced:
        text += f", {s.units_replaced} failed units replaced by successes"
    print(f"{text} ({s.rows_written} rows written)")
    return 0


def report_cmd(args: argparse.Namespace) -> int:
    from lamfast.dataset import write_report

    path = write_report(args.store, args.output, formats=args.format)
    print(f"wrote {path}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="LAM over images x models x windows into a resumable SQLite store")
    p.add_argument("inputs", nargs="+", help="image folders, globs or manifest files (one path per line); with "
                   "--video, folders of clips (each clip a folder of frames)")
    p.add_argument("--model", action="append",
                   help="[NAME=]SPEC: SPEC is 'bundled', a checkpoint, or ARCH:CHECKPOINT where ARCH is a "
                        "registered name or your own class as FILE.py:Class or module:Class (importing it runs its "
                        "code); NAME is what the store, the report and the export call it (default the file stem, "
                        "made unique) (repeatable; default bundled)")
    p.add_argument("--windows-from", "--windows_from", default=None, metavar="MODEL",
                   help="choose top:K windows on this model's SR output (a --model spec) instead of the HR "
                        "image's edges; either way every model gets the same windows of an image")
    p.add_argument("--arch-kwargs", "--arch_kwargs", default=None, metavar="JSON",
                   help="keyword arguments for the architectures, a JSON object (part of the results' key)")
    p.add_argument("--store", default="lamfast_results.sqlite", help="SQLite results file (default lamfast_results.sqlite)")
    p.add_argument("--windows", default="top:8:16",
                   help="list:H,W;H,W[:SIZE] | grid:SIZE[:STRIDE] | top:K:SIZE[:STRIDE] | random:N:SIZE[:SEED] (default top:8:16)")
    p.add_argument("--min-distance", "--min_distance", type=int, default=None, metavar="PX",
                   help="top:K windows are kept at least PX SR pixels apart in row or column (default the window "
                        "size: no overlap; 0 keeps the K strongest even where they overlap)")
    add_lam_arguments(p)
    p.add_argument("--lr-input", "--lr_input", action="store_true", help="the images are LR inputs already")
    p.add_argument("--video", action="store_true",
                   help="the inputs hold clips for video SR models [B,T,C,H,W] (default model: the bundled x2 "
                        "TinyVSR); each window is on one output frame")
    p.add_argument("--frame", type=int, default=None, metavar="K",
                   help="with --video: the output frame attributed (default the middle one)")
    add_input_arguments(p)
    p.add_argument("--rgb-range", "--rgb_range", type=float, default=None)
    p.add_argument("--unsafe-pickle", "--unsafe_pickle", action="store_true")
    p.add_argument("--device", default=None)
    p.add_argument("--shard", type=_shard, default=None, help="k/n: this process takes shard k of n")
    p.add_argument("--lease-seconds", "--lease_seconds", type=float, default=60.0, metavar="S",
                   help="runs sharing one store split its units: each claims a unit for S seconds, renewed while "
                        "it works; a unit whose run died is taken over S seconds after (default 60)")
    p.add_argument("--no-leases", "--no_leases", action="store_true",
                   help="claim nothing (one run alone on the store; two would both compute everything)")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--verbose", action="store_true", help="let Ray's log lines through (default: STORE.ray.log)")
    p.add_argument("--ray-actors", "--ray_actors", type=int, default=None, help="actors in the Ray pool (default: the cluster's GPUs for a CUDA --device, else its CPUs)")
    p.add_argument("--ray-cpus", "--ray_cpus", type=int, default=None,
                   help="CPUs of the Ray runtime the run starts (default: all of this machine's)")
    p.add_argument("--retry-failed", "--retry_failed", action="store_true", help="redo units that failed before")
    p.add_argument("--no-progress", "--no_progress", action="store_true")
    p.set_defaults(func=run_cmd)

    e = sub.add_parser("export", help="write a results store as CSV or Parquet")
    e.add_argument("store")
    e.add_argument("-o", "--output", required=True, help="file.csv or file.parquet")
    e.add_argument("--maps", action="store_true",
                   help="also the attribution maps: a list column in Parquet, or FILE.maps.npz next to a CSV")
    e.set_defaults(func=export_cmd)

    m = sub.add_parser("merge", help="combine results stores (one per node or shard) into one; refuses stores "
                                     "that hold different results for one unit")
    m.add_argument("output", help="the store to write (created if missing; its units stay)")
    m.add_argument("stores", nargs="+", help="stores to read (read-only)")
    m.add_argument("--rtol", type=float, default=1e-6,
                   help="relative tolerance for two copies of one result (default 1e-6)")
    m.set_defaults(func=merge_cmd)

    r = sub.add_parser("report", help="HTML report of a results store")
    r.add_argument("store")
    r.add_argument("-o", "--output", required=True, help="output folder")
    r.add_argument("--format", default="html", metavar="LIST",
                   help="html,pdf,svg,tex: besides the HTML page, the figures as PDF/SVG (figures/, needs "
                        "matplotlib) and the DI tables as LaTeX booktabs (tables/) (default html)")
    r.set_defaults(func=report_cmd)


__all__ = ["CLIError", "add_parser"]
