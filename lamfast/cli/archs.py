"""``lamfast archs``: the architectures a checkpoint can be loaded into."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from lamfast.models import get_architecture, list_architectures

    print("registered (detected from a checkpoint's keys, or named as --model NAME:CHECKPOINT):")
    for name in list_architectures():
        print(f"  {name:<12} {get_architecture(name).description}")
    print("your own class: --model path/to/file.py:ClassName:CHECKPOINT or package.module:ClassName:CHECKPOINT, "
          "with --model-kwargs '{...}' (imports and runs that code)")
    from lamfast.optional import MissingDependency, import_optional

    try:
        spandrel = import_optional("spandrel", "detecting HAT, SwinIR, DAT, RCAN, RRDBNet, ...")
    except MissingDependency as exc:
        print(f"spandrel: {exc}")
        return 0
    names = sorted({support.architecture.name for support in spandrel.MAIN_REGISTRY.architectures()})
    print(f"spandrel detects ({len(names)}): {', '.join(names)}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("archs", help="list the architectures checkpoints load into (registered and spandrel's)")
    p.set_defaults(func=run)
