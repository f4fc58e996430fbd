"""Command line: ``python -m aimcsim <command>``; ``--help`` lists the commands."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aimcsim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from aimcsim.data.cli import add_download_parser
    from aimcsim.experiments.cli import add_experiment_parsers, add_sweep_parser
    from aimcsim.system.cli import add_system_parser
    from aimcsim.training.cli import add_train_parser
    add_train_parser(sub)
    add_experiment_parsers(sub)
    add_sweep_parser(sub)
    add_system_parser(sub)
    add_download_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
