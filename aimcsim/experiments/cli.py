"""``python -m aimcsim drift``, ``python -m aimcsim compare`` and ``python -m aimcsim sweep``."""
from __future__ import annotations

import argparse
from pathlib import Path

from aimcsim.threads import set_compute_threads


def _times(text: str) -> tuple[float, ...]:
    from aimcsim.experiments.drift import TIME_PRESETS
    if text in TIME_PRESETS:
        return TIME_PRESETS[text]
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--times takes a preset {sorted(TIME_PRESETS)} or comma-separated seconds") from None


def _device(text: str):
    """A device model by name (``make_device``): pcm, hermes, hermes-1, rram, ..."""
    from aimcsim.devices import make_device
    try:
        return make_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def analog_config_from_args(device, config_file: str | None, gdc_granularity: str | None,
                            gdc: tuple[bool, ...] = (True, False)):
    """The analog configuration of a drift study: the defaults, or ``config_file`` (JSON of
    ``AnalogConfig.to_dict()``), with ``device`` (a device model) and ``gdc_granularity``
    applied on top. The study sets GDC on or off per run from ``gdc`` (``--gdc``), so a file
    whose ``drift_compensation.enabled`` is false while ``gdc`` asks for GDC on is refused, as
    is a device given both ways: no setting is silently dropped."""
    import json

    from aimcsim.tiles.config import AnalogConfig
    if config_file is None:
        config = AnalogConfig()
    else:
        try:
            data = json.loads(Path(config_file).read_text())
        except (OSError, ValueError) as err:
            raise SystemExit(f"--analog-config {config_file}: {err}") from None
        try:
            config = AnalogConfig.from_dict(data)
        except (TypeError, ValueError) as err:
            raise SystemExit(f"--analog-config {config_file}: {err}") from None
        if device is not None and "device" in data:
            raise SystemExit("--device and an --analog-config with a device: give one")
        if not config.drift_compensation.enabled and True in gdc:
            raise SystemExit(f"--analog-config {config_file} turns drift compensation off, "
                             f"but --gdc asks for it on: --gdc decides (give --gdc off)")
    if device is not None:
        config = config.replace(device=device)
    if gdc_granularity is not None:
        config = config.replace(**{"drift_compensation.granularity": gdc_granularity})
    return config


def quick_times(device) -> tuple[float, ...]:
    """The four times of ``--quick`` (1e-5 s, 1 s, 1 h, 1e5 s), each moved into the device's
    characterised time range; equal ones merged."""
    lo, hi = device.time_range
    return tuple(sorted({min(max(t, lo), hi) for t in QUICK_TIMES}))


#: The times of a ``--quick`` smoke run, seconds.
QUICK_TIMES = (1e-5, 1.0, 3600.0, 1e5)


def _gdc(text: str) -> tuple[bool, ...]:
    values = {"on": True, "off": False}
    try:
        return tuple(values[v] for v in text.split(","))
    except KeyError:
        raise argparse.ArgumentTypeError("--gdc takes on, off or on,off") from None


def _series(text: str) -> tuple[str, ...]:
    from aimcsim.experiments.drift import SERIES
    values = tuple(v for v in text.split(",") if v)
    if not values or set(values) - set(SERIES):
        raise argparse.ArgumentTypeError(f"--series takes a comma-separated subset of {SERIES}")
    return values


