"""LSTM training throughput: the seed's DataLoader loop vs dynaforge's ``train_module``.

Both train the same architecture on the same windows (z-scored Lorenz-63, input sequence length
9, next state as target, float32, CPU, torch threads = cores):

* the seed (lorents-net ``lstm_rnn.py`` / ``train_rnn_lstm.py``): its ``LSTM_RNN`` class and its
  ``train()`` loop, copied below (``TensorDataset`` + ``DataLoader`` without shuffle, MSE,
  Adam at lr 5e-4, per-batch ``loss.item()`` running loss, the loss print every 100 batches,
  here sent to a null stream);
* dynaforge: ``train_module`` (shuffled index batches on the tensors, AdamW, gradient
  clipping, per-step learning-rate schedule, loss accumulated on the device) training
  ``StepModel(core)`` with ``core = nn.LSTM(3, 32, 1, batch_first=True) + nn.Linear(32, 3)``
  reading the last hidden state, ``rollout_steps=1`` (one-step teacher forcing, as the seed).

Reports samples per second at the seed's batch size 32 and at dynaforge's default batch size
(``TrainConfig().batch_size``), and the ratios to the seed at 32 (goal: >= 10x at the default).
A seed row at the default batch size separates the batch-size effect from the loop's own.

Run alone: ``.venv/bin/python benchmarks/bench_lstm_training.py [--quick]``.
"""

from __future__ import annotations

import contextlib
import inspect
import io
from typing import Any

import torch
import torch.optim as optim
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from _common import fmt_rate, fmt_ratio, goal_mark, print_table, quick_flag, setup_threads, timed
from dynaforge.data import make_windows
from dynaforge.models.neural import StepModel, rollout
from dynaforge.simulate import simulate
from dynaforge.systems import Lorenz63
from dynaforge.train import TrainConfig, train_module

INP_SEQ_LEN = 9
HIDDEN = 32
SEED_BATCH = 32
GOAL_RATIO = 10.0
FULL = {
    "windows": 100_000,
    "epochs_small_batch": 1,
    "epochs_default_batch": 2,
    "target_run_s": 5.0,
    "repeats": 2,
}
QUICK = {
    "windows": 4_000,
    "epochs_small_batch": 1,
    "epochs_default_batch": 1,
    "target_run_s": 0.3,
    "repeats": 1,
}

# ---------------------------------------------------------------------------------------------
# The seed's code (lorents-net). ``device`` is the seed's ``from device import device``: CPU
# here. Only change: the epoch average is taken after the batch loop (the extracted listing
# puts ``running_loss /= num_batches`` at loop indentation, which would divide every batch).
# ---------------------------------------------------------------------------------------------
default_device = torch.device("cpu")
device = default_device


class LSTM_RNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, num_layers=1, device=default_device):
        """
        input_size: input feature size, in this case 3 for the Lorenz system
        output_size: output feature size, in this case 3 for the Lorenz system
        hidden_size: number of hidden units in the LSTM
        """
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers

        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.output_activation = nn.Linear(hidden_size, output_size)
        self.device = device

    def forward(self, inputSeq):
        # inputSeq shape [batch_size, seq_len, feature_size]
        batch_size = inputSeq.size(0)
        state = self.init_state(batch_size)
        lstm_out, _ = self.lstm(inputSeq, state)

        # Select the last point in the sequence
        prediction = self.output_activation(lstm_out[:, -1, :])

        return prediction

    def init_state(self, batch_size):
        # Initializing the hidden and cell states for the LSTM based on the
        # batch size
        state = (
            torch.zeros(self.num_layers, batch_size, self.hidden_size).to(self.device),
            torch.zeros(self.num_layers, batch_size, self.hidden_size).to(self.device),
        )
        return state


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.train()
    running_loss = 0.0

    for batch_nbr, (seq, label) in enumerate(dataloader):
        seq, label = seq.to(device), label.to(device)
        label = label.squeeze(
            1
        )  # Remove the extra middle dimension, in this case label shape is [batch_size, 1, feature_size]
        prediction = model(seq)
        loss = loss_fn(prediction, label)

        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        running_loss += loss.item()
        if batch_nbr % 100 == 0:
            current = batch_nbr * len(seq)
            print(f"loss: {loss:>7f} [{current:>5d}/{size:>5d}]")

    running_loss /= num_batches
    print(f"Average loss for epoch: {running_loss:>7f}")
    return running_loss


