"""The seed's two fixed-charge scattering tasks: infer the charges, continue the trajectory.

One particle of charge +1 and unit mass is shot through three fixed charges drawn from
U[-1, 0] at the corners of a triangle (:class:`~dynaforge.systems.particles.
FixedChargeScattering`, whose docstring gives every choice of the recipe); only the moving
particle's positions are observed, every 0.1, for T = 9..11 (91..111 samples), and the
continuation task adds 2..6 more time units (20..60 samples).

- ``particles-charges`` (estimation): the three charges ``(q0, q1, q2)`` from the observed
  positions (trajectories of different lengths). Scores: MSE over test trajectories and
  charges (primary, minimised), RMSE, MAE, MSE and MAE per charge, the MSE against always
  predicting the training mean (``mse_vs_mean``). The seed: 800 / 100 / 100 trajectories, its
  LSTM (one layer of 256 and two linear layers) at test MSE 0.25, the mean's ≈ 0.083.
- ``particles-continuation`` (forecasting): the next 20..60 positions after each observation.
  Contexts have different lengths and so do horizons: every test trajectory is forecast from
  its **whole** observation (models are called once per context length, each with contexts of
  exactly that length, never with padding) for its **own** horizon (a group is forecast to its
  longest horizon and each row is scored on its own steps only). Scores: MSE over every
  continued sample and both coordinates (the seed's, primary, minimised), the median over
  trajectories of each one's MSE, the MSE against extrapolating the last step (the seed's linear
  baseline, computed by the task on the same test data), MSE by lead step (how the error
  grows; each step averaged over the trajectories that have it). The seed: 150 / 100 / 100
  trajectories, its GRU (two layers of 256) at MSE 1.82 against 1.01 for the last step.

Splits: the simulated trajectories (or a file's, in order) are cut into the test part (the
first ``n_test``: the same test trajectories whatever the training size), then validation
(early stopping and tuning; never the test part), then training. The continuation task trains
forecasters on the training trajectories observed **and** continued (positions only: the
charges are never given to a forecaster); the charges task gives estimators the observed part
and its charges.

Data: simulated in-process (a second or two; no cache needed), or a user's file
(``data=``) written by ``dynaforge simulate fixed-charge-scattering [--continuation] -o f.h5``
(dynaforge's HDF5, the charges as static inputs, metadata ``observed_lengths``): anything
else, too few trajectories, a trajectory too short to estimate from or a continuation task on
a file without continuations is refused with one message before anything is written.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from dynaforge.data import LabelledTrajectories, Trajectories
from dynaforge.models.base import (
    NEWTONIAN_POSITIONS,
    RAGGED,
    SCATTERING_EQUATIONS,
    AbstractEstimator,
    AbstractForecaster,
    GradientTrained,
)
from dynaforge.models.charges import min_samples
from dynaforge.report.page import format_value as _num
from dynaforge.tasks.base import MINIMIZE, Column, Evaluation, Metric, check_data_file
from dynaforge.tasks.estimation import AbstractEstimationTask, EstimationData
from dynaforge.tasks.forecasting import AbstractForecastingTask, ForecastData

SYSTEM = "fixed-charge-scattering"
CHARGE_NAMES = ("q0", "q1", "q2")
#: Fewest observed samples a trajectory needs: three central 9-point stencils (the physics
#: inversion's and field-lsq's default order 8); fewer cannot determine three charges.
MIN_OBSERVED = min_samples(8)
#: The physics models: they need the system's equations, which this task provides.
PHYSICS_MODELS = ("charge-lsq", "physics-continuation")


# -- configuration ----------------------------------------------------------------------------
@dataclasses.dataclass
class ScatteringConfig:
    """How a scattering task's data is made.

    Attributes:
        n_train, n_val, n_test: trajectories per part (test first, then validation, then
            training, in the order they are simulated or stored).
        seed: seeds the simulation (initial conditions, charges, lengths).
        data: a file written by ``dynaforge simulate fixed-charge-scattering`` instead of
            simulation (the system's parameters come from the file).
        device: where the data is simulated (``cpu`` by default: the same numbers on every
            machine; ``auto``: CUDA when present).
    """

    n_train: int = 800
    n_val: int = 100
    n_test: int = 100
    seed: int = 0
    data: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_test"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    @property
    def n_total(self) -> int:
        return self.n_test + self.n_val + self.n_train


@dataclasses.dataclass
class ContinuationConfig(ScatteringConfig):
    """:class:`ScatteringConfig` with the continuation task's sizes (the seed's 150/100/100)."""

    n_train: int = 150


@dataclasses.dataclass
class _Parts:
    """Every trajectory of a run, in order (test, validation, training)."""

    observed: Trajectories
    continuation: Trajectories | None
    charges: torch.Tensor  # (N, 3)
    parameters: dict[str, Any]
    source: dict[str, Any]


def _scattering_parts(cfg: ScatteringConfig, *, continuation: bool, task: str) -> _Parts:
    """Simulate or read the trajectories of ``cfg`` and check them (module docstring)."""
    from dynaforge.systems.particles import FixedChargeScattering, split_scattering

    if cfg.data is None:
        from dynaforge.train import resolve_device

        system = FixedChargeScattering()
        observed, following, charges = system.make_trajectories(
            cfg.n_total, torch.Generator().manual_seed(cfg.seed), continuation=continuation,
            device=resolve_device(cfg.device),
        )  # fmt: skip
        source = {"source": "simulated", "seed": cfg.seed,
                  "truth": "RK4 at h = 0.005 (agrees with DOP853 at 1e-12 to 2e-7)"}  # fmt: skip
        return _Parts(observed, following, charges, system.parameters(), source)
    path = Path(cfg.data)
    try:
        traj = Trajectories.load(path)
    except (ValueError, OSError, KeyError) as exc:
        raise ValueError(f"{path}: cannot read it as dynaforge trajectories: {exc}") from None
    try:
        observed, following, charges = split_scattering(traj)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{path}: {exc} (make one with `dynaforge simulate {SYSTEM} --continuation -o FILE`)"
        ) from None
    n = observed.n_trajectories
    if n < cfg.n_total:
        raise ValueError(
            f"{path} holds {n} trajectories; task {task} asks for n_test + n_val + n_train = "
            f"{cfg.n_test} + {cfg.n_val} + {cfg.n_train} = {cfg.n_total} (lower them with "
            "--set n_train=...)"
        )
    if continuation and following is None:
        raise ValueError(
            f"{path} holds no continuations; task {task} needs them (simulate with "
            f"`dynaforge simulate {SYSTEM} --continuation`)"
        )
    keep = torch.arange(cfg.n_total)
    observed = observed.subset(keep)
    following = None if following is None or not continuation else following.subset(keep)
    source = {"source": "file", "data": str(path), "seed": traj.metadata.get("seed"),
              "truth": f"the positions and charges of {path.name}"}  # fmt: skip
    params = dict(observed.metadata.get("parameters") or {})
    return _Parts(observed, following, charges[keep], params, source)


def _check_lengths(parts: _Parts, where: str) -> None:
    lengths = parts.observed.lengths_or_full()
    short = (lengths < MIN_OBSERVED).nonzero()[:, 0]
    if short.numel():
        i = int(short[0])
        raise ValueError(
            f"{where}: trajectory {i} has {int(lengths[i])} observed samples "
            f"({short.numel()} have fewer than {MIN_OBSERVED}): too short to estimate the charges "
            f"from (three central 9-point stencils need {MIN_OBSERVED})"
        )
    bad = ((parts.charges < -1) | (parts.charges > 0)).any(dim=1).nonzero()[:, 0]
    if bad.numel():
        i = int(bad[0])
        raise ValueError(
            f"{where}: trajectory {i} has charges {parts.charges[i].tolist()}, outside the "
            "recipe's U[-1, 0] (the physics models clip to that prior)"
        )


def _split_indices(cfg: ScatteringConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    test = torch.arange(cfg.n_test)
    val = torch.arange(cfg.n_test, cfg.n_test + cfg.n_val)
    train = torch.arange(cfg.n_test + cfg.n_val, cfg.n_total)
    return train, val, test


def _info(cfg: ScatteringConfig, parts: _Parts) -> dict[str, Any]:
    lengths = parts.observed.lengths_or_full()
    info = {
        "system": SYSTEM,
        "parameters": parts.parameters,
        "dt": parts.observed.dt,
        "n_train": cfg.n_train,
        "n_val": cfg.n_val,
        "n_test": cfg.n_test,
        "observed_samples": [int(lengths.min()), int(lengths.max())],
        **parts.source,
    }
    if parts.continuation is not None:
        c = parts.continuation.lengths_or_full()
        info["continued_samples"] = [int(c.min()), int(c.max())]
    return info


def _positions(traj: Trajectories) -> Trajectories:
    """``traj`` without static inputs (a forecaster must never see the charges)."""
    meta = {k: traj.metadata[k] for k in ("system", "parameters", "dt") if k in traj.metadata}
    return Trajectories(t=traj.t, x=traj.x, state_names=traj.state_names, metadata=meta,
                        lengths=traj.lengths)  # fmt: skip


def _charge_positions(parameters: Mapping[str, Any]) -> np.ndarray:
    from dynaforge.systems.particles import FixedChargeScattering

    default = FixedChargeScattering().charge_positions
    return np.asarray(parameters.get("charge_positions", default), dtype=float)


# -- figures ----------------------------------------------------------------------------------
def _plane_axes(ax, charge_pos: np.ndarray, charges: np.ndarray | None) -> None:
    """The fixed charges as markers (area by |q|), equal axes, a grid."""
    sizes = 40 + 160 * (np.abs(charges) if charges is not None else np.full(3, 0.5))
    ax.scatter(charge_pos[:, 0], charge_pos[:, 1], s=sizes, c="tab:blue", marker="o",
               edgecolors="k", zorder=3)  # fmt: skip
    for j, (x, y) in enumerate(charge_pos):
        ax.annotate(f"q{j}", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    ax.set_xlabel("x")
    ax.set_ylabel("y")


def _fmt_q(q: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):+.3f}" for v in q) + ")"


def _charge_case_figure(model: str, cases: Sequence[tuple[str, int]], arrays: Mapping[str, Any],
                        pred: np.ndarray, charge_pos: np.ndarray):  # fmt: skip
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * len(cases), 5.0), layout="constrained")
    axes = fig.subplots(1, len(cases), squeeze=False)[0]
    x, lengths, truth = arrays["test_positions"], arrays["test_lengths"], arrays["truth"]
    for ax, (which, i) in zip(axes, cases, strict=True):
        n = int(lengths[i])
        err = float(np.mean((pred[i] - truth[i]) ** 2))
        _plane_axes(ax, charge_pos, truth[i])
        ax.plot(x[i, :n, 0], x[i, :n, 1], color="k", lw=1.2,
                label=f"path ({n} samples)")  # fmt: skip
        ax.plot(x[i, :1, 0], x[i, :1, 1], "k>", ms=6)
        ax.plot([], [], " ", label=f"true {_fmt_q(truth[i])}")
        ax.plot([], [], " ", label=f"inferred {_fmt_q(pred[i])}")
        ax.set_title(f"{model}: {which} (test {i}), MSE {err:.3g}", fontsize=10)
        ax.legend(fontsize="small", loc="best")
    return fig


def _continuation_case_figure(model: str, cases: Sequence[tuple[str, int]],
                              arrays: Mapping[str, Any], pred: np.ndarray,
                              values: Sequence[float], charge_pos: np.ndarray):  # fmt: skip
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * len(cases), 5.0), layout="constrained")
    axes = fig.subplots(1, len(cases), squeeze=False)[0]
    ctx, lengths = arrays["context"], arrays["context_lengths"]
    truth, horizons = arrays["truth"], arrays["horizons"]
    for ax, (which, i) in zip(axes, cases, strict=True):
        n, h = int(lengths[i]), int(horizons[i])
        _plane_axes(ax, charge_pos, arrays.get("charges", [None])[i] if "charges" in arrays
                    else None)  # fmt: skip
        ax.plot(ctx[i, :n, 0], ctx[i, :n, 1], color="0.6", lw=1.0, label=f"observed ({n})")
        ax.plot(truth[i, :h, 0], truth[i, :h, 1], color="k", lw=1.5, label=f"true next {h}")
        p = np.where(np.isfinite(pred[i, :h]), pred[i, :h], np.nan)
        ax.plot(p[:, 0], p[:, 1], color="tab:red", lw=1.3, ls="--", label=model)
        ax.set_title(f"{model}: {which} (test {i}), MSE {_num(values[i], '.3g')}", fontsize=10)
        ax.legend(fontsize="small", loc="best")
        # Bounds from the truth: a forecast that flies off must not shrink everything else.
        pts = np.concatenate([ctx[i, :n], truth[i, :h]])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        pad = 0.15 * float(max(hi - lo)) + 0.5
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(lo[1] - pad, hi[1] + pad)
        ax.set_aspect("equal", adjustable="box")  # fixed limits: the box adjusts, not them
    return fig


def _best_worst(values: Sequence[float]) -> list[tuple[str, int]]:
    v = np.asarray(values, dtype=float)
    v = np.where(np.isfinite(v), v, np.inf)
    return [("best", int(np.argmin(v))), ("worst", int(np.argmax(v)))]


def _shown_models(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The models whose best and worst cases are drawn: every model that was scored, best
    first, the learned ones before the baselines (at most five)."""
    ok = [r for r in rows if "error" not in r]
    learned = [r["model"] for r in ok if r.get("kind") == "learned"]
    others = [r["model"] for r in ok if r.get("kind") != "learned"]
    return (learned + others)[:5]


