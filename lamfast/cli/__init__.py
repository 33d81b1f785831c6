"""The ``lamfast`` command line (also ``python -m lamfast``).

Every user-facing failure ends as one line on stderr and a non-zero exit.
Subcommands live in one module each: :mod:`lamfast.cli.info`,
:mod:`lamfast.cli.selfcheck`, :mod:`lamfast.cli.archs`, :mod:`lamfast.cli.lam`,
:mod:`lamfast.cli.dataset` (run, export, report), :mod:`lamfast.cli.classify`
(cam, attr, attention).
"""
from __future__ import annotations

import argparse
import os
import sys

from lamfast.cli.common import CLIError


LIBRARY_TO_FLAG = {"unsafe_pickle=True": "--unsafe-pickle", "(check num_extra_tokens)": "(check --num-extra-tokens)"}


def build_parser() -> argparse.ArgumentParser:
    from lamfast._version import __version__
    from lamfast.cli import archs, classify, dataset, erf, info, lam, selfcheck

    parser = argparse.ArgumentParser(prog="lamfast", description="Fast, exact attribution for PyTorch image models.")
    parser.add_argument("--version", action="version", version=f"lamfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (lam, dataset, erf, classify, archs, info, selfcheck):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader went away (``lamfast cam --preview-model | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (CLIError, ValueError, OSError, RuntimeError, KeyError) as exc:
        text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        message = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        # Library errors name keyword arguments; on the command line they are flags.
        for keyword, flag in LIBRARY_TO_FLAG.items():
            message = message.replace(keyword, flag)
        print(f"lamfast: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lamfast: interrupted", file=sys.stderr)
        return 130


__all__ = ["CLIError", "build_parser", "main"]