# ---------------------------------------------------------------------------------------------


def seed_training(x_train, y_train, batch_size: int, epochs: int, learning_rate=0.0005):
    """The seed's ``train_rnn_lstm`` set-up and epoch loop (no Optuna, no checkpoint save)."""
    x_train_device = x_train.to(device)
    y_train_device = y_train.to(device)
    train_data = TensorDataset(x_train_device, y_train_device)
    train_dataloader = DataLoader(train_data, batch_size=batch_size)
    input_size = x_train_device.shape[2]
    output_size = y_train_device.shape[1]
    model = LSTM_RNN(input_size, HIDDEN, output_size, 1, device).to(device)
    loss_fn = nn.MSELoss()
    optimizer = optim.Adam(model.parameters(), lr=learning_rate)
    scheduler = optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.8)
    losses = []
    with contextlib.redirect_stdout(io.StringIO()):
        for _ in range(epochs):
            losses.append(train(train_dataloader, model, loss_fn, optimizer))
            scheduler.step()
    return losses


class LSTMCore(nn.Module):
    """The same network as the seed's: one LSTM layer, a linear head on the last state."""

    def __init__(self, dim: int = 3, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, 1, batch_first=True)
        self.head = nn.Linear(hidden, dim)

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(window)
        return self.head(out[:, -1])


TF_SUFFIX = " (teacher-forced)"
#: Next-step targets scored per window with teacher forcing: positions L//4 .. L-1 (the last
#: one is the rollout step itself).
TF_TARGETS = INP_SEQ_LEN - INP_SEQ_LEN // 4


def _objective():
    """What ``train_module`` takes second: a rollout (older API) or a loss function.

    The loop's API is being changed while this benchmark is written: ``train_module(module,
    rollout, ...)`` became ``train_module(module, loss_fn, ...)``. With ``rollout_steps=1`` and
    a core without ``increments_all``/``advance`` both mean the one-step MSE, as in the seed.
    """
    params = list(inspect.signature(train_module).parameters)
    if len(params) > 1 and params[1] == "rollout":
        return rollout
    try:
        from dynaforge.models.neural import window_loss
    except ImportError:  # pragma: no cover - depends on the API of the day

        def window_loss(module, inputs, targets):
            return torch.mean((rollout(module, inputs, targets.shape[1]) - targets) ** 2)

    return window_loss


def dynaforge_training(
    inputs, targets, increment_scale, batch_size: int, epochs: int, teacher_forcing: bool = False
):
    """dynaforge's loop on the seed's network. With ``teacher_forcing`` the core is dynaforge's
    own recurrent core (same LSTM + head), which also scores the next-step prediction at every
    window position past the first quarter: more supervised targets per window, same cost."""
    if teacher_forcing:
        from dynaforge.models.rnn import _RecurrentCore

        core = _RecurrentCore(nn.LSTM, 3, HIDDEN, 1, 0.0)
    else:
        core = LSTMCore()
    module = StepModel(core, increment_scale)
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        rollout_steps=1,
        device="cpu",
        progress=False,
        patience=0,
        teacher_forcing=teacher_forcing,
    )
    result = train_module(module, _objective(), (inputs, targets), None, config)
    return result.history["train_loss"]


def _data(n_windows: int):
    """``n_windows`` overlapping windows (stride 1) of one z-scored Lorenz-63 trajectory."""
    traj = simulate(Lorenz63(), n_traj=1, steps=n_windows + INP_SEQ_LEN, dt=0.04, seed=3)
    x = traj.x
    u = ((x - x.mean(dim=(0, 1))) / x.std(dim=(0, 1))).to(torch.float32)
    inputs, targets = make_windows(u, INP_SEQ_LEN, 1)
    inputs, targets = inputs[:n_windows].contiguous(), targets[:n_windows].contiguous()
    increment_scale = (u[:, 1:] - u[:, :-1]).reshape(-1, 3).std(dim=0)
    return inputs, targets, increment_scale


