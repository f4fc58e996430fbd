"""The architecture-trait sweep (issue 22): two networks through the three stages on a tiny
budget, resumed after a kill between stages and within the measurement; the tables equal the
points' statistics; recipe, lock and configuration checks."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from aimcsim.data import CifarSplit
from aimcsim.experiments import trait_sweep
from aimcsim.experiments.trait_report import (loss_difference, read_network, trait_data,
                                              trait_markdown, write_trait_report)
from aimcsim.experiments.trait_sweep import (DEFAULT_NETWORKS, NetworkBusyError,
                                             TraitSweepConfig, network_folders, network_lock,
                                             record_recipe, recorded_recipe, run_network,
                                             run_sweep)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NETWORKS = ("t500", "t500_width")
TINY = TraitSweepConfig(epochs=1, hwa_epochs=1, batch_size=32, times=(1.0, 86400.0),
                        repetitions=2, train_limit=64, test_limit=40, adabs=32)


def _random_splits() -> tuple[CifarSplit, CifarSplit]:
    """64 training and 50 test images, random (the pipeline, not the accuracy, is tested)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (114, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, 114)
    return CifarSplit(images[:64], labels[:64]), CifarSplit(images[64:], labels[64:])


class Killed(Exception):
    """Stands for a kill between two stages."""


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The tiny sweep, killed once after stage 1 of the first network and once with two
    points of the second network's measurement lost, then finished."""
    root = tmp_path_factory.mktemp("sweep")
    weights, points = root / "weights", root / "points"
    train, test = _random_splits()
    first, second = NETWORKS
    record_recipe(TINY, weights, points)

    killed = pytest.MonkeyPatch()

    def kill(*args, **kwargs):
        raise Killed("killed after stage 1")
    killed.setattr(trait_sweep, "_finetune", kill)
    with pytest.raises(Killed):
        run_network(first, TINY, weights, points, train=train, test=test, progress=False)
    killed.undo()
    folders = network_folders(first, weights, points)
    assert (folders.fp32 / "model.pt").is_file() and not folders.hwa.exists()
    fp32_sha = _sha(folders.fp32 / "model.pt")

    statuses = run_sweep(TINY, weights, points, NETWORKS, train=train, test=test,
                         progress=False)
    return {"root": root, "weights": weights, "points": points, "train": train, "test": test,
            "statuses": statuses, "fp32_sha": fp32_sha}


