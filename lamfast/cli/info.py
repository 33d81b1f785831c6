"""``lamfast info``: torch version, extension status, devices, compiled kernels."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
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


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="torch version, extension status, devices")
    p.set_defaults(func=run)