def _measure(inputs, targets, increment_scale, threads: int, cfg: dict) -> list[dict]:
    """All loop x batch-size rows at one torch thread count."""
    torch.set_num_threads(threads)
    default_batch = TrainConfig().batch_size
    y_seed = targets[:, 0]  # the seed's labels are (M, 3)
    # Warm-up (first-call imports, allocations, oneDNN/MKL initialisation), untimed.
    seed_training(inputs[:256], y_seed[:256], SEED_BATCH, 1)
    dynaforge_training(inputs[:256], targets[:256], increment_scale, SEED_BATCH, 1)

    def fit(loop: str, n: int, batch: int, epochs: int):
        if loop.startswith("seed"):
            return seed_training(inputs[:n], y_seed[:n], batch, epochs)
        return dynaforge_training(
            inputs[:n],
            targets[:n],
            increment_scale,
            batch,
            epochs,
            teacher_forcing=loop.endswith(TF_SUFFIX),
        )

    runs = [
        ("seed DataLoader loop", SEED_BATCH, cfg["epochs_small_batch"]),
        ("dynaforge train_module", SEED_BATCH, cfg["epochs_small_batch"]),
        ("seed DataLoader loop", default_batch, cfg["epochs_default_batch"]),
        ("dynaforge train_module", default_batch, cfg["epochs_default_batch"]),
        ("dynaforge train_module" + TF_SUFFIX, default_batch, cfg["epochs_default_batch"]),
    ]
    rows = []
    total = inputs.shape[0]
    for loop, batch, epochs in runs:
        # A pilot epoch sizes the timed run to ~target seconds (at most all windows): on a
        # machine shared with other jobs, multi-threaded torch can run 100x slower than usual.
        pilot = min(total, max(8 * batch, 1024))
        torch.manual_seed(0)
        t_pilot, _ = timed(lambda: fit(loop, pilot, batch, 1))
        n = int(min(total, max(pilot, pilot / t_pilot * cfg["target_run_s"] / epochs)))
        timings = []
        for _ in range(cfg["repeats"]):  # best of: other jobs' bursts only ever slow a run down
            torch.manual_seed(0)
            timings.append(timed(lambda: fit(loop, n, batch, epochs)))
        seconds, losses = min(timings, key=lambda tl: tl[0])
        targets_per_window = TF_TARGETS if loop.endswith(TF_SUFFIX) else 1
        rows.append(
            {
                "loop": loop,
                "batch_size": batch,
                "epochs": epochs,
                "threads": threads,
                "windows": n,
                "seconds": seconds,
                "samples_per_s": n * epochs / seconds,
                "targets_per_s": n * epochs * targets_per_window / seconds,
                "all_seconds": [t for t, _ in timings],
                "last_epoch_loss": float(losses[-1]),
            }
        )
    peer = rows[0]["samples_per_s"]
    for r in rows:
        r["ratio_vs_seed_at_32"] = r["samples_per_s"] / peer
        r["targets_ratio_vs_seed_at_32"] = r["targets_per_s"] / peer
    return rows


def _ratio(rows, loop_a: str, loop_b: str, batch: int) -> float:
    a = next(r for r in rows if r["loop"].startswith(loop_a) and r["batch_size"] == batch)
    b = next(r for r in rows if r["loop"].startswith(loop_b) and r["batch_size"] == batch)
    return a["samples_per_s"] / b["samples_per_s"]