def _summary(task: Any, doc: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
             reference: str, ratio_key: str) -> str:  # fmt: skip
    info = doc.get("task") or {}
    m = task.primary_metric
    ok = [r for r in rows if "error" not in r and math.isfinite(m.sort_key(r.get(m.key)))]
    text = (f"Task {task.name}: {len(rows)} models on {info.get('n_test')} test trajectories "
            f"({info.get('source', 'simulated')}).")  # fmt: skip
    if not ok:
        return text
    best = ok[0]
    text += f" Best {m.label}: {_num(best.get(m.key), '.4g')} by {best['model']}."
    learned = [r for r in ok if r.get("kind") == "learned"]
    if learned:
        r = learned[0]
        text += (f" Best learned: {r['model']}, {_num(r.get(m.key), '.4g')} "
                 f"({_num(r.get(ratio_key), '.3g')} × {reference}'s).")  # fmt: skip
    physics = [r for r in ok if r["model"] in PHYSICS_MODELS]
    if physics:
        r = physics[0]
        text += (f" Physics ({r['model']}, the true equations): {_num(r.get(m.key), '.3g')} "
                 f"({_num(r.get(ratio_key), '.3g')} × {reference}'s).")  # fmt: skip
    if info.get("truth"):
        text += f" Truth: {info['truth']}."
    return text


