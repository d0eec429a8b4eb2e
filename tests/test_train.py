"""The training loop: schedule, resumable checkpoints, early stopping, device selection."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dynaforge.models.neural import StepModel, window_loss
from dynaforge.train import TrainConfig, learning_rate_at, resolve_device, train_module


def _data(n=256, length=4, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, length + k, 2, generator=g)
    return x[:, :length], x[:, length:]


class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 2)

    def forward(self, window):
        return self.lin(window.flatten(1))


def _module(seed=0):
    torch.manual_seed(seed)
    return StepModel(_Linear(), torch.ones(2))


def test_cosine_schedule_shape():
    cfg = TrainConfig(epochs=10, learning_rate=1.0, warmup_epochs=1)
    assert learning_rate_at(0.0, cfg) < 0.01  # warm-up starts near zero
    assert learning_rate_at(1.0, cfg) == pytest.approx(1.0)  # peak after warm-up
    assert learning_rate_at(10.0, cfg) == pytest.approx(0.01)  # decays to 1% of peak
    values = [learning_rate_at(e, cfg) for e in (1, 3, 5, 7, 9)]
    assert values == sorted(values, reverse=True)


def test_exponential_schedule_is_the_seeds():
    cfg = TrainConfig(schedule="exponential", gamma=0.8, learning_rate=5e-4)
    assert learning_rate_at(3.5, cfg) == pytest.approx(5e-4 * 0.8**3)


def test_bad_config():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ValueError, match=">= 1"):
        TrainConfig(batch_size=0)


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    data, val = _data(), _data(64, seed=1)
    cfg = TrainConfig(epochs=6, batch_size=32, rollout_steps=2, progress=False, patience=0)
    full = _module()
    train_module(full, window_loss, data, val, cfg)

    # The same run with a checkpoint "crashes" after epoch 3, then resumes from the file alone.
    ckpt = tmp_path / "run.pt"

    def crash(epoch, _metrics):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_module(_module(), window_loss, data, val, cfg, checkpoint=ckpt, on_epoch_end=crash)
    resumed = _module(seed=123)  # different init: everything must come from the checkpoint
    result = train_module(resumed, window_loss, data, val, cfg, checkpoint=ckpt)
    assert result.history["epoch"] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_early_stopping_and_best_state():
    data = _data()
    # A learning rate this large makes validation loss worse after the first epochs.
    cfg = TrainConfig(
        epochs=50,
        batch_size=32,
        rollout_steps=2,
        progress=False,
        patience=3,
        learning_rate=5.0,
        schedule="constant",
        grad_clip=None,
    )
    module = _module()
    try:
        result = train_module(module, window_loss, data, _data(64, seed=1), cfg)
    except FloatingPointError as exc:  # diverging to inf is reported clearly, also fine
        assert "training loss became" in str(exc)
        return
    assert result.stopped_early and len(result.history["epoch"]) < 50
    assert result.best_val_loss == min(result.history["val_loss"])


def test_training_reduces_loss():
    data = _data()
    result = train_module(
        _module(),
        window_loss,
        data,
        None,
        TrainConfig(epochs=20, batch_size=64, progress=False, rollout_steps=2),
    )
    assert result.history["train_loss"][-1] < 0.8 * result.history["train_loss"][0]
    assert math.isfinite(result.train_time_s)


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda")


def test_a_time_budget_that_is_kept_changes_no_number():
    """A generous time cap never reads the clock: the same numbers as no cap at all."""
    data, val = _data(), _data(64, seed=1)
    results = []
    for cap in (None, 3600.0):
        cfg = TrainConfig(epochs=4, batch_size=32, rollout_steps=2, progress=False, patience=0,
                          max_time_s=cap)  # fmt: skip
        module = _module()
        results.append(train_module(module, window_loss, data, val, cfg).history)
    assert results[0]["train_loss"] == results[1]["train_loss"]
    assert results[0]["lr"] == results[1]["lr"]


def test_a_run_behind_its_time_budget_decays_its_rate_and_stops():
    data, val = _data(), _data(64, seed=1)
    cfg = TrainConfig(epochs=1000, batch_size=32, rollout_steps=2, progress=False, patience=0,
                      max_time_s=1e-3)  # fmt: skip
    result = train_module(_module(), window_loss, data, val, cfg)
    assert result.stopped_early and len(result.history["epoch"]) == 1
    # The first epoch started on pace (no time spent yet): its rate follows the epochs only.
    assert result.history["lr"][0] == pytest.approx(learning_rate_at(1 - 1 / 8, cfg))


def test_step_schedule_is_steplr():
    """PyTorch's StepLR: × gamma every step_size epochs (PDEBench: 100 and 0.5)."""
    cfg = TrainConfig(schedule="step", gamma=0.5, step_size=100, learning_rate=1e-3)
    assert learning_rate_at(0.0, cfg) == pytest.approx(1e-3)
    assert learning_rate_at(99.9, cfg) == pytest.approx(1e-3)
    assert learning_rate_at(100.0, cfg) == pytest.approx(5e-4)
    assert learning_rate_at(250.0, cfg) == pytest.approx(2.5e-4)
    with pytest.raises(ValueError, match="step_size"):
        TrainConfig(step_size=0)
