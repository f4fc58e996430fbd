"""Knowledge distillation in training: the loss against its formula, the teacher left alone,
a student that learns what the teacher knows, configuration checks and resume."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from aimcsim.data import CifarSplit
from aimcsim.data.loader import iterate_batches
from aimcsim.models import build_model
from aimcsim.nn import HardwareAwareConfig
from aimcsim.training import TrainConfig, train_classifier
from aimcsim.training.distillation import DistillationLoss
from aimcsim.training.hwa import hardware_aware_finetune
from aimcsim.training.state_file import load_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _split(n: int, seed: int, labels: np.ndarray | None = None) -> CifarSplit:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    return CifarSplit(images=images, labels=rng.integers(0, 10, n).astype(np.int64)
                      if labels is None else labels)


class Linear(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.bn = nn.BatchNorm1d(12)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        return self.fc(self.bn(x))


def test_loss_follows_its_formula():
    torch.manual_seed(0)
    teacher = Linear(1)
    x, labels = torch.randn(16, 12), torch.randint(0, 5, (16,))
    logits = torch.randn(16, 5, requires_grad=True)
    a, temp = 0.7, 3.0
    loss = DistillationLoss(teacher, a, temp)(x, logits, labels)
    with torch.no_grad():
        p_t = F.softmax(teacher(x) / temp, dim=1)
    log_p_s = F.log_softmax(logits / temp, dim=1)
    kl = (p_t * (p_t.log() - log_p_s)).sum(1).mean()
    expected = (1 - a) * F.cross_entropy(logits, labels) + a * temp ** 2 * kl
    torch.testing.assert_close(loss, expected)
    # weight 0: plain cross-entropy; a student equal to its teacher: only the hard term
    torch.testing.assert_close(DistillationLoss(teacher, 0.0, temp)(x, logits, labels),
                               F.cross_entropy(logits, labels))
    same = teacher(x).detach()
    torch.testing.assert_close(DistillationLoss(teacher, a, temp)(x, same, labels),
                               (1 - a) * F.cross_entropy(same, labels))


def test_teacher_gets_no_gradient_and_keeps_its_statistics():
    teacher = Linear(1)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    loss_fn = DistillationLoss(teacher, 0.5, 2.0).train()
    assert not teacher.training
    student = Linear(2).train()
    x = torch.randn(32, 12) * 3 + 1
    loss_fn(x, student(x), torch.randint(0, 5, (32,))).backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.fc.weight.grad is not None
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("weight, temperature", [(-0.1, 4.0), (1.5, 4.0), (0.5, 0.0),
                                                 (0.5, float("nan"))])
def test_bad_settings_are_refused(weight, temperature):
    with pytest.raises(ValueError, match="distill"):
        TrainConfig(distill_weight=weight, distill_temperature=temperature)
    with pytest.raises(ValueError, match="distillation"):
        DistillationLoss(Linear(0), weight, temperature)


def test_teacher_and_weight_come_together(tmp_path):
    train, test = _split(32, 0), _split(16, 1)
    with pytest.raises(ValueError, match="teacher"):
        train_classifier(build_model("f1net"), train, test, TrainConfig(epochs=1), tmp_path,
                         progress=False, teacher=build_model("f1net"))
    with pytest.raises(ValueError, match="teacher"):
        train_classifier(build_model("f1net"), train, test,
                         TrainConfig(epochs=1, distill_weight=0.5), tmp_path, progress=False)


@torch.no_grad()
def _predictions(model: nn.Module, split: CifarSplit) -> np.ndarray:
    model.eval()
    return np.concatenate([model(x).argmax(1).numpy() for x, _ in iterate_batches(split, 64)])


def _pooled_linear(std: float) -> nn.Module:
    """A classifier with a simple, learnable rule: a linear map of the 4x4-pooled image."""
    model = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 10))
    nn.init.normal_(model[2].weight, std=std)
    return model


def test_student_learns_the_teachers_predictions(tmp_path):
    """Labels that are pure noise: with weight 1 the student can only learn from the teacher,
    and it comes to agree with the teacher on the training images far above chance; with
    weight 0 (labels only) it does not."""
    torch.manual_seed(0)
    teacher = _pooled_linear(std=3.0)
    noise_labels = np.random.default_rng(5).integers(0, 10, 256).astype(np.int64)
    train = _split(256, 0, noise_labels)
    assert len(np.unique(_predictions(teacher, train))) >= 3  # not one class for everything
    agreement = {}
    for weight in (0.0, 1.0):
        torch.manual_seed(1)
        student = _pooled_linear(std=0.1)
        config = TrainConfig(epochs=20, batch_size=32, lr=0.5, schedule="cosine",
                             distill_weight=weight, distill_temperature=2.0, eval_batch_size=64)
        train_classifier(student, train, None, config, tmp_path / f"w{weight}", progress=False,
                         teacher=teacher if weight else None)
        agreement[weight] = float(np.mean(_predictions(student, train)
                                          == _predictions(teacher, train)))
    assert agreement[1.0] > 0.6, agreement
    assert agreement[1.0] > agreement[0.0] + 0.4, agreement


def test_hardware_aware_finetune_distils_and_resumes_only_with_its_settings(tmp_path,
                                                                           monkeypatch):
    import aimcsim.training.distillation as distillation
    train, test = _split(64, 0), _split(32, 1)
    torch.manual_seed(0)
    teacher = build_model("f1net")
    config = TrainConfig(epochs=1, batch_size=32, lr=0.01, schedule="cosine",
                         distill_weight=0.9, eval_batch_size=32)
    hwa = HardwareAwareConfig(noise_model="device")
    teacher_calls = []
    real_forward = teacher.forward
    monkeypatch.setattr(teacher, "forward",
                        lambda x: teacher_calls.append(len(x)) or real_forward(x))
    losses = []
    real_loss = distillation.DistillationLoss.forward
    monkeypatch.setattr(distillation.DistillationLoss, "forward",
                        lambda self, *a: losses.append(1) or real_loss(self, *a))
    _, history = hardware_aware_finetune(build_model("f1net"), train, test, config, tmp_path,
                                         hwa, progress=False, teacher=teacher)
    assert history["config"]["distill_weight"] == 0.9
    assert sum(teacher_calls) >= 64 and len(losses) == 2  # the teacher sees every batch
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["config"]["distill_temperature"] == 4.0
    (tmp_path / "model.pt").unlink()  # unfinished again: a resume must check the settings
    other = TrainConfig(**{**config.__dict__, "distill_weight": 0.5})
    with pytest.raises(ValueError, match="distill_weight=0.9"):
        hardware_aware_finetune(build_model("f1net"), train, test, other, tmp_path, hwa,
                                progress=False, teacher=teacher)


def test_checkpoint_of_a_run_before_distillation_still_resumes(tmp_path):
    """A checkpoint written before the distillation settings existed resumes (its run had no
    distillation); one whose run had other settings is still refused."""
    train, test = _split(64, 0), _split(32, 1)
    config = TrainConfig(epochs=1, batch_size=32, lr=0.01, eval_batch_size=32)
    torch.manual_seed(0)
    first = train_classifier(build_model("f1net"), train, test, config, tmp_path,
                             progress=False)
    state = load_state(tmp_path / "checkpoint.pt")
    history = json.loads(state["history"])
    for key in ("distill_weight", "distill_temperature"):
        del history["config"][key]
    state["history"] = json.dumps(history)
    torch.save(state, tmp_path / "checkpoint.pt")
    (tmp_path / "model.pt").unlink()
    resumed = train_classifier(build_model("f1net"), train, test, config, tmp_path,
                               progress=False)
    assert resumed["epochs"] == first["epochs"]
    (tmp_path / "model.pt").unlink()
    with pytest.raises(ValueError, match="distill_temperature=4.0"):
        train_classifier(build_model("f1net"), train, test,
                         TrainConfig(**{**config.__dict__, "distill_temperature": 2.0}),
                         tmp_path, progress=False)
