"""``lamfast selfcheck``: every op against its pure-torch twin and the best plain-torch baseline, timed."""
from __future__ import annotations

import argparse

from lamfast.cli.common import CLIError, resolve_device


def run(args: argparse.Namespace) -> int:
    import torch

    import lamfast
    from lamfast.selfcheck import format_report, run_selfcheck

    device = resolve_device(args.device)
    print(f"lamfast {lamfast.__version__} op self-check on {device}, {torch.get_num_threads()} threads, "
          f"extension {'built' if lamfast.ext_available() else 'not in use'}")
    results = []
    for size in args.sizes:
        results += run_selfcheck(size=size, fold=args.fold, device=str(device))
    print(format_report(results))
    print("ms: median ± interquartile range per call (torch.utils.benchmark.Timer); speed-up: best plain torch / ext")
    bad = [r for r in results if not r.ok]
    if bad:
        raise CLIError(f"{len(bad)} op check(s) disagree with the pure-torch twin")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("selfcheck", help="check every op against its pure-torch twin and time it against plain torch")
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sizes to check (default: 64 128)")
    p.add_argument("--fold", type=int, default=50, help="path steps (default: 50)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.set_defaults(func=run)