def add_experiment_parsers(sub: argparse._SubParsersAction) -> None:
    from aimcsim.data.loader import CALIBRATION_IMAGES
    from aimcsim.models import MODEL_NAMES
    p = sub.add_parser("drift", help="accuracy over time after programming (figure F1)")
    p.add_argument("--model", choices=MODEL_NAMES, required=True)
    p.add_argument("--fp32", required=True, help="FP32 weights (model.pt or checkpoint.pt)")
    p.add_argument("--hwa", default=None, help="hardware-aware trained weights")
    p.add_argument("--times", type=_times, default="f1",
                   help="preset f1 (16 log-spaced 1e-5..1e5 s), f2 (1 s, 1 h, 1 day, "
                        "1 month), f1+f2 (both), or comma-separated seconds")
    p.add_argument("--device", type=_device, default=None,
                   help="device model: pcm (Nandakumar 2019, default), hermes (Hermes chip PCM, "
                        "2 devices per sign), hermes-1 (1 device per sign), rram (Wan 2022, "
                        "valid from 1 s to 2 days), gaussian, ideal")
    p.add_argument("--analog-config", default=None, metavar="JSON",
                   help="the whole analog configuration from a JSON file "
                        "(AnalogConfig.to_dict(); keys left out keep their defaults; GDC on "
                        "or off is set by --gdc)")
    p.add_argument("--gdc-granularity", choices=("tile", "column"), default=None,
                   help="drift compensation: one factor per tile (default) or per output "
                        "column")
    p.add_argument("--reps", type=int, default=5, help="programmings per series")
    p.add_argument("--gdc", type=_gdc, default="on,off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="folder holding cifar-10-batches-py")
    p.add_argument("--limit", type=int, default=None, help="first N test images only")
    p.add_argument("--batch-size", type=int, default=250,
                   help="test images per batch (250 was fastest on 2 CPU cores)")
    p.add_argument("--series", type=_series, default="fp32,direct,hwa",
                   help="which series to measure (two processes may split one study)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch and Numba threads (0 keeps the defaults)")
    p.add_argument("--adabs", type=int, default=0, metavar="N",
                   help="adaptive batch-norm statistics from the first N training images "
                        "after every read (0: off)")
    p.add_argument("--adabs-images", choices=CALIBRATION_IMAGES, default="augmented",
                   help="AdaBS calibration images with the training augmentation (crop + flip; "
                        "default) or as stored (the AdaBS series measured before 2026-11-30)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="measure the points on a local Dask cluster of N worker processes, "
                        "one thread each (0: in this process; needs aimcsim[dist])")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="measure the points on the workers of a running Dask scheduler, "
                        "e.g. tcp://host:8786 (needs aimcsim[dist])")
    p.add_argument("--quick", action="store_true",
                   help="500 test images, 2 programmings, 4 times (within the device's time "
                        "range): a smoke run")
    p.add_argument("--out", required=True, help="folder for points.jsonl, CSV, JSON, PNG")
    p.set_defaults(func=run_drift)

    c = sub.add_parser("compare", help="networks at 1 s / 1 h / 1 day / 1 month (figure F2), "
                                       "or the trait sweep's table (--traits)")
    c.add_argument("runs", nargs="*", help="output folders of 'drift' runs")
    c.add_argument("--traits", default=None, metavar="POINTS",
                   help="instead of runs: the points folder of 'python -m aimcsim sweep'; "
                        "writes traits.md, traits.json and traits.png, and traits_adabs.* "
                        "from the AdaBS points when there are any (times: those measured)")
    c.add_argument("--replicates", default=None, metavar="POINTS[,POINTS]",
                   help="with --traits: points folders of sweeps with the same recipe and "
                        "another --seed; their networks become rows '<network> (seed S)', "
                        "compared with the same network of the main sweep (the spread "
                        "between training runs)")
    c.add_argument("--series", default="hwa",
                   help="direct or hwa for every run, or one per run (comma-separated, e.g. "
                        "direct,hwa,hwa: the F1 figure's direct mapping beside hardware-aware "
                        "networks)")
    c.add_argument("--gdc", choices=("on", "off"), default="on")
    c.add_argument("--label", choices=("model", "device"), default="model",
                   help="name each study by its network (default) or by its device model "
                        "(one network on several devices)")
    c.add_argument("--labels", default=None,
                   help="comma-separated names of the studies (overrides --label)")
    c.add_argument("--times", type=_times, default=None,
                   help="times of the table: preset (f1, f2: 1 s, 1 h, 1 day, 1 month; the "
                        "default) or comma-separated seconds (e.g. 1,3600,86400,172800 for "
                        "the RRAM range)")
    c.add_argument("--out", required=True,
                   help="folder for compare_<series>_gdc_<on|off>.md and .png")
    c.set_defaults(func=run_compare)


