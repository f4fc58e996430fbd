"""The training loop: checkpoints, kill and resume, evaluation and config validation.

Runs on small synthetic CIFAR-shaped data so the file takes seconds, not minutes.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from aimcsim.data import CifarSplit
from aimcsim.models import build_model
from aimcsim.training import TrainConfig, evaluate, train_classifier
from aimcsim.training import trainer as trainer_mod
from aimcsim.training.state_file import load_state


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _split(n: int, seed: int) -> CifarSplit:
    rng = np.random.default_rng(seed)
    return CifarSplit(images=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                      labels=rng.integers(0, 10, n).astype(np.int64))


TRAIN = _split(256, 0)
TEST = _split(64, 1)


class Killed(Exception):
    """Stands in for the process being killed."""


def _kill_during_epoch(monkeypatch, epoch: int, after_batches: int) -> None:
    """Make the training loop die ``after_batches`` steps into epoch ``epoch`` (1-based)."""
    real = trainer_mod.iterate_batches
    calls = {"train": 0}

    def dying(split, batch_size, shuffle=False, **kwargs):
        if not shuffle:  # evaluation batches
            yield from real(split, batch_size, shuffle=shuffle, **kwargs)
            return
        calls["train"] += 1
        for i, item in enumerate(real(split, batch_size, shuffle=shuffle, **kwargs)):
            if calls["train"] == epoch and i == after_batches:
                raise Killed(f"killed in epoch {epoch}")
            yield item

    monkeypatch.setattr(trainer_mod, "iterate_batches", dying)


def _assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


F1_CONFIG = TrainConfig(epochs=2, batch_size=64, lr=0.05, eval_batch_size=64)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    torch.manual_seed(0)
    model = build_model("f1net")
    history = train_classifier(model, TRAIN, TEST, F1_CONFIG, out, progress=False)
    return model, history, out


def test_run_writes_checkpoint_history_and_weights(uninterrupted):
    model, history, out = uninterrupted
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]
    for record in history["epochs"]:
        assert 0.0 <= record["test_acc"] <= 1.0 and 0.0 <= record["train_acc"] <= 1.0
        assert math.isfinite(record["train_loss"]) and record["seconds"] > 0
    assert history["test_acc"] == history["epochs"][-1]["test_acc"]
    assert history["config"]["epochs"] == 2
    on_disk = json.loads((out / "history.json").read_text())
    assert on_disk["epochs"] == history["epochs"]
    state = load_state(out / "checkpoint.pt")
    assert state["epoch"] == 2 and {"model", "optimizer", "scheduler", "torch_rng"} <= set(state)
    fresh = build_model("f1net")
    fresh.load_state_dict(torch.load(out / "model.pt", map_location="cpu", weights_only=True))
    _assert_same_state(fresh, model)
    assert abs(evaluate(fresh, TEST, batch_size=64) - history["test_acc"]) <= 1 / len(TEST)


def test_killed_run_resumes_to_the_uninterrupted_result(uninterrupted, tmp_path, monkeypatch):
    straight_model, straight_history, _ = uninterrupted
    torch.manual_seed(0)
    model = build_model("f1net")
    _kill_during_epoch(monkeypatch, epoch=2, after_batches=1)
    with pytest.raises(Killed):
        train_classifier(model, TRAIN, TEST, F1_CONFIG, tmp_path, progress=False)
    monkeypatch.undo()
    state = load_state(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 1 and not (tmp_path / "model.pt").exists()

    # A new process: other global random state, other initial weights; both come from disk.
    torch.manual_seed(1234)
    restarted = build_model("f1net")
    history = train_classifier(restarted, TRAIN, TEST, F1_CONFIG, tmp_path, progress=False)
    _assert_same_state(restarted, straight_model)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in history["epochs"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"}
                     for r in straight_history["epochs"]]

    # Running again once finished trains nothing and returns the same history.
    again = train_classifier(build_model("f1net"), TRAIN, TEST, F1_CONFIG, tmp_path,
                             progress=False)
    assert again["epochs"] == history["epochs"]


def test_resume_refuses_other_run_settings(uninterrupted):
    """A checkpoint of a 2-epoch run cannot continue as a 3-epoch run (its one-cycle schedule
    was laid out for 2 epochs); settings that do not change the run may differ."""
    _, history, out = uninterrupted
    before = (out / "checkpoint.pt").read_bytes()
    for change in (dict(epochs=3), dict(lr=0.1), dict(batch_size=32), dict(seed=1),
                   dict(schedule="cosine"), dict(weight_decay=0.0), dict(momentum=0.8),
                   dict(swa_start=1), dict(optimizer="adamw")):
        config = TrainConfig(**{**F1_CONFIG.__dict__, **change})
        key = next(iter(change))
        with pytest.raises(ValueError, match=f"{key}="):
            train_classifier(build_model("f1net"), TRAIN, TEST, config, out, progress=False)
    assert (out / "checkpoint.pt").read_bytes() == before
    relaxed = TrainConfig(**{**F1_CONFIG.__dict__, "eval_batch_size": 32,
                             "channels_last": False})
    again = train_classifier(build_model("f1net"), TRAIN, TEST, relaxed, out, progress=False)
    assert again["epochs"] == history["epochs"]


class NoisyNet(nn.Module):
    """A tiny net that, like hardware-aware training, draws weight noise from torch's global
    random generator in every training forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=4, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.conv.weight
        if self.training:
            w = w + 0.05 * w.detach().abs().max() * torch.randn_like(w)
        x = torch.relu(self.bn(nn.functional.conv2d(x, w, stride=4)))
        return self.fc(x.mean((2, 3)))


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_resume_restores_the_global_random_state(tmp_path, monkeypatch, schedule):
    config = TrainConfig(epochs=3, batch_size=32, lr=0.05, schedule=schedule, eval_batch_size=64)
    torch.manual_seed(0)
    straight = NoisyNet()
    train_classifier(straight, TRAIN, TEST, config, tmp_path / "straight", progress=False)

    def killed_then_resumed(folder, drop_rng: bool) -> NoisyNet:
        torch.manual_seed(0)
        model = NoisyNet()
        _kill_during_epoch(monkeypatch, epoch=3, after_batches=2)
        with pytest.raises(Killed):
            train_classifier(model, TRAIN, TEST, config, folder, progress=False)
        monkeypatch.undo()
        if drop_rng:  # a checkpoint as written before the random state was saved
            state = load_state(folder / "checkpoint.pt")
            del state["torch_rng"]
            torch.save(state, folder / "checkpoint.pt")
        torch.manual_seed(99)
        resumed = NoisyNet()
        train_classifier(resumed, TRAIN, TEST, config, folder, progress=False)
        return resumed

    _assert_same_state(killed_then_resumed(tmp_path / "resumed", drop_rng=False), straight)
    # Without the saved random state the noise differs after the restart: the check above has
    # teeth, and old checkpoints still load.
    old = killed_then_resumed(tmp_path / "old", drop_rng=True)
    assert not torch.equal(old.conv.weight, straight.conv.weight)


