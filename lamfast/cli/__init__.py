"""The ``lamfast`` command line (also ``python -m lamfast``).

Every user-facing failure ends as one line on stderr and a non-zero exit.
Subcommands live in one module each: :mod:`lamfast.cli.info`,
:mod:`lamfast.cli.selfcheck`, :mod:`lamfast.cli.archs`, :mod:`lamfast.cli.lam`,
:mod:`lamfast.cli.dataset` (run, export, report), :mod:`lamfast.cli.classify`
(cam, attr), :mod:`lamfast.cli.attention`.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from lamfast.cli.common import CLIError, note


def build_parser() -> argparse.ArgumentParser:
    from lamfast._version import __version__
    from lamfast.cli import archs, attention, classify, dataset, erf, explore, info, lam, selfcheck

    parser = argparse.ArgumentParser(prog="lamfast", description="Fast, exact attribution for PyTorch image models.")
    parser.add_argument("--version", action="version", version=f"lamfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (lam, explore, dataset, erf, classify, attention, archs, info, selfcheck):
        module.add_parser(sub)
    for command in sub.choices.values():
        # Errors name the command's own flags; see flag_for.
        command.set_defaults(command_parser=command)
    return parser


def flag_for(args: argparse.Namespace, param: str | None) -> str | None:
    """The command's flag for a library argument: its own table first, then the flag whose dest is ``param``."""
    if param is None:
        return None
    table = getattr(args, "param_flags", None) or {}
    if param in table:
        return table[param]
    command = getattr(args, "command_parser", None)
    for action in getattr(command, "_actions", []):
        if action.dest == param and action.option_strings:
            return action.option_strings[0]
    return None


def _show_notes(message, category, filename, lineno, file=None, line=None) -> None:
    from lamfast.errors import LamfastNote

    if issubclass(category, LamfastNote):
        note(str(message))
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    from lamfast.errors import LamfastError, first_line

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    debug = os.environ.get("LAMFAST_DEBUG", "") not in ("", "0")
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_notes  # the library's notes print as the CLI's own
            return args.func(args)
    except BrokenPipeError:
        # The reader went away (``lamfast cam --preview-model | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("lamfast: interrupted", file=sys.stderr)
        return 130
    except (CLIError, LamfastError) as exc:
        if debug:
            raise
        # A library error names its argument by ``param``; here that argument is a flag.
        message = exc.spelled(flag_for(args, exc.param)) if isinstance(exc, LamfastError) else str(exc)
        print(f"lamfast: error: {first_line(ValueError(message))}", file=sys.stderr)
        return 1
    except (ValueError, OSError, RuntimeError, KeyError) as exc:
        if debug:
            raise
        # Not one of lamfast's own errors (the model, torch, the file system): say what it was.
        print(f"lamfast: error: {type(exc).__name__}: {first_line(exc)} (LAMFAST_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


__all__ = ["CLIError", "build_parser", "main"]
