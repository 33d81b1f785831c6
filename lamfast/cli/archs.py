"""``lamfast archs``: the architectures a checkpoint can be loaded into."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from lamfast.models import get_architecture, list_architectures

    print("registered (detected from a checkpoint's keys, or named with --arch NAME):")
    for name in list_architectures():
        print(f"  {name:<12} {get_architecture(name).description}")
    print("your own class: --arch path/to/file.py:ClassName or --arch package.module:ClassName, "
          "with --arch-kwargs '{...}' (imports and runs that code)")
    try:
        from spandrel import MAIN_REGISTRY
    except Exception as exc:  # noqa: BLE001 - spandrel missing, or its torchvision import failing
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"spandrel: cannot be imported here ({first}); it adds HAT, SwinIR, DAT, RCAN, RRDBNet, ... "
              "(pip install \"lamfast[models]\")")
        return 0
    names = sorted({support.architecture.name for support in MAIN_REGISTRY.architectures()})
    print(f"spandrel detects ({len(names)}): {', '.join(names)}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("archs", help="list the architectures checkpoints load into (registered and spandrel's)")
    p.set_defaults(func=run)
