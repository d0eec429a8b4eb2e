"""PDE surrogates on PDEBench's 1-D advection: ∂ₜu + β∂ₓu = 0 on (0, 1), periodic.

The task ``advection``: from 10 context frames, forecast the next 31 autoregressively (to
t = 2), at PDEBench's training resolution (every 4th of 1 024 cells, every 5th of 201 frames:
256 cells × 41 frames, Δt = 0.05). Data: PDEBench's initial-condition recipe, solved exactly
(a shift, ``kind="exact"``) or by the finite-volume scheme PDEBench generates its data with
(``kind="fv"``) at the full resolution, then reduced (:mod:`dynaforge.systems.advection`); or a
downloaded PDEBench file (``data=``, :func:`dynaforge.data.pdebench.read_pdebench`).

Splits, as PDEBench: the **first** ``n_test`` samples are the test part; then a validation part
of its own (model selection, early stopping and tuning: never the test part); the rest trains.
β is each trajectory's static input ``(1,)``.

Scores, on the 31 rollout frames only (the context frames are given, not predicted):
PDEBench's family with proper means (:mod:`dynaforge.metrics.pde`), nRMSE the primary one
(minimised), the seed's fitness, per-step nRMSE curves and error spectra. With
``pdebench_compatible`` the metrics are also aggregated as PDEBench's own evaluation does
(per-batch means, batches of ``eval_batch_size``), stored beside the proper ones and labelled.
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

from dynaforge.data import Trajectories
from dynaforge.metrics.pde import METRIC_KEYS, field_errors, pdebench_compatible_errors
from dynaforge.models.base import ADVECTION_EQUATION, PERIODIC_FIELD, STATIC, AbstractForecaster
from dynaforge.report.page import format_value as _num
from dynaforge.tasks.base import MINIMIZE, Column, Evaluation, Metric, check_data_file
from dynaforge.tasks.forecasting import AbstractForecastingTask, ForecastData, ValidationSet

#: Test samples whose forecasts the run folder keeps whole (the first few; plus each model's
#: best and worst).
KEPT_SAMPLES = 4


@dataclasses.dataclass
class AdvectionConfig:
    """How the advection benchmark's data is made and scored.

    Attributes:
        beta: advection speed β (PDEBench's: 0.1, 0.2, 0.4, 0.7, 1, 2, 4, 7).
        kind: ``"fv"`` (PDEBench's finite-volume data) or ``"exact"`` (the shifted initial
            condition, exact for any β and grid).
        n_samples: trajectories simulated in all (PDEBench: 10 000).
        n_test: the first ``n_test`` are the test part (PDEBench: 1 000).
        n_val: the next ``n_val`` are the validation part.
        nx, frames, dt: the simulation's grid and frames (PDEBench: 1 024 cells, 201 frames,
            Δt = 0.01).
        cell_stride, frame_stride: the reduction models see (PDEBench trains on every 4th cell
            and every 5th frame).
        context_frames: frames given before each forecast (PDEBench's ``initial_step``: 10).
        seed: seeds the initial conditions.
        data: a PDEBench-layout file instead of simulation (β from the file).
        pdebench_compatible: also report the metrics aggregated as PDEBench does.
        eval_batch_size: the batch size of that aggregation.
        device: where the data is simulated (``auto``: CUDA when present).
        cache: keep simulated data (at the reduced resolution, in PDEBench's layout) in the
            cache folder (``$DYNAFORGE_CACHE``, else ``~/.cache/dynaforge``) and read it back
            next time: finite-volume data take minutes to hours to make on a CPU.
    """

    beta: float = 4.0
    kind: str = "fv"
    n_samples: int = 10_000
    n_test: int = 1_000
    n_val: int = 500
    nx: int = 1024
    frames: int = 201
    dt: float = 0.01
    cell_stride: int = 4
    frame_stride: int = 5
    context_frames: int = 10
    seed: int = 0
    data: str | None = None
    pdebench_compatible: bool = False
    eval_batch_size: int = 50
    device: str = "auto"
    cache: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("fv", "exact"):
            raise ValueError(f"kind must be 'fv' or 'exact', got {self.kind!r}")
        if not (isinstance(self.beta, (int, float)) and math.isfinite(self.beta) and self.beta > 0):
            raise ValueError(f"beta must be a positive number, got {self.beta!r}")
        for name in ("n_samples", "n_test", "n_val", "nx", "frames", "cell_stride",
                     "frame_stride", "context_frames", "eval_batch_size"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.data is None and self.n_test + self.n_val >= self.n_samples:
            raise ValueError(
                f"n_test + n_val = {self.n_test + self.n_val} leaves no training samples of "
                f"n_samples = {self.n_samples}"
            )
        if self.reduced_frames <= self.context_frames:
            raise ValueError(
                f"{self.reduced_frames} frames after the reduction leave nothing to forecast "
                f"after {self.context_frames} context frames"
            )

    @property
    def reduced_frames(self) -> int:
        return len(range(0, self.frames, self.frame_stride))

    @property
    def horizon(self) -> int:
        return self.reduced_frames - self.context_frames


def _split(x: torch.Tensor, beta: torch.Tensor, t: torch.Tensor, cfg: AdvectionConfig,
           info: dict) -> ForecastData:  # fmt: skip
    """Test = the first ``n_test``, validation = the next ``n_val``, training = the rest."""
    n = x.shape[0]
    n_test, n_val = cfg.n_test, cfg.n_val
    if n_test + n_val >= n:
        raise ValueError(
            f"{n} samples cannot make a test part of {n_test}, a validation part of {n_val} and "
            "a training part: lower n_test / n_val"
        )
    names = tuple(f"u{j}" for j in range(x.shape[-1]))

    def part(a: int, b: int) -> Trajectories:
        return Trajectories(t=t, x=x[a:b], state_names=names, static=beta[a:b],
                            static_names=("beta",), metadata={"dt": info["dt"], **info})  # fmt: skip

    test = x[:n_test]
    c = cfg.context_frames
    return ForecastData(
        train=part(n_test + n_val, n), val=part(n_test, n_test + n_val),
        test_context=test[:, :c], test_truth=test[:, c:], test_static=beta[:n_test],
        dt=info["dt"], info=info)  # fmt: skip


class AdvectionTask(AbstractForecastingTask):
    """PDEBench 1-D advection: 10 context frames → 31-frame rollout, scored by nRMSE."""

    name = "advection"
    description = (
        "1-D advection in PDEBench's layout: 31 frames from 10, nRMSE against the data "
        "(exact shift or finite volumes)"
    )
    config_class = AdvectionConfig
    default_models: ClassVar[tuple[str, ...]] = (
        "linear-spectral", "fno", "fno-periodic", "unet", "exact-shift", "fv-coarse",
        "persistence",
    )  # fmt: skip
    baselines: ClassVar[tuple[str, ...]] = ("exact-shift", "fv-coarse", "persistence")
    metrics: ClassVar[tuple[Metric, ...]] = (
        Metric("nrmse", "nRMSE", MINIMIZE, math.inf,
               "spatial RMSE over the truth's RMS, averaged over forecasts and rollout frames"),
        Metric("rmse", "RMSE", MINIMIZE, math.inf),
        Metric("crmse", "cRMSE", MINIMIZE, math.inf, "error of the conserved integral"),
        Metric("brmse", "bRMSE", MINIMIZE, math.inf, "error at the boundary cells"),
        Metric("max_error", "max error", MINIMIZE, math.inf),
        Metric("frmse_low", "fRMSE low", MINIMIZE, math.inf),
        Metric("frmse_mid", "fRMSE mid", MINIMIZE, math.inf),
        Metric("frmse_high", "fRMSE high", MINIMIZE, math.inf),
        Metric("fitness", "fitness", MINIMIZE, math.inf,
               "the seed's (RMSE + nRMSE + bRMSE + cRMSE) / 4"),
    )  # fmt: skip
    primary: ClassVar[str] = "nrmse"
    leaderboard_columns: ClassVar[tuple[str, ...]] = (
        *METRIC_KEYS, "train_time_s", "forecast_time_per_sample_s", "n_parameters",
    )  # fmt: skip

    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # set below the class

    @property
    def validation_metrics(self) -> tuple[Metric, ...]:
        return tuple(self.metric(k) for k in ("nrmse", "fitness", "rmse"))

    provides = frozenset({PERIODIC_FIELD, ADVECTION_EQUATION})

    def requirements(self, cfg: AdvectionConfig) -> frozenset[str]:
        return frozenset({STATIC})

    def model_params(self, model: str, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {}

    # -- data -------------------------------------------------------------------------------
    def check_config(self, cfg: AdvectionConfig) -> None:
        if cfg.data is not None:
            check_data_file(cfg.data)

    def config_for(self, cfg: AdvectionConfig, purpose: str) -> AdvectionConfig:
        return cfg

    def data_message(self, cfg: AdvectionConfig) -> str:
        if cfg.data is not None:
            return f"reading {cfg.data} (every {cfg.frame_stride}th frame, {cfg.cell_stride}th cell) ..."
        return (f"simulating {cfg.n_samples} advection samples (β = {cfg.beta:g}, {cfg.kind}, "
                f"{cfg.nx} cells × {cfg.frames} frames) ...")  # fmt: skip

    def build_data(self, cfg: AdvectionConfig, *, progress: bool = False) -> ForecastData:
        if cfg.data is not None:
            return self._from_file(cfg)
        from dynaforge.systems.advection import advection_blocks, advection_info, frame_times
        from dynaforge.train import resolve_device

        cache = _cache_file(cfg) if cfg.cache else None
        if cache is not None and cache.is_file():
            return self._from_cache(cfg, cache)
        device = resolve_device(cfg.device)
        # Simulated at full resolution block by block (PDEBench's float32), each block reduced
        # at once: the full-resolution data set never has to fit in memory.
        chunks = []
        for _, block in advection_blocks(cfg.beta, cfg.n_samples, kind=cfg.kind, nx=cfg.nx,
                                         frames=cfg.frames, dt=cfg.dt, seed=cfg.seed,
                                         device=device, progress=progress):  # fmt: skip
            reduced = block[:, :: cfg.frame_stride, :: cfg.cell_stride]
            chunks.append(reduced.to("cpu", torch.float64))
        field = torch.cat(chunks)
        sim_info = advection_info(cfg.beta, cfg.n_samples, kind=cfg.kind, nx=cfg.nx,
                                  frames=cfg.frames, dt=cfg.dt, seed=cfg.seed)  # fmt: skip
        t_red = frame_times(cfg.frames, cfg.dt).to(torch.float64)[:: cfg.frame_stride]
        dt = float(t_red[1] - t_red[0])
        beta = torch.full((field.shape[0], 1), float(cfg.beta), dtype=torch.float64)
        info = {
            "pde": "advection u_t + beta u_x = 0 on (0, 1), periodic", "beta": cfg.beta,
            "kind": cfg.kind, "truth": "exact shift" if cfg.kind == "exact" else
            "finite volumes (MUSCL, upwind, CFL 0.4) at full resolution",
            "simulated": f"{cfg.nx} cells x {cfg.frames} frames, dt = {cfg.dt:g}",
            "resolution": f"{field.shape[-1]} cells x {field.shape[1]} frames", "dt": dt,
            "x0": 0.5 / cfg.nx, "dx": cfg.cell_stride / cfg.nx,
            "n_test": cfg.n_test, "n_val": cfg.n_val,
            "n_train": field.shape[0] - cfg.n_test - cfg.n_val,
            "context_frames": cfg.context_frames, "horizon_frames": cfg.horizon,
            "pdebench_compatible": cfg.pdebench_compatible,
            "eval_batch_size": cfg.eval_batch_size, "generator": sim_info,
        }  # fmt: skip
        if cache is not None:
            _write_cache(cache, field, t_red, cfg, info)
        return _split(field, beta, t_red, cfg, info)

    def _from_cache(self, cfg: AdvectionConfig, path: Path) -> ForecastData:
        from dynaforge.data.pdebench import read_pdebench

        traj = read_pdebench(path, frame_stride=1, cell_stride=1)
        info = dict(traj.metadata.get("generator") or {})
        info["cached"] = str(path)
        return _split(traj.x, traj.static, traj.t, cfg, info)

    def _from_file(self, cfg: AdvectionConfig) -> ForecastData:
        from dynaforge.data.pdebench import read_pdebench

        traj = read_pdebench(cfg.data, frame_stride=cfg.frame_stride, cell_stride=cfg.cell_stride,
                             min_frames=cfg.context_frames * cfg.frame_stride + 1)  # fmt: skip
        if traj.n_steps <= cfg.context_frames:
            raise ValueError(
                f"{cfg.data}: {traj.n_steps} frames after the reduction, not more than "
                f"context_frames = {cfg.context_frames}"
            )
        dt = traj.dt
        info = {
            "pde": "advection u_t + beta u_x = 0 on (0, 1), periodic",
            "beta": float(traj.static[0, 0]), "kind": traj.metadata.get("kind", "file"),
            "truth": f"the data of {Path(cfg.data).name}", "data": str(cfg.data),
            "resolution": f"{traj.dim} cells x {traj.n_steps} frames", "dt": dt,
            **_grid(traj.metadata.get("x")),
            "n_test": cfg.n_test, "n_val": cfg.n_val,
            "n_train": traj.n_trajectories - cfg.n_test - cfg.n_val,
            "context_frames": cfg.context_frames,
            "horizon_frames": traj.n_steps - cfg.context_frames,
            "pdebench_compatible": cfg.pdebench_compatible,
            "eval_batch_size": cfg.eval_batch_size,
        }  # fmt: skip
        return _split(traj.x, traj.static, traj.t, cfg, info)

    def build_validation(self, cfg: AdvectionConfig, data: ForecastData, n: int) -> ValidationSet:
        val = data.val
        count = min(n, val.n_trajectories)
        c = cfg.context_frames
        return ValidationSet(context=val.x[:count, :c], truth=val.x[:count, c:],
                             static=val.static[:count],
                             source=f"the first {count} of the validation part")  # fmt: skip

    # -- scoring ----------------------------------------------------------------------------
    def score(self, pred: torch.Tensor, truth: torch.Tensor) -> dict[str, Any]:
        return field_errors(pred, truth)

    def evaluate(self, model: AbstractForecaster, data: ForecastData) -> Evaluation:
        horizon = data.test_truth.shape[1]
        t0 = time.perf_counter()
        pred = model.forecast(data.test_context, horizon, data.test_static)
        elapsed = time.perf_counter() - t0
        scores: dict[str, Any] = {"kind": model.kind, **field_errors(pred, data.test_truth)}
        scores["error_spectrum"] = _error_spectrum(pred, data.test_truth)
        if data.info.get("pdebench_compatible"):
            scores["pdebench"] = pdebench_compatible_errors(
                pred, data.test_truth, batch_size=int(data.info["eval_batch_size"])
            )
        scores["forecast_time_per_sample_s"] = elapsed / max(pred.shape[0], 1)
        scores["n_parameters"] = model.n_parameters
        each = np.asarray(scores["nrmse_values"], dtype=float)
        finite = np.where(np.isfinite(each), each, np.inf)
        best, worst = int(np.argmin(finite)), int(np.argmax(finite))
        keep = sorted({*range(min(KEPT_SAMPLES, pred.shape[0])), best, worst})
        scores["best_sample"], scores["worst_sample"] = best, worst
        with np.errstate(over="ignore"):
            arrays = {f"pred__{model.name}": pred[keep].numpy().astype(np.float32),
                      f"samples__{model.name}": np.asarray(keep)}  # fmt: skip
        return Evaluation(scores, arrays)

    def run_arrays(self, data: ForecastData) -> dict[str, np.ndarray]:
        c = data.test_context.shape[1]
        nx = data.test_truth.shape[-1]
        x0, dx = data.info.get("x0", 0.5 / nx), data.info.get("dx", 1.0 / nx)
        return {
            "t": np.arange(c, c + data.test_truth.shape[1]) * data.dt,
            "x": x0 + dx * np.arange(nx),
            "truth": data.test_truth.float().numpy(),  # every test sample: the report's truth
        }

    def score_line(self, scores: Mapping[str, Any]) -> str:
        return (f"nRMSE {scores['nrmse']:.4g}, RMSE {scores['rmse']:.4g}, fitness "
                f"{scores['fitness']:.4g}")  # fmt: skip

    def objective_text(self, metric: Metric, n: int) -> str:
        return f"validation {metric.label} over {n} validation samples (rollout frames only)"

    def table_title(self, doc: Mapping[str, Any]) -> str:
        task = doc.get("task") or {}
        return (f"advection β = {task.get('beta')} ({task.get('kind')}) — nRMSE over "
                f"{task.get('horizon_frames')} rollout frames")  # fmt: skip

    def table_columns(self) -> list[Column]:
        return [
            Column("nRMSE", lambda r: _num(r.get("nrmse"), ".3e")),
            Column("RMSE", lambda r: _num(r.get("rmse"), ".3e")),
            Column("fitness", lambda r: _num(r.get("fitness"), ".3e")),
            Column("cRMSE", lambda r: _num(r.get("crmse"), ".2e")),
            Column("bRMSE", lambda r: _num(r.get("brmse"), ".2e")),
            Column("fRMSE l/m/h", lambda r: " / ".join(
                _num(r.get(k), ".1e") for k in ("frmse_low", "frmse_mid", "frmse_high"))),
            Column("fit s", lambda r: _num(r.get("train_time_s"), ".1f")),
            Column("ms/sample", lambda r: _num(_ms(r.get("forecast_time_per_sample_s")),
                                               ".3g")),
            Column("params", lambda r: _num(r.get("n_parameters"), ".0f")),
        ]  # fmt: skip

    def leaderboard_text(self, doc: Mapping[str, Any]) -> str:
        task = doc.get("task") or {}
        text = (
            f"Models ranked by nRMSE on the {task.get('horizon_frames')} rollout frames (the "
            f"{task.get('context_frames')} context frames are given, never scored), proper "
            "means over the test samples; PDEBench's family beside it (cRMSE: the conserved "
            "integral; bRMSE: boundary cells; fRMSE by Fourier band: modes < 4, 4–11, ≥ 12) and "
            "the seed's fitness. Test = the first samples, as PDEBench; model selection and "
            "early stopping on a separate validation part."
        )
        if task.get("pdebench_compatible"):
            text += (" PDEBench-aggregated values (per-batch means) are in metrics.json under "
                     "'pdebench'.")  # fmt: skip
        return text

    def summary(self, doc: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
        task = doc.get("task") or {}
        text = (f"Advection β = {task.get('beta')}, {task.get('kind')} data at "
                f"{task.get('resolution')}: {len(rows)} models, {task.get('n_test')} test "
                "samples. ")  # fmt: skip
        ranked = [r for r in rows if "error" not in r]
        if ranked:
            best = ranked[0]
            text += f"Best nRMSE {_num(best.get('nrmse'), '.3e')} by {best['model']}."
            learned = [r for r in ranked if r.get("kind") == "learned"]
            if learned and learned[0] is not best:
                text += (f" Best learned: {learned[0]['model']}, "
                         f"{_num(learned[0].get('nrmse'), '.3e')}.")  # fmt: skip
        return text + f" Truth: {task.get('truth')}."

    def report_sections(
        self,
        run_dir: Path,
        doc: Mapping[str, Any],
        rows: Sequence[Mapping[str, Any]],
        arrays: Mapping[str, np.ndarray],
        figure: Callable[..., Any],
    ) -> list[Any]:
        from dynaforge.report import plots
        from dynaforge.report.page import Section

        models = doc.get("models") or {}
        order = [r["model"] for r in rows if "error" not in r]
        colors = plots.model_colors(order)
        sections = []
        t = arrays.get("t")
        curves = {m: np.asarray(models[m]["nrmse_by_step"], dtype=float)[None]
                  for m in order if models[m].get("nrmse_by_step")}  # fmt: skip
        if t is not None and curves:
            sections.append(Section(
                "Error growth", "nRMSE of each rollout frame, averaged over the test samples.",
                figures=[figure(plots.plot_error_growth(
                    t, curves, eps=None, colors=colors, xlabel="t", ylabel="nRMSE"),
                    "error_growth", "nRMSE by rollout frame.")]))  # fmt: skip
        spectra = {m: models[m]["error_spectrum"] for m in order
                   if models[m].get("error_spectrum")}  # fmt: skip
        if spectra:
            sections.append(Section(
                "Error spectra", "Where in frequency each model's error lives.",
                figures=[figure(plots.plot_error_spectra(spectra, colors=colors),
                                "error_spectra", "Error amplitude by Fourier mode.")]))  # fmt: skip
        truth = arrays.get("truth")
        learned = [m for m in order if models[m].get("kind") == "learned"]
        show = learned[:1] or order[:1]
        figs = []
        for m in show:
            kept = arrays.get(f"samples__{m}")
            pred = arrays.get(f"pred__{m}")
            if truth is None or kept is None or pred is None:
                continue
            for which in ("best", "worst"):
                sample = models[m].get(f"{which}_sample")
                where = np.flatnonzero(kept == sample)
                if sample is None or not where.size:
                    continue
                fig = plots.plot_space_time(
                    truth[sample], pred[where[0]], t=t, x=arrays.get("x"),
                    title=f"{m}: {which} test sample ({sample}), nRMSE "
                          f"{_num(models[m]['nrmse_values'][sample], '.3e')}")  # fmt: skip
                figs.append(
                    figure(
                        fig,
                        f"space_time_{m}_{which}",
                        f"{m}, its {which} test sample: truth, prediction, error.",
                    )
                )
        if figs:
            sections.append(Section("Space–time", "The best learned model's best and worst "
                                    "test samples.", figures=figs))  # fmt: skip
        return sections


def _grid(x: Any) -> dict[str, float]:
    """``x0`` and ``dx`` of a file's kept cell centres (for the report's axes)."""
    if isinstance(x, list) and len(x) > 1:
        return {"x0": float(x[0]), "dx": float(x[1] - x[0])}
    return {}


_CACHE_VERSION = 1


def _cache_file(cfg: AdvectionConfig) -> Path:
    """Where the data of ``cfg`` is cached: named by a hash of every setting that shapes it."""
    import hashlib
    import json
    import os

    folder = Path(os.environ.get("DYNAFORGE_CACHE") or Path.home() / ".cache" / "dynaforge")
    shaping = {k: getattr(cfg, k) for k in ("beta", "kind", "n_samples", "nx", "frames", "dt",
                                             "cell_stride", "frame_stride", "seed")}  # fmt: skip
    key = hashlib.sha256(json.dumps([_CACHE_VERSION, shaping], sort_keys=True).encode())
    return (
        folder
        / f"advection-beta{cfg.beta:g}-{cfg.kind}-{cfg.n_samples}-{key.hexdigest()[:12]}.hdf5"
    )


def _write_cache(path: Path, field: torch.Tensor, t: torch.Tensor, cfg: AdvectionConfig,
                 info: dict) -> None:  # fmt: skip
    """Keep the reduced data (float32, as simulated) for the next run; a cache that cannot be
    written costs only the next run's time."""
    from dynaforge.data.pdebench import write_pdebench

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        x = (torch.arange(cfg.nx, dtype=torch.float64) + 0.5)[:: cfg.cell_stride] / cfg.nx
        write_pdebench(path, field.to(torch.float32), x, t, cfg.beta, metadata=info)
    except OSError:
        pass


def _error_spectrum(pred: torch.Tensor, truth: torch.Tensor) -> list[float]:
    """RMS over forecasts and frames of each Fourier mode's error amplitude (×1/nx)."""
    e = pred.to(torch.float64) - truth.to(torch.float64)
    spec = torch.fft.rfft(e, dim=-1).abs().pow(2).mean(dim=(0, 1)).sqrt() / e.shape[-1]
    return [float(v) if math.isfinite(float(v)) else math.inf for v in spec]


def _ms(seconds: Any) -> float | None:
    try:
        return float(seconds) * 1e3
    except (TypeError, ValueError):
        return None


def _train(epochs: int, **extra: Any) -> dict[str, Any]:
    """A field model's training loop: through the full 31-frame rollout, by epochs only (no
    time cap: reproducible), no early stopping; PDEBench's optimiser settings where it has
    them (Adam at 1e-3, weight decay 1e-4, StepLR halving every 100 epochs, no clipping)."""
    return {
        "epochs": epochs, "batch_size": 32, "learning_rate": 1e-3, "schedule": "step",
        "gamma": 0.5, "step_size": 100, "weight_decay": 1e-4, "grad_clip": None,
        "rollout_steps": 31, "teacher_forcing": False, "patience": 0, "max_time_s": None,
        **extra,
    }  # fmt: skip


# quick: ≤ 10 min on 2 CPU cores (exact data, 1 300 samples, a few epochs: a smoke run of
# the protocol, not its numbers); full: PDEBench's protocol (10 000 finite-volume samples, 500
# epochs as PDEBench trains) — hours on a GPU, days on a CPU.
AdvectionTask.presets = {
    "quick": {
        "task": {"kind": "exact", "n_samples": 1300, "n_test": 200, "n_val": 100},
        "models": {
            "linear-spectral": {},
            "fno": {"train": _train(5)},
            "fno-periodic": {"train": _train(5)},
            "unet": {"train": _train(2)},
            "exact-shift": {}, "fv-coarse": {}, "persistence": {},
            "pinn": {"epochs": 2000},
        },
    },
    "full": {
        "task": {"kind": "fv", "n_samples": 10_000, "n_test": 1_000, "n_val": 500},
        "models": {
            "linear-spectral": {},
            "fno": {"train": _train(500)},
            "fno-periodic": {"train": _train(500)},
            "unet": {"train": _train(500)},
            "exact-shift": {}, "fv-coarse": {}, "persistence": {},
            "pinn": {"epochs": 15_000},
        },
    },
}  # fmt: skip
