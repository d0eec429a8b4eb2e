"""The leading Lyapunov exponents of a system from its equations: tangent vectors by
forward-mode autodiff through the system's fixed-step map, QR re-orthonormalisation, many
short runs in one batch (the package docstring says why and what was measured)."""

from __future__ import annotations

import dataclasses
import math
import time as _time
from typing import Any

import numpy as np
import torch

from dynaforge.systems.base import AbstractSystem

#: Independent runs (initial conditions) by default. They are one batch, and on small systems a
#: step costs the same for 1 or 128 runs (per-operation overhead dominates), so many short runs
#: buy the same precision as a few long ones for a fraction of the time.
DEFAULT_RUNS = 128
#: Averaging time of each run, in Lyapunov times, when the system cites its exponent.
DEFAULT_LYAPUNOV_TIMES = 10.0
#: ... otherwise in sampling intervals (``default_dt``).
FALLBACK_TIME_STEPS = 500
#: Transient for the tangent vectors to align, in Lyapunov times (or 1/4 of the above).
DEFAULT_TRANSIENT_LYAPUNOV_TIMES = 5.0
#: Internal steps per ``default_dt`` (unless the system's ``reference_step`` is coarser).
DEFAULT_SUBSTEPS = 4
#: Internal steps between two QR re-orthonormalisations.
DEFAULT_RENORMALIZE_EVERY = 10


@dataclasses.dataclass(frozen=True, eq=False)
class LyapunovSpectrum:
    """The leading Lyapunov exponents of a system, computed from its equations.

    Attributes:
        system: registry name of the system.
        parameters: its physical parameters.
        exponents: ``(k,)`` mean over runs, in 1 / time unit, largest first.
        stderr: ``(k,)`` standard error of the mean over runs (NaN for one run).
        per_run: ``(runs, k)`` each run's exponents.
        dt: internal step of the fixed-step map (time units).
        time: averaging time of each run (after the transient).
        transient: time integrated before averaging (tangent vectors aligning).
        renormalize_every: internal steps between QR re-orthonormalisations.
        n_runs: independent runs.
        seed: seed of the initial conditions and tangent vectors.
        method: what was done, in words.
        cited: the system's cited leading exponent, or None.
        mean_divergence: time average of ``div f`` along the runs when all exponents are
            computed (their sum must equal it), else None.
        state_mean, state_std: ``(runs, dim)`` mean and std of each run's states.
        wall_time: seconds the computation took.
    """

    system: str
    parameters: dict[str, float]
    exponents: np.ndarray
    stderr: np.ndarray
    per_run: np.ndarray
    dt: float
    time: float
    transient: float
    renormalize_every: int
    n_runs: int
    seed: int
    method: str
    cited: float | None
    mean_divergence: float | None
    state_mean: np.ndarray
    state_std: np.ndarray
    wall_time: float

    @property
    def n_exponents(self) -> int:
        return int(self.exponents.shape[0])

    @property
    def leading(self) -> float:
        return float(self.exponents[0])

    @property
    def lyapunov_time(self) -> float | None:
        """``1 / λ₁``, or None when the leading exponent is not positive."""
        return 1.0 / self.leading if self.leading > 0 else None

    @property
    def total(self) -> float:
        """Sum of the computed exponents (all of them: the mean phase-space contraction)."""
        return float(self.exponents.sum())

    @property
    def relative_difference(self) -> float | None:
        """``(λ₁ - cited) / cited``, or None without a cited value."""
        if self.cited is None or self.cited == 0:
            return None
        return (self.leading - self.cited) / self.cited

    @property
    def kaplan_yorke_dimension(self) -> float | None:
        """``j + (λ₁ + … + λ_j) / |λ_{j+1}|`` with ``j`` the largest index whose partial sum
        is ≥ 0; None with fewer than two exponents or when all computed partial sums are ≥ 0
        (more exponents are needed)."""
        return kaplan_yorke_dimension(self.exponents)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {
            "system": self.system,
            "parameters": dict(self.parameters),
            "exponents": self.exponents.tolist(),
            "stderr": _nan_to_none(self.stderr.tolist()),
            "per_run": self.per_run.tolist(),
            "lyapunov_time": self.lyapunov_time,
            "cited": self.cited,
            "relative_difference": self.relative_difference,
            "sum": self.total,
            "mean_divergence": self.mean_divergence,
            "kaplan_yorke_dimension": self.kaplan_yorke_dimension,
            "dt": self.dt,
            "time": self.time,
            "transient": self.transient,
            "renormalize_every": self.renormalize_every,
            "n_runs": self.n_runs,
            "seed": self.seed,
            "method": self.method,
            "wall_time_s": self.wall_time,
        }


