"""``python -m aimcsim download``: fetch the official CIFAR-10 archive (md5 checked) into a
root folder, or verify the batches already there.

Register it with :func:`add_download_parser` on the top-level subparsers.
"""
from __future__ import annotations

import argparse


def add_download_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="fetch CIFAR-10 (python batches, md5 checked)")
    p.add_argument("--root", default="data",
                   help="folder to hold cifar-10-batches-py (default: ./data); then pass it as "
                        "--data or set AIMCSIM_CIFAR10")
    p.set_defaults(func=run_download)


def run_download(args: argparse.Namespace) -> None:
    from aimcsim.data.cifar10 import FOLDER, download_cifar10
    root = download_cifar10(args.root)
    print(f"CIFAR-10 verified in {root / FOLDER}; use --data {root} or "
          f"export AIMCSIM_CIFAR10={root.resolve()}")