# -- the charges task -------------------------------------------------------------------------
def charge_scores(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, Any]:
    """MAE, per-charge MSE and MAE, and each trajectory's MSE of ``pred`` against ``truth``
    (both ``(B, 3)``; non-finite predictions count as infinite errors)."""
    diff = pred.to(torch.float64) - truth.to(torch.float64)
    diff = torch.where(torch.isfinite(diff), diff, torch.full_like(diff, math.inf))
    return {
        "mae": float(diff.abs().mean()),
        "mse_per_charge": diff.square().mean(dim=0).tolist(),
        "mae_per_charge": diff.abs().mean(dim=0).tolist(),
        "mse_values": diff.square().mean(dim=1).tolist(),
    }


class ParticleChargesTask(AbstractEstimationTask):
    """The three fixed charges from the moving particle's observed positions."""

    name = "particles-charges"
    description = (
        "fixed-charge scattering: the three charges U[-1, 0] from the moving particle's "
        "positions (91-111 samples), MSE (the seed's LSTM: 0.25; the mean: 0.083)"
    )
    config_class = ScatteringConfig
    default_models: ClassVar[tuple[str, ...]] = ("charge-lsq", "field-lsq", "rnn-estimator",
                                                  "mean")  # fmt: skip
    baselines: ClassVar[tuple[str, ...]] = ("mean", "charge-lsq")
    provides = frozenset({SCATTERING_EQUATIONS})
    metrics: ClassVar[tuple[Metric, ...]] = (
        *AbstractEstimationTask.metrics,
        Metric("mae", "MAE", MINIMIZE, math.inf, "mean absolute error of the charges"),
    )
    leaderboard_columns: ClassVar[tuple[str, ...]] = (
        "mse", "rmse", "mae", "mse_vs_mean", "train_time_s", "predict_time_s", "n_parameters",
    )  # fmt: skip
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # set below the class

    def requirements(self, cfg: ScatteringConfig) -> frozenset[str]:
        return frozenset({RAGGED})

    def model_params(self, model: str, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        # The system by name; its parameters come from the data's metadata (simulated or a
        # file), so a file made with other charge positions is inverted with its own.
        return {"system": SYSTEM} if model in PHYSICS_MODELS else {}

    def check_config(self, cfg: ScatteringConfig) -> None:
        if cfg.data is not None:
            check_data_file(cfg.data)

    def data_message(self, cfg: ScatteringConfig) -> str:
        if cfg.data is not None:
            return f"reading {cfg.data} ..."
        return f"simulating {cfg.n_total} scattering trajectories (seed {cfg.seed}) ..."

    def build_data(self, cfg: ScatteringConfig, *, progress: bool = False) -> EstimationData:
        parts = _scattering_parts(cfg, continuation=False, task=self.name)
        _check_lengths(parts, cfg.data or "the simulated data")
        train, val, test = _split_indices(cfg)

        def part(idx: torch.Tensor) -> LabelledTrajectories:
            return LabelledTrajectories(_positions(parts.observed.subset(idx)),
                                        parts.charges[idx], CHARGE_NAMES)  # fmt: skip

        info = _info(cfg, parts)
        info["targets"] = "the three fixed charges q0, q1, q2 (U[-1, 0])"
        return EstimationData(train=part(train), val=part(val), test=part(test), info=info)

    def evaluate(self, model: AbstractEstimator, data: EstimationData) -> Evaluation:
        from dynaforge.tasks.estimation import estimation_scores

        t0 = time.perf_counter()
        pred = self.predict(model, data.test.trajectories)
        elapsed = time.perf_counter() - t0
        scores = {
            "kind": model.kind,
            **estimation_scores(pred, data.test.targets, data.train.targets.mean(dim=0)),
            **charge_scores(pred, data.test.targets),
            "target_names": list(data.test.target_names),
            "predict_time_s": elapsed,
            "n_parameters": model.n_parameters,
        }
        (_, scores["best_case"]), (_, scores["worst_case"]) = _best_worst(scores["mse_values"])
        with np.errstate(over="ignore", invalid="ignore"):
            arrays = {f"pred__{model.name}": pred.numpy().astype(np.float32)}
        return Evaluation(scores, arrays)

    def run_arrays(self, data: EstimationData) -> dict[str, np.ndarray]:
        traj = data.test.trajectories
        return {
            "truth": data.test.targets.float().numpy(),
            "test_positions": traj.x.float().numpy(),
            "test_lengths": traj.lengths_or_full().numpy(),
            "charge_positions": _charge_positions(data.info.get("parameters") or {}),
        }

    def score_line(self, scores: Mapping[str, Any]) -> str:
        return (f"MSE {scores['mse']:.4g} (MAE {scores['mae']:.4g}, "
                f"{scores['mse_vs_mean']:.3g} × the mean's)")  # fmt: skip

    def table_columns(self) -> list[Column]:
        return [
            Column("MSE", lambda r: _num(r.get("mse"), ".4g")),
            Column("RMSE", lambda r: _num(r.get("rmse"), ".4g")),
            Column("MAE", lambda r: _num(r.get("mae"), ".4g")),
            Column("MSE / mean's", lambda r: _num(r.get("mse_vs_mean"), ".3g")),
            Column("fit s", lambda r: _num(r.get("train_time_s"), ".1f")),
            Column("predict s", lambda r: _num(r.get("predict_time_s"), ".2f")),
            Column("params", lambda r: _num(r.get("n_parameters"), ".0f")),
        ]

    def summary(self, doc: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
        return _summary(self, doc, rows, "the mean", "mse_vs_mean")

    def report_sections(self, run_dir: Path, doc: Mapping[str, Any],
                        rows: Sequence[Mapping[str, Any]], arrays: Mapping[str, np.ndarray],
                        figure: Callable[..., Any]) -> list[Any]:  # fmt: skip
        from dynaforge.report.page import Section

        sections = super().report_sections(run_dir, doc, rows, arrays, figure)
        models = doc.get("models") or {}
        charge_pos = arrays.get("charge_positions")
        if charge_pos is None or "test_positions" not in arrays:
            return sections
        figs = []
        for m in _shown_models(rows):
            pred = arrays.get(f"pred__{m}")
            values = models.get(m, {}).get("mse_values")
            if pred is None or not values:
                continue
            fig = _charge_case_figure(m, _best_worst(values), arrays, pred, charge_pos)
            figs.append(figure(fig, f"cases_{m}", f"{m}: its best and worst test trajectories "
                               "(marker area: the true |q|)."))  # fmt: skip
        if figs:
            sections.append(Section(
                "Best and worst cases",
                "Each model's best and worst test trajectory in the plane, with the fixed "
                "charges, the true and the inferred charges (as the seed draws them).",
                figures=figs))  # fmt: skip
        return sections


def _seed_lstm(epochs: int) -> dict[str, Any]:
    """The seed's charge LSTM: one LSTM layer of 256 over (x, y), then Linear(256, 256) + ReLU
    and Linear(256, 3). Trained with our loop (Adam, z-scored targets, early stopping on the
    validation part) instead of the seed's SGD at 0.01 with momentum 0.9: at the seed's batch
    size of 32."""
    return {"cell": "lstm", "hidden_size": 256, "num_layers": 1, "head_hidden": 256,
            "train": {"epochs": epochs, "batch_size": 32, "learning_rate": 1e-3,
                      "patience": 15, "rollout_steps": 1, "progress": False}}  # fmt: skip


# quick: the seed's sizes (they are small), shorter training; full: the seed's sizes, longer
# training (the seed's 150 epochs for the LSTM).
ParticleChargesTask.presets = {
    "quick": {
        "task": {"n_train": 800, "n_val": 100, "n_test": 100},
        "models": {
            "charge-lsq": {},
            "field-lsq": {"train": {"epochs": 60, "patience": 15}},
            "rnn-estimator": _seed_lstm(20),
            "mean": {},
        },
    },
    "full": {
        "task": {"n_train": 800, "n_val": 100, "n_test": 100},
        "models": {
            "charge-lsq": {},
            "field-lsq": {"train": {"epochs": 300, "patience": 40}},
            "rnn-estimator": _seed_lstm(150),
            "mean": {},
        },
    },
}


# -- the continuation task --------------------------------------------------------------------
@dataclasses.dataclass(kw_only=True)
class ContinuationData(ForecastData):
    """The continuation task's data: ``train``/``val`` Trajectories (observed + continued
    positions), and the test part padded with NaN: ``test_context`` ``(B, L_max, 2)`` with
    ``context_lengths`` ``(B,)``, ``test_truth`` ``(B, H_max, 2)`` with ``horizons`` ``(B,)``;
    ``val_context``/``val_truth``/``val_context_lengths``/``val_horizons`` the same for the
    validation part (tuning); ``test_charges`` ``(B, 3)`` (for the record, never a model
    input)."""

    context_lengths: torch.Tensor
    horizons: torch.Tensor
    test_charges: torch.Tensor
    val_context: torch.Tensor
    val_truth: torch.Tensor
    val_context_lengths: torch.Tensor
    val_horizons: torch.Tensor


@dataclasses.dataclass
class ContinuationValidation:
    """Continuations scored while tuning (never the test part); shapes as
    :class:`ContinuationData`'s test part."""

    context: torch.Tensor
    truth: torch.Tensor
    context_lengths: torch.Tensor
    horizons: torch.Tensor
    source: str = ""

    def __len__(self) -> int:
        return int(self.context.shape[0])


def continue_each(
    forecast: Callable[[torch.Tensor, int], torch.Tensor],
    context: torch.Tensor,
    lengths: torch.Tensor,
    horizons: torch.Tensor,
) -> torch.Tensor:
    """Forecasts ``(B, H_max, D)`` of contexts of different lengths, each for its own horizon.

    ``forecast(context (b, L, D), horizon) -> (b, horizon, D)`` is called once per distinct
    context length ``L`` with exactly those contexts' first ``L`` samples (never padding), to
    the longest horizon in the group; steps past a row's own horizon are NaN (never scored).
    """
    b, _, d = context.shape
    h_max = int(horizons.max())
    out = torch.full((b, h_max, d), math.nan, dtype=torch.float64)
    for length in torch.unique(lengths).tolist():
        rows = (lengths == length).nonzero()[:, 0]
        h = int(horizons[rows].max())
        pred = forecast(context[rows, :length], h).to(torch.float64)
        out[rows, :h] = pred.reshape(rows.numel(), h, d)
    beyond = torch.arange(h_max)[None] >= horizons[:, None]
    return out.masked_fill(beyond[..., None], math.nan)


def last_step_reference(context: torch.Tensor, lengths: torch.Tensor,
                        horizons: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """The seed's linear baseline ``x_L + h (x_L - x_{L-1})`` ``(B, H_max, D)`` (NaN past each
    horizon): the reference of ``mse_vs_last_step``."""
    rows = torch.arange(context.shape[0])
    last, before = context[rows, lengths - 1], context[rows, lengths - 2]
    h = torch.arange(1, int(horizons.max()) + 1, dtype=torch.float64)
    out = last[:, None] + h[None, :, None] * (last - before)[:, None]
    beyond = torch.arange(h.numel())[None] >= horizons[:, None]
    return out.masked_fill(beyond[..., None], math.nan)


def continuation_scores(pred: torch.Tensor, truth: torch.Tensor, horizons: torch.Tensor,
                        reference: torch.Tensor | None = None) -> dict[str, Any]:  # fmt: skip
    """Scores of continuations ``pred`` against ``truth`` (both ``(B, H_max, D)``), each row on
    its first ``horizons[i]`` steps only.

    ``mse``: the mean over every scored step and coordinate (the seed's); ``mse_values`` each
    trajectory's MSE over its own horizon, ``mse_median`` their median; ``mse_by_lead`` the
    MSE at each lead step over the trajectories that reach it (``count_by_lead`` of them);
    ``rmse`` = sqrt(mse); ``diverged_fraction``: forecasts with a non-finite scored value;
    ``mse_vs_last_step``: ``mse`` over that of ``reference`` (the last-step extrapolation).
    """
    h_max = truth.shape[1]
    valid = torch.arange(h_max)[None] < horizons[:, None]  # (B, H)
    sq = (pred.to(torch.float64) - truth.to(torch.float64)).square()
    bad = ~torch.isfinite(sq) & valid[..., None]
    sq = torch.where(valid[..., None], torch.nan_to_num(sq, nan=math.inf), 0.0)
    sq = torch.where(bad, math.inf, sq)
    d = truth.shape[-1]
    per_step = sq.sum(dim=-1) / d  # (B, H)
    count = valid.sum(dim=0)
    per_traj = per_step.sum(dim=1) / horizons.to(torch.float64)
    mse = float(per_step.sum() / valid.sum())
    scores: dict[str, Any] = {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mse_median": float(np.median(per_traj.numpy())),  # the mean of the middle two
        "diverged_fraction": float(bad.any(dim=(1, 2)).double().mean()),
        "mse_values": per_traj.tolist(),
        "mse_by_lead": (per_step.sum(dim=0) / count.clamp(min=1)).tolist(),
        "count_by_lead": count.tolist(),
    }
    if reference is not None:
        ref = continuation_scores(reference, truth, horizons)["mse"]
        scores["mse_vs_last_step"] = mse / ref if ref > 0 else math.inf
    return scores


class ParticleContinuationTask(AbstractForecastingTask):
    """The next 20-60 positions of the moving particle after its observation."""

    name = "particles-continuation"
    description = (
        "fixed-charge scattering: the next 40 ± 20 positions after 91-111 observed, MSE (the "
        "seed's GRU: 1.82; the last step extrapolated: 1.01)"
    )
    config_class = ContinuationConfig
    default_models: ClassVar[tuple[str, ...]] = (
        "physics-continuation", "field-continuation", "gru", "last-step",
    )  # fmt: skip
    baselines: ClassVar[tuple[str, ...]] = ("last-step", "physics-continuation")
    provides = frozenset({SCATTERING_EQUATIONS, NEWTONIAN_POSITIONS})
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("mse", "MSE", MINIMIZE, math.inf,
               "mean squared error over every continued sample and both coordinates"),
        Metric("mse_median", "MSE median", MINIMIZE, math.inf,
               "median over test trajectories of each one's MSE over its own horizon"),
        Metric("mse_vs_last_step", "MSE / last step's", MINIMIZE, math.inf,
               "below 1: better than extrapolating the last step (the seed's linear baseline)"),
        Metric("rmse", "RMSE", MINIMIZE, math.inf),
        Metric("diverged_fraction", "diverged", MINIMIZE, 1.0),
    )  # fmt: skip
    primary: ClassVar[str] = "mse"
    leaderboard_columns: ClassVar[tuple[str, ...]] = (
        "mse", "mse_median", "mse_vs_last_step", "rmse", "diverged_fraction", "train_time_s",
        "forecast_time_per_step_s", "n_parameters",
    )  # fmt: skip
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # set below the class

    @property
    def validation_metrics(self) -> tuple[Metric, ...]:
        return tuple(self.metric(k) for k in ("mse", "mse_median", "mse_vs_last_step"))

    def requirements(self, cfg: ContinuationConfig) -> frozenset[str]:
        return frozenset({RAGGED})

    def model_params(self, model: str, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {"system": SYSTEM} if model in PHYSICS_MODELS else {}

    def check_config(self, cfg: ContinuationConfig) -> None:
        if cfg.data is not None:
            check_data_file(cfg.data)

    def data_message(self, cfg: ContinuationConfig) -> str:
        if cfg.data is not None:
            return f"reading {cfg.data} ..."
        return (f"simulating {cfg.n_total} scattering trajectories with their continuations "
                f"(seed {cfg.seed}) ...")  # fmt: skip

    def build_data(self, cfg: ContinuationConfig, *, progress: bool = False) -> ContinuationData:
        from dynaforge.systems.particles import join_scattering

        parts = _scattering_parts(cfg, continuation=True, task=self.name)
        _check_lengths(parts, cfg.data or "the simulated data")
        train, val, test = _split_indices(cfg)
        joined = _positions(join_scattering(parts.observed, parts.continuation, parts.charges))
        obs, cont = parts.observed, parts.continuation
        info = _info(cfg, parts)
        info["forecast"] = ("each test trajectory from its whole observation, for its own "
                            "continuation (scored there only)")  # fmt: skip

        def padded(traj: Trajectories, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            lengths = traj.lengths_or_full()[idx]
            return traj.x[idx, : int(lengths.max())], lengths

        test_ctx, test_len = padded(obs, test)
        test_truth, test_h = padded(cont, test)
        val_ctx, val_len = padded(obs, val)
        val_truth, val_h = padded(cont, val)
        return ContinuationData(
            train=joined.subset(train), val=joined.subset(val),
            test_context=test_ctx, test_truth=test_truth, dt=obs.dt, info=info,
            context_lengths=test_len, horizons=test_h, test_charges=parts.charges[test],
            val_context=val_ctx, val_truth=val_truth, val_context_lengths=val_len,
            val_horizons=val_h,
        )  # fmt: skip

    def build_validation(self, cfg: ContinuationConfig, data: ContinuationData,
                         n: int) -> ContinuationValidation:  # fmt: skip
        count = min(n, data.val_context.shape[0])
        return ContinuationValidation(
            context=data.val_context[:count], truth=data.val_truth[:count],
            context_lengths=data.val_context_lengths[:count], horizons=data.val_horizons[:count],
            source=f"the first {count} trajectories of the validation part",
        )  # fmt: skip

    def validation_size(self, validation: ContinuationValidation) -> int:
        return len(validation)

    def training_size(self, data: ContinuationData) -> str:
        return (f"{data.train.n_trajectories} trajectories (observed + continued, up to "
                f"{data.train.n_steps} samples)")  # fmt: skip

    # -- scoring ----------------------------------------------------------------------------
    def _continue(self, model: AbstractForecaster, context, lengths, horizons, *,
                  during_fit: bool = False) -> torch.Tensor:  # fmt: skip
        def one(ctx: torch.Tensor, h: int) -> torch.Tensor:
            return self.forecast(model, ctx, h, None, during_fit=during_fit)

        return continue_each(one, context, lengths, horizons)

    def evaluate(self, model: AbstractForecaster, data: ContinuationData) -> Evaluation:
        t0 = time.perf_counter()
        pred = self._continue(model, data.test_context, data.context_lengths, data.horizons)
        elapsed = time.perf_counter() - t0
        ref = last_step_reference(data.test_context, data.context_lengths, data.horizons)
        scores = {
            "kind": model.kind,
            **continuation_scores(pred, data.test_truth, data.horizons, ref),
            "forecast_time_per_step_s": elapsed / max(int(data.horizons.sum()), 1),
            "n_parameters": model.n_parameters,
        }
        (_, scores["best_case"]), (_, scores["worst_case"]) = _best_worst(scores["mse_values"])
        with np.errstate(over="ignore", invalid="ignore"):
            arrays = {f"pred__{model.name}": pred.numpy().astype(np.float32)}
        return Evaluation(scores, arrays)

    def validation_scores(self, model: AbstractForecaster, validation: ContinuationValidation,
                          *, during_fit: bool = False) -> dict[str, float]:  # fmt: skip
        if during_fit and not isinstance(model, GradientTrained):
            during_fit = False
        pred = self._continue(model, validation.context, validation.context_lengths,
                              validation.horizons, during_fit=during_fit)  # fmt: skip
        ref = last_step_reference(validation.context, validation.context_lengths,
                                  validation.horizons)  # fmt: skip
        scores = continuation_scores(pred, validation.truth, validation.horizons, ref)
        return {m.key: scores[m.key] for m in self.validation_metrics}

    def objective_text(self, metric: Metric, n: int) -> str:
        return f"validation {metric.label} over {n} continuations (each on its own horizon)"

    def run_arrays(self, data: ContinuationData) -> dict[str, np.ndarray]:
        return {
            "t": np.arange(1, data.test_truth.shape[1] + 1) * data.dt,
            "context": data.test_context.float().numpy(),
            "context_lengths": data.context_lengths.numpy(),
            "truth": data.test_truth.float().numpy(),
            "horizons": data.horizons.numpy(),
            "charges": data.test_charges.float().numpy(),
            "charge_positions": _charge_positions(data.info.get("parameters") or {}),
        }

    def score_line(self, scores: Mapping[str, Any]) -> str:
        return (f"MSE {scores['mse']:.4g} (median {scores['mse_median']:.3g}, "
                f"{scores['mse_vs_last_step']:.3g} × the last step's)")  # fmt: skip

    def table_title(self, doc: Mapping[str, Any]) -> str:
        return f"{self.name} — MSE over each trajectory's own continuation"

    def table_columns(self) -> list[Column]:
        return [
            Column("MSE", lambda r: _num(r.get("mse"), ".4g")),
            Column("MSE median", lambda r: _num(r.get("mse_median"), ".3g")),
            Column("/ last step", lambda r: _num(r.get("mse_vs_last_step"), ".3g")),
            Column("diverged", lambda r: _num(r.get("diverged_fraction"), ".0%")),
            Column("fit s", lambda r: _num(r.get("train_time_s"), ".1f")),
            Column("ms/step", lambda r: _num(_ms(r.get("forecast_time_per_step_s")), ".3g")),
            Column("params", lambda r: _num(r.get("n_parameters"), ".0f")),
        ]

    def leaderboard_text(self, doc: Mapping[str, Any]) -> str:
        return (
            "Models ranked by the MSE over every continued test sample and both coordinates "
            "(the seed's metric; lower is better). Each trajectory is forecast from its whole "
            "observation for its own horizon; 'MSE / last step' divides by the MSE of "
            "extrapolating the last observed step on the same continuations."
        )

    def summary(self, doc: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
        return _summary(self, doc, rows, "the last step", "mse_vs_last_step")

    def report_sections(self, run_dir: Path, doc: Mapping[str, Any],
                        rows: Sequence[Mapping[str, Any]], arrays: Mapping[str, np.ndarray],
                        figure: Callable[..., Any]) -> list[Any]:  # fmt: skip
        from dynaforge.report import plots
        from dynaforge.report.page import Section

        models = doc.get("models") or {}
        order = [r["model"] for r in rows if "error" not in r]
        colors = plots.model_colors(order)
        sections = []
        t = arrays.get("t")
        curves = {m: models[m]["mse_by_lead"] for m in order if models[m].get("mse_by_lead")}
        if t is not None and curves:
            sections.append(Section(
                "Error growth",
                "MSE at each lead step, averaged over the test trajectories whose continuation "
                "reaches it (all of them up to the shortest horizon, fewer after).",
                figures=[figure(_growth_figure(t, curves, colors), "error_growth",
                                "MSE by lead time (log scale).")]))  # fmt: skip
        charge_pos = arrays.get("charge_positions")
        figs = []
        for m in _shown_models(rows):
            pred, values = arrays.get(f"pred__{m}"), models.get(m, {}).get("mse_values")
            if pred is None or not values or charge_pos is None or "context" not in arrays:
                continue
            fig = _continuation_case_figure(m, _best_worst(values), arrays, pred, values,
                                            charge_pos)  # fmt: skip
            figs.append(figure(fig, f"cases_{m}", f"{m}: its best and worst continuations."))
        if figs:
            sections.append(Section(
                "Best and worst continuations",
                "Each model's best and worst test continuation in the plane: the observed path "
                "(grey), the true continuation (black), the forecast (dashed).",
                figures=figs))  # fmt: skip
        return sections


def _growth_figure(t: np.ndarray, curves: Mapping[str, Sequence[float]],
                   colors: Mapping[str, Any]):  # fmt: skip
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    for name, c in curves.items():
        y = np.asarray(c, dtype=float)
        y = np.where(np.isfinite(y), y, np.nan)
        n = min(len(t), len(y))
        ax.plot(t[:n], np.clip(y[:n], 1e-20, None), color=colors.get(name), lw=1.5, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("lead time")
    ax.set_ylabel("MSE")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return fig


def _ms(seconds: Any) -> float | None:
    try:
        return float(seconds) * 1e3
    except (TypeError, ValueError):
        return None


def _seed_gru(epochs: int) -> dict[str, Any]:
    """The seed's continuation GRU: two GRU layers of 256 over (x, y) (dynaforge's head: one
    linear layer on the last hidden state, predicting the next increment; the seed has two
    linear layers predicting the next position). It reads the last 90 observed samples (every
    context has at least 91) and is trained on 20-step closed-loop rollouts of the training
    trajectories (observed and continued) with teacher forcing, Adam, early stopping."""
    return {"hidden_size": 256, "num_layers": 2, "context_length": 90,
            "train": {"epochs": epochs, "batch_size": 64, "learning_rate": 1e-3,
                      "rollout_steps": 20, "window_stride": 5, "patience": 10,
                      "progress": False}}  # fmt: skip


def _field_train(epochs: int, patience: int) -> dict[str, Any]:
    return {"epochs": epochs, "patience": patience, "progress": False}


ParticleContinuationTask.presets = {
    "quick": {
        "task": {"n_train": 150, "n_val": 100, "n_test": 100},
        "models": {
            "physics-continuation": {},
            "field-continuation": {"train": _field_train(40, 20)},
            "gru": _seed_gru(8),
            "last-step": {},
        },
    },
    "full": {
        "task": {"n_train": 150, "n_val": 100, "n_test": 100},
        "models": {
            "physics-continuation": {},
            "field-continuation": {"train": _field_train(400, 60)},
            "gru": _seed_gru(150),
            "last-step": {},
        },
    },
}
