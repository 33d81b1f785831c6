"""The ``lamfast`` command line (also ``python -m lamfast``).

Every user-facing failure ends as one line on stderr and a non-zero exit.
Subcommands live in one module each: :mod:`lamfast.cli.info`,
:mod:`lamfast.cli.selfcheck`, :mod:`lamfast.cli.archs`, :mod:`lamfast.cli.lam`
(lam, lam-video), :mod:`lamfast.cli.explore`, :mod:`lamfast.cli.dataset` (run,
export, merge, report), :mod:`lamfast.cli.erf`, :mod:`lamfast.cli.cem`,
:mod:`lamfast.cli.faig`, :mod:`lamfast.cli.classify` (cam, attr),
:mod:`lamfast.cli.attention` (attention, attention-sr, attention-guide).

A mode that takes other flags is its own parser, so argparse refuses what
does not apply. The seed tools' single-command spellings still work: a
module's ``route(argv)`` names the parser a command line belongs to
(``lam --video ...`` is ``lam-video``; ``attention --method sr-window`` is
``attention-sr``).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

from lamfast.cli.common import CLIError, note


class UsageError(Exception):
    """A command line argparse refuses (an unknown flag, a bad value): said in one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors raised (and printed by :func:`main` in one line) instead of usage text and exit."""

    def error(self, message: str):
        raise UsageError(message)


def usage_message(message: str, argv: list[str]) -> str:
    """argparse's ``argument --a/--b/--c: why`` with the one spelling the user typed (``--b: why``)."""
    match = re.match(r"argument (\S+): (.*)", message, flags=re.S)
    if not match:
        return message
    spellings = match.group(1).split("/")
    typed = [o for o in spellings if any(a == o or a.startswith(o + "=") for a in argv)]
    return f"{(typed or spellings)[0]}: {match.group(2)}"


def build_parser() -> argparse.ArgumentParser:
    from lamfast._version import __version__
    from lamfast.cli import archs, attention, cem, classify, dataset, erf, explore, faig, info, lam, selfcheck

    parser = Parser(prog="lamfast", description="Fast, exact attribution for PyTorch image models.")
    parser.add_argument("--version", action="version", version=f"lamfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (lam, explore, dataset, erf, cem, faig, classify, attention, archs, info, selfcheck):
        module.add_parser(sub)
    for command in sub.choices.values():
        # Errors name the command's own flags; see flag_for.
        command.set_defaults(command_parser=command)
    return parser


def flag_for(args: argparse.Namespace, param: str | None, argv: list[str] = ()) -> str | None:
    """The command's flag for a library argument (the flag whose dest is ``param``), spelled as the user
    typed it in ``argv`` (``--output_dir``), else its long form."""
    if param is None:
        return None
    command = getattr(args, "command_parser", None)
    for action in getattr(command, "_actions", []):
        if action.dest == param and action.option_strings:
            typed = [o for o in action.option_strings if any(a == o or a.startswith(o + "=") for a in argv)]
            return (typed or [o for o in action.option_strings if o.startswith("--")] or action.option_strings)[0]
    return None


def _show_notes(message, category, filename, lineno, file=None, line=None) -> None:
    from lamfast.errors import LamfastNote

    if issubclass(category, LamfastNote):
        note(str(message))
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def routed(argv: list[str]) -> list[str]:
    """``argv`` with its command replaced by the parser that its flags belong to (see the module docstring)."""
    from lamfast.cli import attention, lam

    routes = {"lam": lam.route, "attention": attention.route}
    if argv and argv[0] in routes:
        target = routes[argv[0]](argv[1:])
        if target is not None:
            return [target, *argv[1:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    from lamfast.errors import LamfastError, first_line

    parser = build_parser()
    argv = routed(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"lamfast: error: {first_line(ValueError(usage_message(str(exc), argv)))}", file=sys.stderr)
        return 2
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
        message = exc.spelled(flag_for(args, exc.param, argv)) if isinstance(exc, LamfastError) else str(exc)
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