def test_a_rerun_skips_the_finished_stage_and_resumes_the_rest(sweep):
    first, second = sweep["statuses"]
    assert (first["network"], first["fp32"], first["hwa"], first["drift"], first["adabs"]) == \
        ("t500", "skipped", "done", "done", "done")
    assert (second["network"], second["fp32"], second["hwa"], second["drift"],
            second["adabs"]) == ("t500_width", "done", "done", "done", "done")
    folders = network_folders("t500", sweep["weights"], sweep["points"])
    assert _sha(folders.fp32 / "model.pt") == sweep["fp32_sha"]  # not trained again
    lines = (folders.study / "points.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 2 * 2  # FP32 point + 2 programmings x 2 times
    adabs = folders.study / "adabs"
    assert len((adabs / "points.jsonl").read_text().splitlines()) == 1 + 2 * 2
    assert json.loads((adabs / "config.json").read_text())["adabs"] == 32
    training = json.loads((folders.study / "training.json").read_text())
    assert training["parameters"] == 424_506
    assert training["fp32"]["finished"] and len(training["hwa"]["epochs"]) == 1
    # a finished stage keeps its result and history, not its training state
    for stage in (folders.fp32, folders.hwa):
        assert (stage / "model.pt").is_file() and (stage / "history.json").is_file()
        assert not (stage / "checkpoint.pt").exists()


def test_a_finished_sweep_does_nothing_and_lost_points_are_measured_again(sweep):
    args = dict(train=sweep["train"], test=sweep["test"], progress=False)
    again = run_sweep(TINY, sweep["weights"], sweep["points"], NETWORKS, **args)
    assert all(s[k] == "skipped" for s in again for k in ("fp32", "hwa", "drift", "adabs"))
    study = network_folders("t500_width", sweep["weights"], sweep["points"]).study
    lines = (study / "points.jsonl").read_text().splitlines()
    (study / "points.jsonl").write_text("\n".join(lines[:-2]) + "\n")  # a kill lost two
    status = run_network("t500_width", TINY, sweep["weights"], sweep["points"], **args)
    assert (status["fp32"], status["hwa"], status["drift"]) == ("skipped", "skipped", "done")
    assert sorted((study / "points.jsonl").read_text().splitlines()) == sorted(lines)


def test_the_table_equals_the_points_statistics(sweep, tmp_path):
    """traits.json and traits.md against the means, standard errors and paired differences
    computed here from the points files."""
    write_trait_report(sweep["points"], tmp_path)
    data = json.loads((tmp_path / "traits.json").read_text())
    md = (tmp_path / "traits.md").read_text()
    assert [r["network"] for r in data["networks"]] == list(NETWORKS)
    assert data["times"] == [1.0, 86400.0] and data["test_images"] == 40
    assert data["recipe"] == TINY.to_dict()

    def points_of(name):
        study = network_folders(name, sweep["weights"], sweep["points"]).study
        return [json.loads(x) for x in (study / "points.jsonl").read_text().splitlines()]
    fp32, runs = {}, {}
    for name in NETWORKS:
        ps = points_of(name)
        fp32[name] = next(p["accuracy"] for p in ps if p["series"] == "fp32")
        for t in (1.0, 86400.0):
            runs[name, t] = np.array([p["accuracy"] for p in sorted(ps, key=lambda p: p["rep"])
                                      if p["series"] == "hwa" and p["t"] == t])
    for row in data["networks"]:
        name = row["network"]
        study = network_folders(name, sweep["weights"], sweep["points"]).study
        digital = json.loads((study / "training.json").read_text())["hwa"]["test_acc"]
        assert row["fp32"] == fp32[name] and row["hwa_digital"] == digital
        for cell, t in zip(row["cells"], (1.0, 86400.0)):
            accs = runs[name, t]
            se = accs.std(ddof=1) / math.sqrt(accs.size)
            assert cell["n"] == 2 and cell["mean"] == pytest.approx(accs.mean(), abs=1e-12)
            assert cell["se"] == pytest.approx(se, abs=1e-12)
            assert cell["loss"] == pytest.approx(fp32[name] - accs.mean(), abs=1e-12)
            assert cell["loss_digital"] == pytest.approx(digital - accs.mean(), abs=1e-12)
            assert f"{100 * accs.mean():.2f} ± {100 * se:.2f} (2)" in md
            assert f"{100 * (fp32[name] - accs.mean()):.2f} ± {100 * se:.2f}" in md
    width = data["networks"][1]
    for diff, t in zip(width["vs_reference"], (1.0, 86400.0)):
        d = (fp32["t500_width"] - runs["t500_width", t]) - (fp32["t500"] - runs["t500", t])
        assert diff["paired"] and diff["n"] == 2
        assert diff["difference"] == pytest.approx(d.mean(), abs=1e-12)
        assert diff["se"] == pytest.approx(d.std(ddof=1) / math.sqrt(2), abs=1e-12)
        assert f"{100 * d.mean():+.2f} ± {100 * d.std(ddof=1) / math.sqrt(2):.2f}" in md
    assert data["networks"][0]["vs_reference"] == [None, None]
    assert (tmp_path / "traits.png").stat().st_size > 10_000
    for row in data["networks"]:  # the training wall times: the epochs' seconds summed
        study = network_folders(row["network"], sweep["weights"], sweep["points"]).study
        runs = json.loads((study / "training.json").read_text())
        hours = {stage: sum(e["seconds"] for e in runs[stage]["epochs"]) / 3600
                 for stage in ("fp32", "hwa")}
        assert row["training_hours"] == pytest.approx(hours, rel=1e-12)
        assert (f"| {row['network']} | {hours['fp32']:.2f} | {hours['hwa']:.2f} | "
                f"{hours['fp32'] + hours['hwa']:.2f} |") in md


def test_the_adabs_table_equals_stage_4s_points(sweep, tmp_path):
    """traits_adabs.*: the same statistics from the points of stage 4 (AdaBS on), the loss
    from the same FP32 point, and AdaBS named in the text."""
    write_trait_report(sweep["points"], tmp_path, adabs=True)
    data = json.loads((tmp_path / "traits_adabs.json").read_text())
    md = (tmp_path / "traits_adabs.md").read_text()
    assert data["adabs"] == 32 and "AdaBS on" in md and "first 32 training images" in md
    plain = trait_data(sweep["points"])
    assert plain["adabs"] == 0 and "AdaBS" not in trait_markdown(plain)
    changed = False
    for row, plain_row in zip(data["networks"], plain["networks"]):
        study = network_folders(row["network"], sweep["weights"], sweep["points"]).study
        points = [json.loads(x) for x in
                  (study / "adabs" / "points.jsonl").read_text().splitlines()]
        assert row["fp32"] == plain_row["fp32"]  # the FP32 weights, evaluated digitally
        assert row["hwa_digital"] == plain_row["hwa_digital"] is not None  # training.json
        for cell, plain_cell, t in zip(row["cells"], plain_row["cells"], (1.0, 86400.0)):
            accs = np.array([p["accuracy"] for p in sorted(points, key=lambda p: p["rep"])
                             if p["series"] == "hwa" and p["t"] == t])
            assert cell["mean"] == pytest.approx(accs.mean(), abs=1e-12)
            assert cell["loss"] == pytest.approx(row["fp32"] - accs.mean(), abs=1e-12)
            changed |= cell["runs"] != plain_cell["runs"]
    assert changed  # AdaBS moved the analog accuracies
    assert (tmp_path / "traits_adabs.png").stat().st_size > 10_000


def test_compare_reproduces_the_table_from_the_points(sweep, tmp_path, capsys):
    from aimcsim.__main__ import main
    write_trait_report(sweep["points"], tmp_path / "direct")
    write_trait_report(sweep["points"], tmp_path / "direct", adabs=True)
    main(["compare", "--traits", str(sweep["points"]), "--out", str(tmp_path / "cli")])
    for stem in ("traits", "traits_adabs"):
        assert (tmp_path / "cli" / f"{stem}.md").read_text() == \
            (tmp_path / "direct" / f"{stem}.md").read_text()
    assert "t500_width" in capsys.readouterr().out
    main(["compare", "--traits", str(sweep["points"]), "--times", "86400",
          "--out", str(tmp_path / "one")])
    assert json.loads((tmp_path / "one" / "traits.json").read_text())["times"] == [86400.0]
    with pytest.raises(SystemExit):
        main(["compare", "--out", str(tmp_path / "none")])
    with pytest.raises(SystemExit):
        main(["compare", str(tmp_path), "--traits", str(sweep["points"]), "--out", "x"])


def test_another_recipe_is_refused_and_more_programmings_are_not(sweep):
    with pytest.raises(ValueError, match=r"another recipe: epochs=1 \(now 3\)"):
        record_recipe(TraitSweepConfig(**{**TINY.to_dict(), "epochs": 3}), sweep["weights"])
    more = TraitSweepConfig(**{**TINY.to_dict(), "repetitions": 3, "times": (1.0,)})
    record_recipe(more, sweep["weights"])  # the drift study adds the missing points
    record_recipe(TINY, sweep["weights"])


def test_a_recipe_recorded_before_stage_4_is_extended(tmp_path):
    """A sweep started before the AdaBS stage existed (no "adabs" in sweep.json) goes on:
    stage 4 only adds a measurement."""
    old = TINY.to_dict()
    del old["adabs"]
    (tmp_path / "sweep.json").write_text(json.dumps(old))
    record_recipe(TINY, tmp_path)
    assert json.loads((tmp_path / "sweep.json").read_text())["adabs"] == 32
    assert TraitSweepConfig.from_dict({**old, "train_limit": None}).adabs == 2000  # default


def test_a_recipe_recorded_before_gemm_precision_measures_in_float32(tmp_path):
    """A sweep recorded before ``gemm_precision`` existed was measured with float32 GEMMs:
    it resumes with float32 (the CLI's default for that folder) and refuses bfloat16."""
    old = {k: v for k, v in TINY.to_dict().items() if k != "gemm_precision"}
    (tmp_path / "sweep.json").write_text(json.dumps(old))
    assert recorded_recipe(tmp_path)["gemm_precision"] == "float32"
    assert recorded_recipe(tmp_path / "none") is None
    with pytest.raises(ValueError, match="gemm_precision='float32'"):
        record_recipe(TraitSweepConfig(**{**TINY.to_dict(), "gemm_precision": "bfloat16"}),
                      tmp_path)
    pinned = TraitSweepConfig(**{**TINY.to_dict(), "gemm_precision": "float32"})
    record_recipe(pinned, tmp_path)
    assert json.loads((tmp_path / "sweep.json").read_text())["gemm_precision"] == "float32"
    assert pinned.analog_config().gemm_precision == "float32"


def test_a_network_held_by_another_process_is_skipped(tmp_path):
    folders = network_folders("t500", tmp_path)
    with network_lock(folders.weights):
        status = run_network("t500", TINY, tmp_path, progress=False)
        assert set(status) == {"network", "busy"} and "held by another process" in \
            status["busy"]
        with pytest.raises(NetworkBusyError, match="pid"):
            with network_lock(folders.weights):
                pass
    assert not folders.fp32.exists()
    with network_lock(folders.weights):  # released
        pass


def test_config_validates_and_round_trips_through_json():
    again = TraitSweepConfig.from_dict(json.loads(json.dumps(TINY.to_dict())))
    assert again == TINY and isinstance(again.times, tuple)
    assert TraitSweepConfig().times == (1.0, 86400.0, 2592000.0)
    assert TraitSweepConfig().fp32_training().schedule == "onecycle"
    hwa = TraitSweepConfig().hardware_aware()
    assert (hwa.noise_model, hwa.clip_sigma) == ("device", 2.5)
    for bad, match in [(dict(epochs=0), "epochs"), (dict(hwa_lr=-1.0), "lr"),
                       (dict(repetitions=0), "repetitions"), (dict(times=()), "times"),
                       (dict(times=(-1.0,)), "times"), (dict(device="flash"), "flash"),
                       (dict(device="rram"), "times"),  # RRAM: valid up to 2 days only
                       (dict(test_limit=0), "test_limit"), (dict(clip_sigma=0.0), "clip"),
                       (dict(adabs=-1), "adabs"), (dict(train_limit=100, adabs=200), "adabs")]:
        with pytest.raises(ValueError, match=match):
            TraitSweepConfig(**bad)
    with pytest.raises(ValueError, match="unknown TraitSweepConfig keys"):
        TraitSweepConfig.from_dict({"epoch": 3})


def test_network_lists_are_checked(tmp_path):
    for bad, match in [((), "no networks"), (("t500", "resnet56"), "resnet56"),
                       (("t500", "t500"), "twice")]:
        with pytest.raises(ValueError, match=match):
            run_sweep(TINY, tmp_path, networks=bad)
    with pytest.raises(ValueError, match="workers or scheduler"):
        run_sweep(TINY, tmp_path, networks=("t500",), workers=2, scheduler="tcp://x:1")
    assert DEFAULT_NETWORKS[0] == "t500" and DEFAULT_NETWORKS[-1] == "resnet32"
    from aimcsim.models import TRAIT_SPECS
    assert set(DEFAULT_NETWORKS) == {"t500", "resnet32"} | set(TRAIT_SPECS)


def _study(folder, name, fp32, runs, seed=0, limit=100, digital=None, repetitions=3):
    """A hand-made points folder: ``runs`` maps time to the accuracies of programmings 0..;
    ``digital``: the hardware-aware network's digital accuracy (training.json)."""
    folder.mkdir(parents=True)
    if digital is not None:
        (folder / "training.json").write_text(json.dumps(
            {"hwa": {"finished": True, "test_acc": digital}}))
    (folder / "config.json").write_text(json.dumps(
        {"model": name, "seed": seed, "limit": limit, "repetitions": repetitions,
         "times": sorted(runs)}))
    lines = [{"series": "fp32", "gdc": False, "rep": 0, "t": 0.0, "accuracy": fp32}]
    lines += [{"series": "hwa", "gdc": True, "rep": r, "t": t, "accuracy": a}
              for t, accs in runs.items() for r, a in enumerate(accs)]
    lines.append({"series": "hwa", "gdc": False, "rep": 0, "t": 1.0, "accuracy": 0.1})
    (folder / "points.jsonl").write_text("\n".join(json.dumps(p) for p in lines) + "\n")


def test_differences_are_paired_only_with_the_same_seeds(tmp_path):
    """Exact numbers on hand-made points: paired differences per programming; another seed
    makes them unpaired (standard errors added in quadrature); GDC-off points are ignored."""
    _study(tmp_path / "t500", "t500", 0.90, {1.0: [0.88, 0.86, 0.87]}, digital=0.89)
    _study(tmp_path / "t500_kernel3", "t500_kernel3", 0.91, {1.0: [0.90, 0.86, 0.89]},
           digital=0.93)
    _study(tmp_path / "resnet32", "resnet32", 0.92, {1.0: [0.91, 0.90, 0.89]}, seed=7)
    data = trait_data(tmp_path)
    rows = {r["network"]: r for r in data["networks"]}
    assert list(rows) == ["t500", "t500_kernel3", "resnet32"]  # the sweep's order
    t500 = rows["t500"]["cells"][0]
    assert t500["mean"] == pytest.approx(0.87) and t500["loss"] == pytest.approx(0.03)
    assert t500["se"] == pytest.approx(0.01 / math.sqrt(3))
    paired = rows["t500_kernel3"]["vs_reference"][0]
    d = np.array([0.01 - 0.02, 0.05 - 0.04, 0.02 - 0.03])  # (0.91 - a) - (0.90 - b)
    assert paired["paired"] and paired["difference"] == pytest.approx(d.mean())
    assert paired["se"] == pytest.approx(d.std(ddof=1) / math.sqrt(3))
    digital = rows["t500_kernel3"]["vs_reference_digital"][0]  # from 0.93 and 0.89
    assert digital["paired"] and digital["difference"] == pytest.approx(d.mean() + 0.03)
    assert digital["se"] == pytest.approx(paired["se"])
    assert rows["t500_kernel3"]["cells"][0]["loss_digital"] == \
        pytest.approx(0.93 - np.mean([0.90, 0.86, 0.89]))
    assert rows["resnet32"]["hwa_digital"] is None  # no training.json
    assert rows["resnet32"]["vs_reference_digital"] == [None]
    with pytest.raises(ValueError, match="baseline"):
        loss_difference(read_network(tmp_path / "t500"), read_network(tmp_path / "t500"),
                        1.0, "analog")
    unpaired = rows["resnet32"]["vs_reference"][0]
    assert not unpaired["paired"]
    assert unpaired["difference"] == pytest.approx((0.92 - 0.90) - 0.03)
    assert unpaired["se"] == pytest.approx(math.hypot(0.01, 0.01) / math.sqrt(3))
    assert "(u)" in write_trait_report(tmp_path)
    assert rows["t500_kernel3"]["parameters"] == 422_202
    assert read_network(tmp_path / "t500")["hwa"] == {1.0: {0: 0.88, 1: 0.86, 2: 0.87}}
    assert loss_difference(read_network(tmp_path / "t500"),
                           read_network(tmp_path / "t500"), 86400.0) is None  # not measured


def test_networks_on_other_test_images_are_not_compared(tmp_path):
    _study(tmp_path / "t500", "t500", 0.9, {1.0: [0.8, 0.8, 0.8]}, limit=100)
    _study(tmp_path / "t500_width", "t500_width", 0.9, {1.0: [0.8, 0.8, 0.8]}, limit=None)
    with pytest.raises(ValueError, match="different test images"):
        trait_data(tmp_path)
    with pytest.raises(FileNotFoundError, match="sweep"):
        trait_data(tmp_path / "t500_width")


def test_a_replicate_sweep_adds_rows_compared_with_its_own_network(tmp_path, capsys):
    """A sweep with another seed adds '<network> (seed S)' rows: compared with the reference
    and with the same network of the main sweep, unpaired (exact numbers); a replicate with
    the main seed or another recipe is refused."""
    main, rep = tmp_path / "main", tmp_path / "seed1"
    recipe = TraitSweepConfig(epochs=1, hwa_epochs=1).to_dict()
    for folder, seed in ((main, 0), (rep, 1)):
        folder.mkdir()
        (folder / "sweep.json").write_text(json.dumps({**recipe, "seed": seed}))
    _study(main / "t500", "t500", 0.90, {1.0: [0.88, 0.86, 0.87]}, digital=0.89)
    _study(main / "t500_kernel3", "t500_kernel3", 0.91, {1.0: [0.90, 0.86, 0.89]})
    _study(rep / "t500", "t500", 0.92, {1.0: [0.89, 0.87, 0.88]}, seed=1, digital=0.90)
    data = trait_data(main, replicates=[rep])
    rows = {r["network"]: r for r in data["networks"]}
    assert list(rows) == ["t500", "t500_kernel3", "t500 (seed 1)"]
    replica = rows["t500 (seed 1)"]
    assert replica["replicate_of"] == "t500" and replica["parameters"] == 424_506
    assert data["replicate_seeds"] == [1]
    spread = replica["vs_base"][0]  # (0.92 - 0.88) - (0.90 - 0.87), standard errors added
    assert not spread["paired"] and spread["difference"] == pytest.approx(0.04 - 0.03)
    assert spread["se"] == pytest.approx(math.hypot(0.01, 0.01) / math.sqrt(3))
    assert replica["vs_base_digital"][0]["difference"] == pytest.approx(0.02 - 0.02)
    assert replica["vs_reference"][0]["difference"] == pytest.approx(spread["difference"])
    assert rows["t500_kernel3"]["replicate_of"] is None
    text = write_trait_report(main, replicates=rep)
    assert "t500 (seed 1) minus t500 (the training-run difference, unpaired), loss from " \
           "FP32: +1.00 ± 0.82 at 1 s points." in text
    assert "the same recipe with seed 1" in text
    from aimcsim.__main__ import main as cli
    cli(["compare", "--traits", str(main), "--replicates", str(rep), "--out",
         str(tmp_path / "out")])
    assert (tmp_path / "out" / "traits.md").read_text() == text + "\n"
    with pytest.raises(SystemExit, match="with --traits"):
        cli(["compare", str(main / "t500"), "--replicates", str(rep), "--out", str(tmp_path)])
    (rep / "sweep.json").write_text(json.dumps({**recipe, "seed": 1, "epochs": 3}))
    with pytest.raises(ValueError, match=r"another recipe than .*epochs=3 \(main sweep 1\)"):
        trait_data(main, replicates=[rep])
    (rep / "sweep.json").write_text(json.dumps({**recipe, "seed": 1, "repetitions": 8}))
    trait_data(main, replicates=[rep])  # more programmings: still a replicate
    (rep / "sweep.json").write_text(json.dumps({**recipe, "seed": 0}))
    (rep / "t500" / "config.json").write_text(json.dumps(
        {"model": "t500", "seed": 0, "limit": 100, "repetitions": 3, "times": [1.0]}))
    with pytest.raises(ValueError, match="main sweep's seed"):
        trait_data(main, replicates=[rep])


def test_the_sweep_command_resumes_the_recorded_recipe(tmp_path):
    """Without options ``sweep`` takes the recipe recorded in --root (extra programmings and
    times included); given options go on top; a new root starts from the defaults."""
    from aimcsim.__main__ import build_parser
    from aimcsim.experiments.cli import sweep_recipe

    def recipe(*options, root=tmp_path):
        args = build_parser().parse_args(["sweep", "--root", str(root), *options])
        return sweep_recipe(args, recorded_recipe(root))

    assert recipe(root=tmp_path / "new") == TraitSweepConfig()
    smoke = recipe("--limit", "500", "--epochs", "1", root=tmp_path / "new")
    assert (smoke.train_limit, smoke.test_limit, smoke.adabs, smoke.epochs) == (500, 500, 500, 1)
    recorded = TraitSweepConfig(epochs=3, repetitions=8, times=(86400.0,), train_limit=700,
                                test_limit=300, adabs=100, gemm_precision="float32", seed=2)
    record_recipe(recorded, tmp_path)
    assert recipe() == recorded
    more = recipe("--reps", "10", "--times", "1,86400", "--test-limit", "200")
    assert more == TraitSweepConfig(**{**recorded.to_dict(), "repetitions": 10,
                                       "times": (1.0, 86400.0), "test_limit": 200})
    old = {k: v for k, v in recorded.to_dict().items() if k != "gemm_precision"}
    (tmp_path / "sweep.json").write_text(json.dumps(old))  # recorded before the field
    assert recipe().gemm_precision == "float32"
    assert recipe("--gemm-precision", "bfloat16").gemm_precision == "bfloat16"  # refused later


def test_differences_are_resolved_by_a_t_test_on_their_degrees_of_freedom(tmp_path):
    """Paired: N - 1 degrees of freedom (3 programmings need 4.30 SE, not 2); unpaired:
    Welch's; marked '*' in the tables."""
    from scipy.stats import t as student_t
    from aimcsim.experiments.stats import welch_dof
    _study(tmp_path / "t500", "t500", 0.90, {1.0: [0.88, 0.86, 0.87], 2.0: [0.88, 0.86, 0.87]})
    # 1 s: differences 0.030, 0.020, 0.025 (D/SE = 8.7: resolved); 2 s: 0.030, 0.005, 0.020
    # (D/SE = 2.5: beyond 2 SE, yet not resolved with 2 degrees of freedom)
    _study(tmp_path / "t500_width", "t500_width", 0.90,
           {1.0: [0.85, 0.84, 0.845], 2.0: [0.85, 0.855, 0.85]})
    _study(tmp_path / "resnet32", "resnet32", 0.90,
           {1.0: [0.80, 0.83, 0.77]}, seed=3)
    rows = {r["network"]: r for r in trait_data(tmp_path)["networks"]}
    clear, unclear = rows["t500_width"]["vs_reference"]
    critical = student_t.ppf(0.975, 2)
    assert clear["dof"] == 2 and clear["t_critical"] == pytest.approx(critical)  # 4.303
    assert clear["resolved"] and abs(clear["difference"]) / clear["se"] > critical
    assert 2 < abs(unclear["difference"]) / unclear["se"] < critical
    assert unclear["resolved"] is False
    welch = rows["resnet32"]["vs_reference"][0]
    se_a, se_b = 0.03 / math.sqrt(3), 0.01 / math.sqrt(3)
    expected = (se_a ** 2 + se_b ** 2) ** 2 / (se_a ** 4 / 2 + se_b ** 4 / 2)  # 2.44
    assert not welch["paired"] and welch["dof"] == pytest.approx(expected)
    assert welch["resolved"]  # 0.07 more: 3.8 SE, beyond t_0.975(2.44) = 3.64
    assert welch_dof(None, 3, 0.1, 3) is None and welch_dof(0.0, 3, 0.0, 3) is None
    text = write_trait_report(tmp_path)
    width_line = next(line for line in text.splitlines() if line.startswith("| t500_width |")
                      and "minus" not in line and "±" in line and "*" in line)
    assert width_line.count("*") == 1  # the 1 s difference only


def test_the_text_names_the_range_of_programmings_and_the_steps_digital_loss(tmp_path):
    """Networks with 3 and 4 programmings: the header says so instead of one count; the step
    from its base (t500_depth from t500_width) is reported from FP32 and from own digital."""
    _study(tmp_path / "t500", "t500", 0.90, {1.0: [0.88, 0.86, 0.87, 0.87]}, digital=0.9,
           repetitions=4)
    _study(tmp_path / "t500_width", "t500_width", 0.90, {1.0: [0.85, 0.84, 0.845]},
           digital=0.89)
    _study(tmp_path / "t500_depth", "t500_depth", 0.92, {1.0: [0.90, 0.89, 0.91]},
           digital=0.90)
    (tmp_path / "sweep.json").write_text(json.dumps(
        {"epochs": 1, "lr": 0.1, "batch_size": 8, "weight_decay": 0.0, "hwa_epochs": 1,
         "hwa_lr": 0.01, "clip_sigma": 2.5, "t_min": 1.0, "t_max": 10.0, "device": "pcm",
         "times": [1.0], "repetitions": 4, "seed": 0, "train_limit": 64, "test_limit": 100,
         "adabs": 0, "gemm_precision": "float32"}))
    text = write_trait_report(tmp_path)
    assert "3 to 4 programmings per network" in text and "raised to 4" in text
    step = [line for line in text.splitlines() if line.startswith("t500_depth minus")]
    assert len(step) == 2 and "from FP32" in step[0] and "own digital" in step[1]
    # paired per programming: from FP32 (0.92 - depth) - (0.90 - width) = -3, -3, -4.5 points;
    # from own digital (0.90 - depth) - (0.89 - width) = -4, -4, -5.5 points
    assert "-3.50 ± 0.50" in step[0] and "-4.50 ± 0.50" in step[1]
