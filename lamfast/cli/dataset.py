"""``lamfast run`` / ``export`` / ``report``: LAM over whole datasets.

``lamfast run`` exits 0 when every unit of its work set is in the store as
a success; otherwise its exit status is the number of failed (image, model)
units of the work set, counting those that failed in earlier runs and were
skipped, capped at 125 (126 and up mean other things to shells).
"""
from __future__ import annotations

import argparse
import signal
import sys

from lamfast.cli.common import (CEM_FIELDS, LAM_FIELDS, CLIError, add_cem_arguments, add_input_arguments,
                                add_lam_arguments, add_model_arguments, add_output_argument, add_progress_argument,
                                cem_params, color_of, lam_params, note, resolve_device)


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


def _unused_flags(values: dict, method: str) -> None:
    """One line when flags of the other method were set (a LAM flag for ``--method cem``, or the reverse)."""
    from lamfast.cem.params import CEMParams
    from lamfast.lam import LAMParams

    other = ({f: getattr(CEMParams(), f) for f in CEM_FIELDS if f in values} if method == "lam" else
             {f: getattr(LAMParams(), f) for f in LAM_FIELDS if f in values})
    changed = [f for f, default in other.items() if values[f] != default]
    if changed:
        flag = "--" + changed[0].replace("_", "-")
        raise CLIError(f"{flag} is a flag of --method {'cem' if method == 'lam' else 'lam'}, not of --method {method}")


def run_config(values: dict, device) -> "RunConfig":
    """The :class:`lamfast.dataset.RunConfig` of ``run``'s (and ``explore``'s) flag values (``vars(args)``)."""
    from lamfast.dataset import RunConfig
    from lamfast.lam.windows import parse_windows

    method = values.get("method", "lam")
    _unused_flags(values, method)
    extra = {"method": method, "cem": cem_params(values)} if method == "cem" else {}
    return RunConfig(windows=parse_windows(values["windows"], values.get("min_distance")), lam=lam_params(values),
                     **extra, lr_input=values["lr_input"], rgb_range=values["rgb_range"], model_kwargs=values["model_kwargs"],
                     windows_from=values.get("windows_from"), color=color_of(values["color"], values["channels"]),
                     video=values.get("video", False), frame=values.get("frame"), batch_size=values["batch_size"],
                     crop=values["crop"], unsafe_pickle=values["unsafe_pickle"], device=str(device))


def run_cmd(args: argparse.Namespace) -> int:
    from lamfast.bundled import bundled_file
    from lamfast.dataset import run

    config = run_config(vars(args), resolve_device(args.device))
    default_model = str(bundled_file("video_model")) if args.video else "bundled"

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
    print(f"wrote {n} rows to {args.output}{_status_of(args.store)}")
    return 0


def _status_of(store) -> str:
    """The store's incomplete / in-progress state as a suffix of a command's line ("" when complete)."""
    from lamfast.dataset import ResultStore

    with ResultStore(store) as db:
        text = db.status().text
    return f" (store {text})" if text else ""


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
    print(f"wrote {path}{_status_of(args.store)}")
    return 0


