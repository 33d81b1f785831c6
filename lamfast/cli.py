"""The ``lamfast`` command line (also ``python -m lamfast``).

Every user-facing failure ends as one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import argparse
import sys


class CLIError(Exception):
    """A failure to report as one line, without a traceback."""


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    import lamfast
    from lamfast.ops import OP_NAMES
    from lamfast.ops._library import has_compiled_kernel

    print(f"lamfast {lamfast.__version__}")
    print(f"torch {torch.__version__} (threads: {torch.get_num_threads()})")
    print(f"extension: {'built' if lamfast.ext_available() else 'not in use'} ({lamfast.ext_status()})")
    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    print(f"devices: {', '.join(devices)}")
    for name in OP_NAMES:
        kernels = [dev for dev in ("cpu", "cuda") if has_compiled_kernel(name, dev)]
        print(f"  op {name}: compiled for {', '.join(kernels) or 'none'}; pure-torch twin elsewhere")
    return 0


def _cmd_selfcheck(args: argparse.Namespace) -> int:
    import torch

    import lamfast
    from lamfast.selfcheck import format_report, run_selfcheck

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise CLIError(f"--device {args.device}: CUDA is not available on this machine")
    print(f"lamfast {lamfast.__version__} op self-check on {args.device}, {torch.get_num_threads()} threads, "
          f"extension {'built' if lamfast.ext_available() else 'not in use'}")
    results = []
    for size in args.sizes:
        results += run_selfcheck(size=size, fold=args.fold, device=args.device)
    print(format_report(results))
    bad = [r for r in results if not r.ok]
    if bad:
        raise CLIError(f"{len(bad)} op check(s) disagree with the pure-torch twin")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from lamfast._version import __version__

    parser = argparse.ArgumentParser(prog="lamfast", description="Fast, exact attribution for PyTorch image models.")
    parser.add_argument("--version", action="version", version=f"lamfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="torch version, extension status, devices")
    info.set_defaults(func=_cmd_info)
    check = sub.add_parser("selfcheck", help="check every op against its pure-torch twin and time both")
    check.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sizes to check (default: 64 128)")
    check.add_argument("--fold", type=int, default=50, help="path steps (default: 50)")
    check.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    check.set_defaults(func=_cmd_selfcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (CLIError, ValueError, OSError, RuntimeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"lamfast: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lamfast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
