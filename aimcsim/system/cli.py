"""``python -m aimcsim system``: map a network onto the chip and print / write the mapping,
memory plan, pipeline and energy (figures F3 and F4).

Register it with :func:`add_system_parser` on the top-level subparsers.
"""
from __future__ import annotations

import argparse


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("--input-shape takes sizes like 3,32,32") from None
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError("--input-shape sizes must be >= 1")
    return shape


def _chips(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--chips takes an integer >= 1 or 'auto'") from None
    if value < 1:
        raise argparse.ArgumentTypeError("--chips takes an integer >= 1 or 'auto'")
    return value




def add_system_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``system`` subcommand."""
    from aimcsim.system.hardware import INPUT_MODES
    from aimcsim.system.memory import STRATEGIES
    from aimcsim.system.networks import system_model_names
    from aimcsim.system.pipeline import INJECTION, OVERLAP
    p = sub.add_parser("system", help="tile mapping, memory plan, layer pipeline, energy "
                                      "(figures F3, F4)")
    p.add_argument("--model", choices=system_model_names(), required=True)
    p.add_argument("--out", default=None, help="folder for CSV/JSON tables and PNG plots")
    p.add_argument("--batch", type=int, default=1, help="samples per pipeline batch")
    p.add_argument("--batches", type=int, default=8, help="batches to schedule")
    p.add_argument("--chips", type=_chips, default=1, help="chips available, or 'auto'")
    p.add_argument("--balance", action="store_true",
                   help="replicate bottleneck layers onto spare tiles")
    p.add_argument("--analog", action="store_true",
                   help="convert the model with aimcsim.convert_to_analog first")
    p.add_argument("--input-shape", type=_shape, default=None,
                   help="per-sample input shape (default 3,32,32; f3net 16,16,16)")
    p.add_argument("--input-mode", choices=INPUT_MODES, default="pwm")
    p.add_argument("--tile", type=int, default=256, help="tile rows = columns")
    p.add_argument("--tiles-per-chip", type=int, default=64)
    p.add_argument("--read-phases", type=int, default=1,
                   help="integrations per MVM (the chip's high-precision mode: 4)")
    p.add_argument("--columns-per-adc", type=int, default=1,
                   help="columns sharing one ADC (conversions then run one after another)")
    p.add_argument("--bus-gbs", type=float, default=32.0,
                   help="link bandwidth into and out of each layer, GB/s")
    p.add_argument("--overlap", choices=OVERLAP, default="stages")
    p.add_argument("--injection", choices=INJECTION, default="interval")
    p.add_argument("--memory", choices=STRATEGIES, default="first_fit",
                   help="activation buffer allocation")
    p.add_argument("--alignment", type=int, default=64, help="buffer alignment in bytes")
    p.add_argument("--step-us", type=float, default=None,
                   help="heatmap time step in microseconds (default: the pipeline interval)")
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=run_system)
    return p


def run_system(args: argparse.Namespace) -> None:
    from aimcsim.system.hardware import HardwareConfig
    from aimcsim.system.mapping import MappingError
    from aimcsim.system.networks import F3_INPUT_SHAPE, build_system_model
    from aimcsim.system.report import SystemConfig, analyse, text_report, write_outputs
    try:
        hardware = HardwareConfig(tile_rows=args.tile, tile_cols=args.tile,
                                  tiles_per_chip=args.tiles_per_chip,
                                  input_mode=args.input_mode, read_phases=args.read_phases,
                                  columns_per_adc=args.columns_per_adc,
                                  bus_bytes_per_s=args.bus_gbs * 1e9)
    except ValueError as err:
        raise SystemExit(f"aimcsim system: {err}") from None
    model = build_system_model(args.model)
    if args.analog:
        from aimcsim.nn import convert_to_analog
        model = convert_to_analog(model)
    shape = args.input_shape or (F3_INPUT_SHAPE if args.model == "f3net" else (3, 32, 32))
    config = SystemConfig(batch=args.batch, batches=args.batches, chips=args.chips,
                          balance=args.balance, overlap=args.overlap, injection=args.injection,
                          memory_strategy=args.memory, alignment=args.alignment,
                          input_shape=shape)
    try:
        analysis = analyse(model, hardware, config, name=args.model)
    except MappingError as err:
        raise SystemExit(f"aimcsim system: {err}") from None
    print(text_report(analysis))
    if args.out:
        step = args.step_us * 1e-6 if args.step_us else None
        written = write_outputs(analysis, args.out, plots=not args.no_plots, step_s=step)
        print(f"\nwrote {len(written)} files to {args.out}")