def kaplan_yorke_dimension(exponents: np.ndarray | list[float]) -> float | None:
    """Kaplan–Yorke dimension of an ordered (descending) list of exponents, or None."""
    lam = np.asarray(exponents, dtype=np.float64)
    if lam.size < 2:
        return None
    if lam[0] < 0:
        return 0.0
    partial = np.cumsum(lam)
    j = int(np.nonzero(partial >= 0)[0].max()) + 1  # number of exponents in the sum
    if j >= lam.size:
        return None
    return j + float(partial[j - 1]) / abs(float(lam[j]))


def default_settings(system: AbstractSystem) -> dict[str, float | int]:
    """The settings :func:`lyapunov_spectrum` uses when they are not given: internal step
    ``max(reference_step, default_dt / 4)``; per run 10 Lyapunov times after a transient of
    5 when the system cites its exponent, else 500 and 125 ``default_dt``; a QR every 10
    steps; all exponents up to dimension 4, else 3."""
    lam = system.lyapunov_exponent
    h = max(float(system.reference_step), float(system.default_dt) / DEFAULT_SUBSTEPS)
    if lam is not None and lam > 0:
        run_time = DEFAULT_LYAPUNOV_TIMES / lam
        transient = DEFAULT_TRANSIENT_LYAPUNOV_TIMES / lam
    else:
        run_time = FALLBACK_TIME_STEPS * system.default_dt
        transient = 0.25 * run_time
    return {
        "n_exponents": system.dim if system.dim <= 4 else 3,
        "dt": h,
        "time": run_time,
        "transient": transient,
        "renormalize_every": DEFAULT_RENORMALIZE_EVERY,
    }