def run_drift(args: argparse.Namespace) -> None:
    from aimcsim.data import load_cifar10
    from aimcsim.experiments.drift import DriftStudyConfig, run_drift_study
    from aimcsim.experiments.plots import plot_accuracy_over_time
    times, reps, limit = args.times, args.reps, args.limit
    if args.threads < 0:
        raise SystemExit(f"--threads must be >= 0, got {args.threads}")
    if args.workers < 0:
        raise SystemExit(f"--workers must be >= 0, got {args.workers}")
    if args.workers and args.scheduler:
        raise SystemExit("give --workers or --scheduler, not both")
    set_compute_threads(args.threads)
    analog = analog_config_from_args(args.device, args.analog_config, args.gdc_granularity,
                                     args.gdc)
    if args.quick:
        times, reps, limit = quick_times(analog.device), min(reps, 2), limit or 500
    config = DriftStudyConfig(model=args.model, fp32_weights=args.fp32, hwa_weights=args.hwa,
                              times=tuple(times), repetitions=reps, gdc=args.gdc,
                              seed=args.seed, batch_size=args.batch_size, limit=limit,
                              series=args.series, adabs=args.adabs,
                              adabs_images=args.adabs_images,
                              analog=analog)
    test = load_cifar10(args.data, train=False)
    train = load_cifar10(args.data, train=True) if args.adabs else None
    results = run_drift_study(config, test, args.out, train=train, workers=args.workers,
                              scheduler=args.scheduler)
    png = Path(args.out) / f"accuracy_over_time_{args.model}.png"
    plot_accuracy_over_time(results, png)
    from aimcsim.experiments.report import study_report
    report = study_report(results, args.gdc)
    (Path(args.out) / "report.md").write_text(report + "\n")
    print(report)
    print(f"wrote {Path(args.out) / 'summary.csv'}, results.json, report.md and {png}")


def run_compare(args: argparse.Namespace) -> None:
    from aimcsim.experiments.compare import (compare_stem, compare_table, compare_title,
                                             plot_compare, series_name, series_per_run)
    from aimcsim.experiments.drift import F2_TIMES
    if args.traits is not None:
        if args.runs:
            raise SystemExit("give drift run folders or --traits, not both")
        from aimcsim.experiments.trait_report import write_trait_reports
        replicates = [r for r in (args.replicates or "").split(",") if r]
        print(write_trait_reports(args.traits, args.out, times=args.times,
                                  replicates=replicates))
        print(f"wrote {Path(args.out)}/traits[_adabs].md, .json and .png")
        return
    if args.replicates is not None:
        raise SystemExit("--replicates goes with --traits")
    if not args.runs:
        raise SystemExit("give the output folders of drift runs (or --traits POINTS)")
    gdc = args.gdc == "on"
    times = tuple(args.times or F2_TIMES)
    labels = args.labels.split(",") if args.labels else None
    names = args.series.split(",")
    try:
        series = series_per_run(names[0] if len(names) == 1 else names, len(args.runs))
    except ValueError as err:
        raise SystemExit(f"--series: {err}") from None
    table, rows = compare_table(args.runs, series, gdc, times=times, label=args.label,
                                labels=labels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    title = compare_title(series_name(series), gdc)
    stem = compare_stem(series_name(series), gdc) + ("_devices" if args.label == "device" else "")
    (out / f"{stem}.md").write_text(f"{title}\n\n{table}\n")
    plot_compare(rows, out / f"{stem}.png", title, times=times)
    print(f"{title}\n\n{table}")


def _names(text: str) -> tuple[str, ...]:
    return tuple(v for v in text.split(",") if v)


def add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    from aimcsim.experiments.trait_sweep import DEFAULT_NETWORKS, TraitSweepConfig
    d = TraitSweepConfig()
    p = sub.add_parser("sweep", help="architecture-trait sweep (issue 22): train, fine-tune "
                                     "hardware-aware and measure each network, resumably; "
                                     "every recipe option defaults to the recipe recorded in "
                                     "--root, else to the value given in its help")
    p.add_argument("--root", required=True,
                   help="weights folder: <root>/<network>/fp32 and hwa (checkpoints), "
                        "sweep.json (the recipe)")
    p.add_argument("--points", default=None,
                   help="measurements folder: <points>/<network>/points.jsonl and the "
                        "tables (default: --root)")
    p.add_argument("--networks", type=_names, default=DEFAULT_NETWORKS,
                   help=f"comma-separated networks (default: {','.join(DEFAULT_NETWORKS)})")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"FP32 epochs, one-cycle ({d.epochs})")
    p.add_argument("--lr", type=float, default=None, help=f"FP32 peak learning rate ({d.lr:g})")
    p.add_argument("--batch-size", type=int, default=None, help=f"({d.batch_size})")
    p.add_argument("--weight-decay", type=float, default=None, help=f"({d.weight_decay:g})")
    p.add_argument("--hwa-epochs", type=int, default=None,
                   help=f"hardware-aware epochs, device model in the loop, cosine "
                        f"({d.hwa_epochs})")
    p.add_argument("--hwa-lr", type=float, default=None, help=f"({d.hwa_lr:g})")
    p.add_argument("--clip-sigma", type=float, default=None, help=f"({d.clip_sigma:g})")
    p.add_argument("--device", default=None,
                   help=f"device model of fine-tuning and measurement ({d.device})")
    p.add_argument("--times", type=_times, default=None,
                   help="read times, comma-separated seconds or a preset (1 s, 1 day, 1 month)")
    p.add_argument("--reps", type=int, default=None,
                   help=f"programmings per time ({d.repetitions})")
    p.add_argument("--adabs", type=int, default=None, metavar="N",
                   help=f"stage 4: the measurement again with AdaBS on the first N training "
                        f"images, augmented ({d.adabs}, or --limit when smaller; 0 skips it)")
    p.add_argument("--gemm-precision", choices=("bfloat16", "float32"), default=None,
                   help=f"AnalogConfig.gemm_precision of the measurements ({d.gemm_precision}; "
                        f"a sweep recorded before the option existed measured with float32)")
    p.add_argument("--seed", type=int, default=None, help=f"({d.seed})")
    p.add_argument("--limit", type=int, default=None,
                   help="first N training and test images only (a smoke run)")
    p.add_argument("--test-limit", type=int, default=None,
                   help="first N test images (overrides --limit for the test set)")
    p.add_argument("--data", default=None, help="folder holding cifar-10-batches-py")
    p.add_argument("--threads", type=int, default=0,
                   help="torch and Numba threads of this process (0 keeps the defaults)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="run the networks on a local Dask cluster of N single-threaded "
                        "processes (needs aimcsim[dist])")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the networks on a running Dask scheduler's workers (shared "
                        "folders at the same paths)")
    p.set_defaults(func=run_sweep_command)