def add_window_arguments(p, default: str | None) -> None:
    """``--windows`` and ``--min-distance``, as ``run`` and ``explore`` take them."""
    p.add_argument("--windows", default=default, required=default is None, metavar="SPEC",
                   help="list:H,W;H,W[:SIZE] | grid:SIZE[:STRIDE] | top:K:SIZE[:STRIDE[:MIN_DISTANCE]] | "
                        "random:N:SIZE[:SEED]" + (f" (default {default})" if default else ""))
    p.add_argument("--min-distance", "--min_distance", type=int, default=None, metavar="PX",
                   help="top:K windows are kept at least PX SR pixels apart in row or column (default the window "
                        "size: no overlap; 0 keeps the K strongest even where they overlap)")


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="LAM (or CEM) over images x models x windows into a resumable SQLite store")
    p.add_argument("inputs", nargs="+", help="image folders, globs or manifest files (one path per line); with "
                   "--video, folders of clips (each clip a folder of frames)")
    add_model_arguments(p, many=True, what="'bundled', a checkpoint, or ARCH:CHECKPOINT where ARCH is a registered "
                        "name or your own class as FILE.py:Class or module:Class (importing it runs its code); NAME "
                        "is what the store, the report and the export call it (default the file stem, made unique)",
                        default="bundled; with --video the bundled x2 TinyVSR")
    p.add_argument("--windows-from", "--windows_from", default=None, metavar="MODEL",
                   help="choose top:K windows on this model's SR output (a --model spec) instead of the HR "
                        "image's edges; either way every model gets the same windows of an image")
    add_output_argument(p, default="lamfast_results.sqlite", aliases=("--store",), dest="store",
                        what="the SQLite results store (created if missing; a rerun resumes from it)")
    add_window_arguments(p, "top:8:16")
    p.add_argument("--method", choices=["lam", "cem"], default="lam",
                   help="lam: LAM of each window; cem: the causal effect map of each window as its ROI, against the "
                        "HR image (lamfast.cem); both kinds of row can share one store (default lam)")
    add_lam_arguments(p)
    add_cem_arguments(p)
    p.add_argument("--lr-input", "--lr_input", action="store_true", help="the images are LR inputs already")
    p.add_argument("--video", action="store_true",
                   help="the inputs hold clips for video SR models [B,T,C,H,W] (default model: the bundled x2 "
                        "TinyVSR); each window is on one output frame")
    p.add_argument("--frame", type=int, default=None, metavar="K",
                   help="with --video: the output frame attributed (default the middle one)")
    add_input_arguments(p)
    p.add_argument("--shard", type=_shard, default=None, help="k/n: this process takes shard k of n")
    p.add_argument("--lease-seconds", "--lease_seconds", type=float, default=60.0, metavar="S",
                   help="runs sharing one store split its units: each claims a unit for S seconds, renewed while "
                        "it works; a unit whose run died is taken over S seconds after (default 60)")
    p.add_argument("--no-leases", "--no_leases", action="store_true",
                   help="claim nothing (one run alone on the store; two would both compute everything)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: a Ray Data actor pool (bash scripts/setup.sh --extras ray) (default local)")
    p.add_argument("--verbose", action="store_true", help="let Ray's log lines through (default: STORE.ray.log)")
    p.add_argument("--ray-actors", "--ray_actors", type=int, default=None, help="actors in the Ray pool (default: the cluster's GPUs for a CUDA --device, else its CPUs)")
    p.add_argument("--ray-cpus", "--ray_cpus", type=int, default=None,
                   help="CPUs of the Ray runtime the run starts (default: all of this machine's)")
    p.add_argument("--retry-failed", "--retry_failed", action="store_true", help="redo units that failed before")
    add_progress_argument(p)
    p.set_defaults(func=run_cmd)

    e = sub.add_parser("export", help="write a results store as CSV or Parquet")
    e.add_argument("store", help="the results store to read")
    add_output_argument(e, default=None, what="file.csv or file.parquet")
    e.add_argument("--maps", action="store_true",
                   help="also the attribution maps: a list column in Parquet, or FILE.maps.npz next to a CSV")
    e.set_defaults(func=export_cmd)

    m = sub.add_parser("merge", help="combine results stores (one per node or shard) into one; refuses stores "
                                     "that hold different results for one unit")
    m.add_argument("stores", nargs="+", help="stores to read (read-only)")
    add_output_argument(m, default=None, what="the store to write (created if missing; its units stay)")
    m.add_argument("--rtol", type=float, default=1e-6,
                   help="relative tolerance for two copies of one result (default 1e-6)")
    m.set_defaults(func=merge_cmd)

    r = sub.add_parser("report", help="HTML report of a results store")
    r.add_argument("store", help="the results store to read")
    add_output_argument(r, default=None, what="the folder the report goes to")
    r.add_argument("--format", default="html", metavar="LIST",
                   help="html,pdf,svg,tex: besides the HTML page, the figures as PDF/SVG (figures/, needs "
                        "matplotlib) and the DI tables as LaTeX booktabs (tables/) (default html)")
    r.set_defaults(func=report_cmd)


__all__ = ["add_parser", "add_window_arguments", "run_config"]