class Constant(nn.Module):
    """Predicts class ``k`` for every image."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(x.shape[0], 10)
        logits[:, self.k] = self.scale
        return logits


def test_evaluate_returns_a_fraction_and_keeps_the_mode():
    labels = np.array([3] * 7 + [5] * 3, dtype=np.int64)
    split = CifarSplit(images=np.zeros((10, 3, 32, 32), dtype=np.uint8), labels=labels)
    model = Constant(3).train()
    assert evaluate(model, split, batch_size=4) == pytest.approx(0.7)
    assert model.training
    assert evaluate(Constant(5).eval(), split, batch_size=3) == pytest.approx(0.3)
    assert evaluate(Constant(0), split) == 0.0
    assert evaluate(Constant(3), CifarSplit(split.images[:7], labels[:7])) == 1.0
    acc = evaluate(build_model("f1net"), TEST, batch_size=64)
    assert 0.0 <= acc <= 1.0
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, CifarSplit(split.images[:0], labels[:0]))


@pytest.mark.parametrize("bad", [
    dict(epochs=0), dict(batch_size=0), dict(lr=0.0), dict(lr=-0.1), dict(lr=float("nan")),
    dict(momentum=0.0), dict(momentum=1.0), dict(weight_decay=-1e-4),
    dict(schedule="step"), dict(threads=-1), dict(eval_batch_size=0),
    dict(swa_start=-1), dict(swa_start=61), dict(optimizer="adam"),
])
def test_bad_train_config(bad):
    key = next(iter(bad))
    with pytest.raises(ValueError, match=key):
        TrainConfig(**bad)


def test_default_config_is_valid():
    config = TrainConfig()
    assert config.epochs >= 1 and config.schedule in trainer_mod.SCHEDULES
    assert set(trainer_mod.RESUME_KEYS) <= set(config.__dict__)


def test_baked_clipping_equals_the_training_forward():
    """After hardware-aware training the parameters hold the weights the training forward used:
    noise and periphery off, the training forward of the raw weights equals the digital forward
    of the baked ones, and outliers are cut at clip_sigma x std of the raw weights."""
    from aimcsim.nn import HardwareAwareConfig, convert_to_analog, digital
    from aimcsim.training.hwa import bake_weight_clipping_
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 6 * 6, 5))
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = 5.0  # an outlier far beyond 2.5 std
    hwa = HardwareAwareConfig(weight_noise=0.0, clip_sigma=2.5, periphery=False)
    analog = convert_to_analog(net, hwa=hwa)
    x = torch.randn(4, 3, 6, 6)
    raw = analog[0].weight.detach().clone()
    bound = 2.5 * raw.std()
    with torch.no_grad():
        trained_forward = analog.train()(x)
        with digital(analog):
            unclipped = analog.eval()(x)
        with digital(analog, hwa_clipping=True):
            monitored = analog.eval()(x)
    bake_weight_clipping_(analog)
    torch.testing.assert_close(analog[0].weight, raw.clamp(-bound, bound))
    assert analog[0].weight.abs().max() < 5.0
    with torch.no_grad(), digital(analog):
        baked = analog.eval()(x)
    torch.testing.assert_close(baked, trained_forward)
    torch.testing.assert_close(monitored, trained_forward)
    assert not torch.allclose(unclipped, trained_forward)


def test_init_from_starts_fp32_training_from_the_given_weights(tmp_path, monkeypatch):
    """``train --init-from`` hands the training the saved weights, not a fresh network; it
    cannot be combined with ``--hwa-from``."""
    from aimcsim.__main__ import build_parser, main
    from aimcsim.training import cli

    saved = build_model("resnet20")
    with torch.no_grad():
        saved.fc.weight.fill_(0.25)
    torch.save(saved.state_dict(), tmp_path / "model.pt")
    tiny = CifarSplit(np.zeros((2, 3, 32, 32), np.uint8), np.zeros(2, np.int64))
    monkeypatch.setattr(cli, "load_cifar10", lambda *a, **k: tiny)
    started = {}

    def fake_train(model, train, test, config, out, teacher=None):
        started["fc"] = model.fc.weight.detach().clone()
        started["config"], started["teacher"] = config, teacher
        return {"epochs": [], "wall_seconds": 0.0}

    monkeypatch.setattr(cli, "train_classifier", fake_train)
    main(["train", "--model", "resnet20", "--out", str(tmp_path / "run"),
          "--init-from", str(tmp_path / "model.pt")])
    assert torch.equal(started["fc"], torch.full_like(started["fc"], 0.25))
    main(["train", "--model", "resnet20", "--out", str(tmp_path / "run")])
    assert not torch.equal(started["fc"], torch.full_like(started["fc"], 0.25))
    assert started["config"].swa_start == 0
    main(["train", "--model", "resnet20", "--out", str(tmp_path / "run"), "--epochs", "4",
          "--schedule", "constant", "--swa-start", "2"])
    assert (started["config"].swa_start, started["config"].schedule) == (2, "constant")
    assert started["teacher"] is None and started["config"].distill_weight == 0.0
    # --distill-from: the teacher holds the given weights; the student starts afresh
    main(["train", "--model", "resnet20", "--out", str(tmp_path / "run"),
          "--distill-from", str(tmp_path / "model.pt"), "--distill-temperature", "3"])
    assert torch.equal(started["teacher"].fc.weight, torch.full_like(started["fc"], 0.25))
    assert not torch.equal(started["fc"], torch.full_like(started["fc"], 0.25))
    assert (started["config"].distill_weight, started["config"].distill_temperature) == (0.9, 3)
    with pytest.raises(SystemExit, match="--distill-from"):  # not silently ignored
        main(["train", "--model", "resnet20", "--out", str(tmp_path / "run"),
              "--distill-weight", "0.5"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--model", "resnet20", "--out", "x",
                                   "--init-from", "a.pt", "--hwa-from", "b.pt"])


SWA_CONFIG = TrainConfig(epochs=3, batch_size=64, lr=0.02, schedule="constant", swa_start=2,
                         eval_batch_size=64)


def test_weight_averaged_run_keeps_the_mean_of_its_last_epochs(tmp_path, monkeypatch):
    """With ``swa_start=2`` of 3 epochs, model.pt holds the mean of the weights after epochs 2
    and 3 (the same run without averaging shows them), with re-measured batch-norm statistics;
    a killed run resumes to the same result."""
    plain = TrainConfig(**{**SWA_CONFIG.__dict__, "swa_start": 0})
    torch.manual_seed(0)
    model = build_model("f1net")
    _kill_during_epoch(monkeypatch, epoch=3, after_batches=0)
    with pytest.raises(Killed):
        train_classifier(model, TRAIN, TEST, plain, tmp_path / "plain", progress=False)
    monkeypatch.undo()
    after_2 = load_state(tmp_path / "plain" / "checkpoint.pt")["model"]
    train_classifier(model, TRAIN, TEST, plain, tmp_path / "plain", progress=False)
    after_3 = model.state_dict()

    torch.manual_seed(0)
    averaged = build_model("f1net")
    history = train_classifier(averaged, TRAIN, TEST, SWA_CONFIG, tmp_path / "swa",
                               progress=False)
    for name, param in averaged.named_parameters():
        torch.testing.assert_close(param.detach(), (after_2[name] + after_3[name]) / 2)
    means = [k for k in after_3 if k.endswith("running_mean")]
    assert means and all(not torch.equal(averaged.state_dict()[k], after_3[k]) for k in means)
    assert history["weight_average"]["snapshots"] == 2
    assert history["weight_average"]["batchnorm_images"] == len(TRAIN)
    assert history["test_acc_last_epoch"] == history["epochs"][-1]["test_acc"]
    saved = build_model("f1net")
    saved.load_state_dict(torch.load(tmp_path / "swa" / "model.pt", weights_only=True))
    assert evaluate(saved, TEST, batch_size=64) == pytest.approx(history["test_acc"])

    torch.manual_seed(0)
    interrupted = build_model("f1net")
    _kill_during_epoch(monkeypatch, epoch=3, after_batches=1)
    with pytest.raises(Killed):
        train_classifier(interrupted, TRAIN, TEST, SWA_CONFIG, tmp_path / "resumed",
                         progress=False)
    monkeypatch.undo()
    resumed = build_model("f1net")
    again = train_classifier(resumed, TRAIN, TEST, SWA_CONFIG, tmp_path / "resumed",
                             progress=False)
    _assert_same_state(resumed, averaged)
    assert again["test_acc"] == history["test_acc"]


def test_constant_schedule_keeps_the_learning_rate():
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03)
    scheduler = trainer_mod._make_scheduler(optimizer, SWA_CONFIG, steps_per_epoch=5)
    rates = []
    for _ in range(15):
        optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr()[0])
    assert rates == [pytest.approx(0.03)] * 15


def test_adamw_decays_weights_only_and_trains(tmp_path):
    """``optimizer="adamw"``: AdamW with decoupled decay on the weight tensors only (not on
    biases, norms or the ViT's position embeddings, named ``bias``), through the loop."""
    vit = build_model("vit")
    config = TrainConfig(epochs=1, batch_size=64, lr=1e-3, weight_decay=0.05,
                         optimizer="adamw", eval_batch_size=64)
    optimizer = trainer_mod._make_optimizer(vit, config)
    assert isinstance(optimizer, torch.optim.AdamW)
    decayed = {id(p) for p in optimizer.param_groups[0]["params"]}
    assert optimizer.param_groups[0]["weight_decay"] == 0.05
    assert optimizer.param_groups[1]["weight_decay"] == 0.0
    assert id(vit.pos_embed.bias) not in decayed and id(vit.head.weight) in decayed
    assert id(vit.encoder.layers[0].self_attn.in_proj_weight) in decayed
    assert id(vit.encoder.layers[0].norm1.weight) not in decayed
    sgd = trainer_mod._make_optimizer(vit, TrainConfig())
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"]
    torch.manual_seed(0)
    model = NoisyNet()
    start = model.fc.weight.detach().clone()
    history = train_classifier(model, TRAIN, TEST, config, tmp_path, progress=False)
    assert math.isfinite(history["epochs"][0]["train_loss"])
    assert not torch.equal(model.fc.weight, start)
    assert json.loads((tmp_path / "history.json").read_text())["config"]["optimizer"] == "adamw"