#: ``sweep`` options that set a recipe field: option dest -> TraitSweepConfig field.
SWEEP_RECIPE_OPTIONS = {"epochs": "epochs", "lr": "lr", "batch_size": "batch_size",
                        "weight_decay": "weight_decay", "hwa_epochs": "hwa_epochs",
                        "hwa_lr": "hwa_lr", "clip_sigma": "clip_sigma", "device": "device",
                        "times": "times", "reps": "repetitions", "seed": "seed",
                        "adabs": "adabs", "gemm_precision": "gemm_precision"}


def sweep_recipe(args: argparse.Namespace, recorded: dict | None):
    """The recipe of a ``sweep`` command: the ``recorded`` one (``<root>/sweep.json``) or, for
    a new root, the defaults, with the options given on the command line on top. So a rerun
    without options resumes the recorded sweep, also after more ``--reps`` or other
    ``--times`` were added (a smaller count would hide the extra points from the tables)."""
    from aimcsim.experiments.trait_sweep import TraitSweepConfig
    recipe = dict(recorded) if recorded is not None else TraitSweepConfig().to_dict()
    given = {field: getattr(args, dest) for dest, field in SWEEP_RECIPE_OPTIONS.items()
             if getattr(args, dest) is not None}
    if "times" in given:
        given["times"] = tuple(given["times"])
    if args.limit is not None:
        given["train_limit"] = given["test_limit"] = args.limit
        if recorded is None and "adabs" not in given:
            given["adabs"] = min(TraitSweepConfig.adabs, args.limit)
    if args.test_limit is not None:
        given["test_limit"] = args.test_limit
    return TraitSweepConfig.from_dict({**recipe, **given})


def run_sweep_command(args: argparse.Namespace) -> None:
    from aimcsim.experiments.trait_report import write_trait_reports
    from aimcsim.experiments.trait_sweep import recorded_recipe, run_sweep
    if args.threads < 0:
        raise SystemExit(f"--threads must be >= 0, got {args.threads}")
    config = sweep_recipe(args, recorded_recipe(args.root))
    statuses = run_sweep(config, args.root, args.points, args.networks, data=args.data,
                         threads=args.threads, workers=args.workers, scheduler=args.scheduler)
    for s in statuses:
        if "busy" in s:
            print(f"{s['network']}: skipped, {s['busy']}")
        else:
            print(f"{s['network']}: fp32 {s['fp32']}, hwa {s['hwa']}, drift {s['drift']}, "
                  f"adabs {s['adabs']} ({s['seconds'] / 60:.1f} min)")
    points = args.points or args.root
    try:
        print(write_trait_reports(points))
    except FileNotFoundError as missing:  # no network measured yet (all busy elsewhere)
        print(missing)
        return
    print(f"wrote {Path(points)}/traits[_adabs].md, .json and .png; reproduce them with "
          f"'python -m aimcsim compare --traits {points} --out {points}'")