def lyapunov_spectrum(
    system: AbstractSystem,
    n_exponents: int | None = None,
    *,
    dt: float | None = None,
    time: float | None = None,
    transient: float | None = None,
    renormalize_every: int | None = None,
    n_runs: int = DEFAULT_RUNS,
    seed: int = 0,
    progress: bool = False,
) -> LyapunovSpectrum:
    """The ``n_exponents`` leading Lyapunov exponents of ``system`` from its equations.

    Args:
        system: any :class:`~dynaforge.systems.base.AbstractSystem`.
        n_exponents: how many (default: all up to dimension 4, else 3).
        dt: internal step of the fixed-step map (default :func:`default_settings`).
        time: averaging time per run (time units).
        transient: time integrated first, not averaged (tangent vectors aligning).
        renormalize_every: internal steps between QR re-orthonormalisations.
        n_runs: independent initial conditions (``system.sample_initial_conditions``), one
            batch; the spread over runs gives the standard error.
        seed: seeds the initial conditions and the initial tangent vectors.
        progress: show progress.

    Raises:
        ValueError: a setting out of range, or the integration left finite numbers (too
            large a ``dt``).
    """
    started = _time.perf_counter()
    defaults = default_settings(system)
    dim = system.dim
    k = int(defaults["n_exponents"]) if n_exponents is None else n_exponents
    h = float(defaults["dt"]) if dt is None else dt
    run_time = float(defaults["time"]) if time is None else time
    transient = float(defaults["transient"]) if transient is None else transient
    m = int(defaults["renormalize_every"]) if renormalize_every is None else renormalize_every
    _check_int("n_exponents", k, 1, dim)
    _check_int("n_runs", n_runs, 1)
    _check_int("renormalize_every", m, 1)
    _check_positive("dt", h)
    _check_positive("time", run_time)
    if not (isinstance(transient, (int, float)) and math.isfinite(transient) and transient >= 0):
        raise ValueError(f"transient must be a finite number >= 0, got {transient!r}")

    block = h * m
    n_transient = math.ceil(transient / block - 1e-9)
    n_measure = max(1, round(run_time / block))
    generator = torch.Generator().manual_seed(seed)
    x = system.sample_initial_conditions(n_runs, generator).to(torch.float64)
    q = torch.linalg.qr(torch.randn(n_runs, dim, k, generator=generator, dtype=torch.float64)).Q
    acc = torch.zeros(n_runs, k, dtype=torch.float64)
    s1 = torch.zeros(n_runs, dim, dtype=torch.float64)
    s2 = torch.zeros(n_runs, dim, dtype=torch.float64)
    divergence = 0.0 if k == dim else None

    def step(z: torch.Tensor) -> torch.Tensor:
        return system.integrate_fixed_step(z, dt=block, steps=1, substeps=m)[:, -1]

    total = n_transient + n_measure
    bar = None
    if progress:
        from dynaforge.progress import progress_bar

        bar = progress_bar(total, desc="lyapunov", unit="block", min_interval=5.0, leave=False)
    try:
        for b in range(total):
            z = x.repeat_interleave(k, dim=0)
            v = q.transpose(1, 2).reshape(n_runs * k, dim)
            y, w = torch.func.jvp(step, (z,), (v,))
            x = y.view(n_runs, k, dim)[:, 0]
            tangents = w.view(n_runs, k, dim).transpose(1, 2)
            if not (torch.isfinite(x).all() and torch.isfinite(tangents).all()):
                raise ValueError(
                    f"{system.name}: the integration left finite numbers at t = "
                    f"{(b + 1) * block:.6g}; try a smaller dt (now {h:g})"
                )
            q, r = torch.linalg.qr(tangents)
            if b >= n_transient:
                acc += torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs())
                s1 += x
                s2 += x * x
                if divergence is not None:
                    divergence += _mean_divergence(system, x)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    measured = n_measure * block
    per_run = (acc / measured).numpy()
    mean = s1 / n_measure
    std = (s2 / n_measure - mean * mean).clamp_min(0).sqrt()
    exponents = per_run.mean(axis=0)
    stderr = per_run.std(axis=0, ddof=1) / math.sqrt(n_runs) if n_runs > 1 else np.full(k, np.nan)
    return LyapunovSpectrum(
        system=system.name,
        parameters=system.parameters(),
        exponents=exponents,
        stderr=stderr,
        per_run=per_run,
        dt=h,
        time=measured,
        transient=n_transient * block,
        renormalize_every=m,
        n_runs=n_runs,
        seed=seed,
        method=(
            f"{k} tangent vectors by forward-mode autodiff (torch.func.jvp) through the "
            f"system's {system.fixed_step_solver} map at dt = {h:g}, QR every {m} steps; "
            f"{n_runs} runs of {measured:.6g} time units after {n_transient * block:.6g}"
        ),
        cited=system.lyapunov_exponent,
        mean_divergence=None if divergence is None else divergence / n_measure,
        state_mean=mean.numpy(),
        state_std=std.numpy(),
        wall_time=_time.perf_counter() - started,
    )


def leading_exponent(system: AbstractSystem, **kwargs: Any) -> float:
    """The largest Lyapunov exponent of ``system`` (keywords as :func:`lyapunov_spectrum`)."""
    return lyapunov_spectrum(system, 1, **kwargs).leading


def _mean_divergence(system: AbstractSystem, x: torch.Tensor) -> float:
    """Mean over the batch ``x`` ``(R, dim)`` of ``div f = tr ∂f/∂x`` (forward-mode)."""
    n, dim = x.shape
    eye = torch.eye(dim, dtype=x.dtype).repeat(n, 1)
    _, jac_cols = torch.func.jvp(
        lambda z: system.rhs(0.0, z), (x.repeat_interleave(dim, dim=0),), (eye,)
    )
    return float(torch.diagonal(jac_cols.view(n, dim, dim), dim1=-2, dim2=-1).sum(-1).mean())


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}")


def _check_positive(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _nan_to_none(values: list[float]) -> list[float | None]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]