def run(quick: bool = False) -> dict[str, Any]:
    cores = setup_threads()
    cfg = QUICK if quick else FULL
    default_batch = TrainConfig().batch_size
    inputs, targets, increment_scale = _data(cfg["windows"])
    try:
        rows = _measure(inputs, targets, increment_scale, cores, cfg)
        diagnostic = _measure(inputs, targets, increment_scale, 1, cfg) if cores > 1 else []
    finally:
        torch.set_num_threads(cores)
    for r in diagnostic:
        r["diagnostic"] = True
    at_default = next(
        r
        for r in rows
        if r["loop"] == "dynaforge train_module" and r["batch_size"] == default_batch
    )
    teacher = next(r for r in rows if r["loop"].endswith(TF_SUFFIX))
    return {
        "name": "lstm_training",
        "quick": quick,
        "max_windows": inputs.shape[0],
        "input_sequence_length": INP_SEQ_LEN,
        "hidden_size": HIDDEN,
        "default_batch_size": default_batch,
        "threads": cores,
        "rows": rows,
        "diagnostic_rows_1_thread": diagnostic,
        "ratio_same_batch_size": {
            str(b): _ratio(rows, "dynaforge", "seed", b) for b in (SEED_BATCH, default_batch)
        },
        "goal": {"ratio_at_default_batch_vs_seed_at_32": GOAL_RATIO},
        "goal_met": {
            "ratio_at_default_batch_vs_seed_at_32": at_default["ratio_vs_seed_at_32"] >= GOAL_RATIO
        },
        "ratio_at_default_batch_vs_seed_at_32": at_default["ratio_vs_seed_at_32"],
        "teacher_forced_targets_ratio_vs_seed_at_32": teacher["targets_ratio_vs_seed_at_32"],
        "teacher_forced_windows_ratio_vs_seed_at_32": teacher["ratio_vs_seed_at_32"],
        "ratio_at_default_batch_vs_seed_at_32_1_thread": (
            next(
                r
                for r in diagnostic
                if r["loop"] == "dynaforge train_module" and r["batch_size"] == default_batch
            )["ratio_vs_seed_at_32"]
            if diagnostic
            else None
        ),
    }


def report(result: dict[str, Any]) -> None:
    rows = [
        [
            r["loop"],
            r["batch_size"],
            r["threads"],
            f"{r['windows']:,}",
            r["epochs"],
            f"{r['seconds']:.2f}",
            fmt_rate(r["samples_per_s"]),
            fmt_ratio(r["ratio_vs_seed_at_32"]),
            fmt_rate(r["targets_per_s"]),
            fmt_ratio(r["targets_ratio_vs_seed_at_32"]),
            f"{r['last_epoch_loss']:.3g}",
        ]
        for r in result["rows"] + result["diagnostic_rows_1_thread"]
    ]
    goal = result["goal"]["ratio_at_default_batch_vs_seed_at_32"]
    met = result["goal_met"]["ratio_at_default_batch_vs_seed_at_32"]
    same = result["ratio_same_batch_size"]
    notes = [
        f"Goal: dynaforge at its default batch size ({result['default_batch_size']}) >= "
        f"{goal:.0f}x the seed at 32 (same thread count): "
        f"{fmt_ratio(result['ratio_at_default_batch_vs_seed_at_32'])}, {goal_mark(met)}.",
        "Same batch size, dynaforge / seed: "
        + ", ".join(f"{fmt_ratio(v)} at {b}" for b, v in same.items())
        + ".",
        "Rows at 1 thread are a diagnostic (multi-threaded torch suffers most from other jobs "
        "on the machine). 'vs seed @32' compares rows of the same thread count. Each row's "
        "window count (a prefix of the same windows) is sized by a pilot epoch so that a "
        "timed run takes ~5 s; seconds = best of the timed runs (2 in the measured run).",
        f"Teacher-forced row: the same network and loop, scoring the next-step prediction at "
        f"every window position past the first quarter ({TF_TARGETS} supervised targets per "
        f"window instead of 1): "
        f"{fmt_ratio(result['teacher_forced_targets_ratio_vs_seed_at_32'])} the seed's "
        "targets/s. Windows/s is the like-for-like throughput.",
        "last loss: mean training MSE of the next z-scored state over the last epoch "
        "(dynaforge's StepModel predicts it as last state + scaled increment).",
    ]
    print_table(
        f"LSTM training throughput (windows of {result['input_sequence_length']} steps, "
        f"hidden {result['hidden_size']}, 1 layer)",
        [
            "loop",
            "batch",
            "threads",
            "windows",
            "epochs",
            "seconds",
            "windows/s",
            "vs seed @32",
            "targets/s",
            "vs seed @32",
            "last loss",
        ],
        rows,
        notes,
    )


def main() -> None:
    report(run(quick_flag()))


if __name__ == "__main__":
    main()
