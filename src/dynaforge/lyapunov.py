"""Lyapunov exponents: computed from a system's equations, estimated from data alone.

**From the equations** (:func:`lyapunov_spectrum`): ``k`` tangent vectors are carried along
the system's own fixed-step map (``system.integrate_fixed_step``: RK4 for an ODE, ETDRK4 for a
stiff PDE) by forward-mode autodiff (``torch.func.jvp``), re-orthonormalised by a QR
decomposition every few steps, and the logs of ``R``'s diagonal are accumulated (Benettin et
al. 1980; Shimada & Nagashima 1979). Several runs from independent initial conditions on the
attractor are integrated as one batch; their spread gives the standard error. The tangent
vectors of all runs are folded into the batch axis (the state repeated ``k`` times, each copy
with its own tangent) rather than ``vmap``-ed over: the same numbers, 1.5x faster on small
systems (measured on Lorenz-63, 8 runs x 3 vectors, one thread), and it asks nothing of a
system beyond the batched ``(N, dim)`` map every system already has. A linear system's exact
exponents (real parts of its eigenvalues) are reproduced to 4e-8 (``tests/test_lyapunov.py``).

Cost: in torch 2.13 an elementwise operation between a tangent-carrying tensor and a plain
one (a Python scalar included: ``sigma * x``) goes through a Python decomposition, 150-300 µs
instead of ~5 µs, so a Lorenz-63 RK4 step with tangents costs ~2 ms against 0.1 ms without,
whatever the batch. Hence the defaults: many short runs in one batch (128 runs of 10 Lyapunov
times after 5) rather than a few long ones, the same precision for a fraction of the time.
A system whose finite-time exponents converge slowly (sticky Hamiltonian chaos: Hénon–Heiles
gives 0.052 over 333 time units, 0.049 over 3000, against the cited long-time 0.045) needs
``time`` far beyond the default.

**From data** (:func:`estimate_from_data`), two methods, one a cross-check of the other:

- ``"model"``: SINDy (weak form, :class:`~dynaforge.models.sindy.SINDy`) is fitted to the
  data, checked (simulated from data states it must stay bounded and reproduce the data's mean
  and spread), and the tangent routine above is run on the fitted equations. Uncertainty: the
  spread of the exponent over models fitted to disjoint time segments of the data (so it
  includes the model's own error), and the tangent runs' standard error. Exact when the
  dynamics lie in the library (Lorenz-63 and Rössler are quadratic); robust to observation
  noise, because the weak form is.
- ``"neighbours"``: model-free nearest-neighbour divergence on the state vectors (Rosenstein,
  Collins & De Luca, Physica D 65, 117 (1993)): each reference point's nearest neighbour
  outside a temporal exclusion window (one mean period), the median over pairs of the log
  separation as a function of time, a line fitted to its initial rise. One change for flows:
  the separation is measured *transverse to the flow*, from the reference point to the
  neighbour's orbit (the neighbour's phase re-aligned at every step by a Newton step on a
  cubic interpolation of its samples). Without it the along-flow part of the separation, which
  never grows (the zero exponent), hides the growth for tens of time units on a slow system;
  the plain method gives 0.058 instead of 0.071 on the acceptance Rössler data. Uncertainty:
  a block bootstrap over reference points plus the spread over three fit windows. This is the
  fallback when no model passes its check, and always reported as the cross-check.

``nolds.lyap_r`` (the maintained implementation of Rosenstein's method) was considered and not
used: it takes one-dimensional series only (a delay embedding of one component) and builds the
full ``T x T`` distance matrix, 13 GB for the 40 000 points of the acceptance data.

Measured (seed 0, defaults; data from DOP853 at 1e-10, noise in units of each component's
std). From the equations: Lorenz-63 0.902 ± 0.011, -0.001, -14.568 (sum -13.6666, exact
-13.6667; Kaplan–Yorke 2.062); Rössler 0.0695 ± 0.0013; Lorenz-96 1.668 ± 0.026; KS (L = 22)
0.0481 ± 0.0012; linear systems to 4e-8. From data, Rössler (dt = 0.1, 40 000 points):
model 0.0709 ± 0.0023, neighbours 0.068 ± 0.0045 (cited 0.0714); with 1 / 3 / 5 % noise the
model gives 0.066 / 0.074 / 0.072 and the neighbours 0.043 / 0.033 / 0.034. Lorenz-63
(dt = 0.01 and 0.04, 40 000 and 20 000 points): model within 2 % of 0.906 at 0-5 % noise,
neighbours +2 % / -4 % clean and 22-36 % low with noise. The model's uncertainty counts the
spread between segments, not a bias that noise gives every segment alike (Rössler at 1 %:
0.066 ± 0.002); the neighbour method is biased low by any noise that fills the small
separations it needs, which is why the model is preferred when it passes its check, and a
disagreement of more than 35 % is reported as a warning.
"""

from __future__ import annotations

import dataclasses
import math
import time as _time
from collections.abc import Callable
from typing import Any, ClassVar

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


# ------------------------------------------------------------------------------ equations


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


# ------------------------------------------------------------------------------ data


@dataclasses.dataclass(frozen=True, eq=False)
class DataLyapunovEstimate:
    """The leading Lyapunov exponent estimated from data alone.

    Attributes:
        value: the estimate (1 / time unit).
        stderr: its standard uncertainty (see ``method``).
        interval: ``value ± 1.96 stderr``.
        method: ``"model"`` or ``"neighbours"`` (see the module docstring).
        description: what was done, in words.
        dt: the data's sampling interval.
        n_points: samples used (all trajectories).
        details: method-specific facts (fit window, pairs, equations, per-segment values ...).
        cross_check: the other method's estimate, or None.
        warnings: things a reader must know (a model rejected, the methods disagree).
    """

    value: float
    stderr: float
    method: str
    description: str
    dt: float
    n_points: int
    details: dict[str, Any]
    cross_check: DataLyapunovEstimate | None = None
    warnings: tuple[str, ...] = ()

    @property
    def interval(self) -> tuple[float, float]:
        return (self.value - 1.96 * self.stderr, self.value + 1.96 * self.stderr)

    @property
    def lyapunov_time(self) -> float | None:
        """``1 / value``, or None when the estimate is not positive."""
        return 1.0 / self.value if self.value > 0 else None

    @property
    def lyapunov_time_interval(self) -> tuple[float, float] | None:
        lo, hi = self.interval
        if self.value <= 0:
            return None
        return (1.0 / hi, math.inf if lo <= 0 else 1.0 / lo)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "stderr": self.stderr,
            "interval": list(self.interval),
            "lyapunov_time": self.lyapunov_time,
            # An unbounded end (the interval reaches λ ≤ 0) is null: JSON has no infinity.
            "lyapunov_time_interval": (
                None
                if self.lyapunov_time_interval is None
                else [None if math.isinf(v) else v for v in self.lyapunov_time_interval]
            ),
            "method": self.method,
            "description": self.description,
            "dt": self.dt,
            "n_points": self.n_points,
            "details": _jsonable(self.details),
            "cross_check": None if self.cross_check is None else self.cross_check.to_dict(),
            "warnings": list(self.warnings),
        }


#: Fewest samples (all trajectories together) :func:`estimate_from_data` accepts.
MIN_POINTS = 2000
#: Methods of :func:`estimate_from_data`.
DATA_METHODS = ("auto", "model", "neighbours")


def estimate_from_data(
    x: Any,
    dt: float | None = None,
    *,
    method: str = "auto",
    library: str = "poly2",
    n_segments: int = 4,
    max_reference_points: int = 4000,
    n_bootstrap: int = 200,
    seed: int = 0,
    progress: bool = False,
) -> DataLyapunovEstimate:
    """Estimate the leading Lyapunov exponent from trajectories alone.

    Args:
        x: states ``(T, D)`` or ``(N, T, D)`` (array or tensor) sampled every ``dt``, or a
            :class:`~dynaforge.data.Trajectories` (then ``dt`` defaults to its own).
        dt: sampling interval (time units).
        method: ``"auto"`` (the model when it passes its check, else the neighbours; the
            other one as the cross-check), ``"model"`` or ``"neighbours"`` (module docstring).
        library: SINDy library of the model (``"poly2"``, ``"poly3"``, ...).
        n_segments: disjoint time segments the model is refitted on for its uncertainty.
        max_reference_points: reference points of the neighbour method.
        n_bootstrap: bootstrap resamples of the neighbour method.
        seed: seeds every random choice.
        progress: show progress.

    Raises:
        ValueError: bad shapes, non-finite values, too few points (under :data:`MIN_POINTS`,
            or too few for the divergence to be followed until it saturates), or, with
            ``method="model"``, no model that passes its check.
    """
    if method not in DATA_METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(DATA_METHODS)}")
    states, dt = _checked_data(x, dt)
    _check_int("n_segments", n_segments, 0)
    _check_int("max_reference_points", max_reference_points, 100)
    _check_int("n_bootstrap", n_bootstrap, 10)
    try:
        neighbours = _neighbour_estimate(
            states,
            dt,
            max_reference_points=max_reference_points,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
        neighbours_failed = None
    except _DataTooShort as exc:
        if method == "neighbours":
            raise
        neighbours, neighbours_failed = None, str(exc)
    if method == "neighbours":
        return neighbours
    try:
        model = _model_estimate(
            states,
            dt,
            library=library,
            n_segments=n_segments,
            time_scale=_time_scale(neighbours, states, dt),
            seed=seed,
            progress=progress,
        )
    except _ModelRejected as exc:
        if neighbours is None:
            raise ValueError(
                f"no estimate: the nearest-neighbour method failed ({neighbours_failed}), and "
                f"so did the model ({exc})"
            ) from None
        if method == "model":
            raise ValueError(f"no model estimate: {exc}") from None
        return dataclasses.replace(
            neighbours,
            warnings=(
                *neighbours.warnings,
                f"the model-based estimate was not used: {exc}; this is the model-free "
                "nearest-neighbour estimate",
            ),
        )
    warnings = list(model.warnings)
    if neighbours is None:
        warnings.append(f"no nearest-neighbour cross-check: {neighbours_failed}")
        return dataclasses.replace(model, warnings=tuple(warnings))
    rel = abs(neighbours.value - model.value) / max(abs(model.value), 1e-300)
    if rel > 0.35:
        warnings.append(
            f"the two methods disagree: model {model.value:.4g}, nearest neighbours "
            f"{neighbours.value:.4g} ({rel:.0%} apart); the neighbour method is biased low "
            "by observation noise, the model by terms its library lacks"
        )
    return dataclasses.replace(model, cross_check=neighbours, warnings=tuple(warnings))


def _checked_data(x: Any, dt: float | None) -> tuple[np.ndarray, float]:
    from dynaforge.data import Trajectories

    if isinstance(x, Trajectories):
        if x.is_ragged:
            raise ValueError("trajectories of different lengths are not supported here")
        if len(x.state_shape) != 1:
            raise ValueError(f"need vector states, got states shaped {x.state_shape}")
        dt = x.dt if dt is None else dt
        x = x.x
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data must be a numeric array: {exc}") from None
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(f"data must be shaped (T, D) or (N, T, D), got {arr.shape}")
    if dt is None:
        raise ValueError("the sampling interval dt is needed")
    _check_positive("dt", dt)
    bad = ~np.isfinite(arr)
    if bad.any():
        n, t, d = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(
            f"data has {int(bad.sum())} non-finite values (the first at trajectory {n}, "
            f"step {t}, component {d}); remove or fill them first"
        )
    n_points = arr.shape[0] * arr.shape[1]
    if n_points < MIN_POINTS:
        raise ValueError(
            f"too few points for a Lyapunov exponent: {n_points} samples, need at least "
            f"{MIN_POINTS} (and enough time for nearby states to separate)"
        )
    std = arr.reshape(-1, arr.shape[-1]).std(axis=0)
    if np.any(std == 0):
        raise ValueError(f"state component {int(np.argmin(std))} is constant")
    return arr, float(dt)


def _mean_period(z: np.ndarray) -> float:
    """Power-weighted mean period (samples) of standardised data ``(N, T, D)``."""
    spec = np.abs(np.fft.rfft(z - z.mean(axis=1, keepdims=True), axis=1)) ** 2
    power = spec.sum(axis=(0, 2))[1:]
    freqs = np.fft.rfftfreq(z.shape[1])[1:]
    return float(np.sum(power) / np.sum(freqs * power))


_NODES = np.array([-1.0, 0.0, 1.0, 2.0])


def _lagrange(frac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cubic Lagrange weights (value, derivative) on nodes -1, 0, 1, 2 at ``frac`` in [0, 1)."""
    w = np.empty(frac.shape + (4,))
    dw = np.empty(frac.shape + (4,))
    for a in range(4):
        others = [_NODES[b] for b in range(4) if b != a]
        den = np.prod([_NODES[a] - o for o in others])
        t0, t1, t2 = (frac - o for o in others)
        w[..., a] = t0 * t1 * t2 / den
        dw[..., a] = (t1 * t2 + t0 * t2 + t0 * t1) / den
    return w, dw


def _orbit_point(z: np.ndarray, idx: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position and velocity (per sample) of the flattened orbit ``z`` at ``idx + s``."""
    base = np.floor(s).astype(np.int64)
    w, dw = _lagrange(s - base)
    rows = idx + base
    pts = np.stack([z[rows + j] for j in (-1, 0, 1, 2)], axis=1)  # (n, 4, D)
    return np.einsum("nj,njd->nd", w, pts), np.einsum("nj,njd->nd", dw, pts)


class _DataTooShort(ValueError):
    pass


def _neighbour_estimate(
    x: np.ndarray, dt: float, *, max_reference_points: int, n_bootstrap: int, seed: int
) -> DataLyapunovEstimate:
    from scipy.spatial import cKDTree

    n_traj, steps, dim = x.shape
    flat = x.reshape(-1, dim)
    z = ((x - flat.mean(axis=0)) / flat.std(axis=0)).reshape(n_traj, steps, dim)
    window = max(1, math.ceil(_mean_period(z)))
    k_cap = min(steps // 3, 40 * window)
    pad = 4  # interpolation nodes and phase shifts of up to 2 samples on each side
    first, last = pad, steps - k_cap - pad  # valid start indices [first, last) per trajectory
    n_valid = n_traj * max(0, last - first)
    if k_cap < 20 or n_valid < 200:
        raise _DataTooShort(
            f"too few points for the nearest-neighbour estimate: {n_traj} trajectory(ies) of "
            f"{steps} samples, with a mean period of {window} samples; need trajectories "
            f"several times longer than the {k_cap}-sample horizon the divergence is followed"
        )
    rng = np.random.default_rng(seed)
    starts = np.arange(first, last)
    valid = (np.arange(n_traj)[:, None] * steps + starts[None, :]).reshape(-1)  # flat indices
    refs = np.sort(rng.choice(valid, size=min(max_reference_points, valid.size), replace=False))
    zf = z.reshape(-1, dim)
    tree = cKDTree(zf[valid])
    n_query = min(2 * window + 2, valid.size)
    dist, cand = tree.query(zf[refs], k=n_query)
    cand = valid[cand]
    same_traj = cand // steps == refs[:, None] // steps
    ok = (~same_traj | (np.abs(cand - refs[:, None]) > window)) & (dist > 0)
    has = ok.any(axis=1)
    refs, nbrs = refs[has], cand[has, ok[has].argmax(axis=1)]
    if refs.size < 100:
        raise _DataTooShort(
            f"too few points: only {refs.size} reference points have a neighbour outside the "
            f"exclusion window of {window} samples"
        )

    # Follow each pair, measuring the separation transverse to the flow (module docstring).
    shift = np.zeros(refs.size)
    logs = np.empty((refs.size, k_cap + 1))
    stop = k_cap
    for k in range(k_cap + 1):
        r = zf[refs + k]
        for _ in range(2 if k == 0 else 1):
            p, v = _orbit_point(zf, nbrs + k, shift)
            shift = np.clip(
                shift + ((r - p) * v).sum(1) / np.maximum((v * v).sum(1), 1e-300), -2, 2
            )
        p, _ = _orbit_point(zf, nbrs + k, shift)
        logs[:, k] = np.log(np.maximum(np.linalg.norm(r - p, axis=1), 1e-300))
        if k >= 200 and k % 50 == 0 and _saturated(logs[:, : k + 1].mean(axis=0)):
            stop = k
            break
    logs = logs[:, : stop + 1]
    curve = np.median(logs, axis=0)
    times = dt * np.arange(stop + 1)
    if not _saturated(logs.mean(axis=0)):
        raise _DataTooShort(
            f"too few points: the separation of nearby states has not saturated after "
            f"{stop * dt:.6g} time units ({stop} samples, a third of a trajectory); longer "
            "trajectories are needed"
        )
    y0 = float(curve[:3].mean())
    plateau = float(np.median(curve[int(0.75 * curve.size) :]))
    rise = plateau - y0
    if rise < 1.5:
        raise _DataTooShort(
            f"too few points (or too much noise): the separation grows only {rise:.2f} "
            "e-folds before it saturates (need 1.5): nearest neighbours are not close enough"
        )
    fits = {}
    for lo, hi in ((0.0, 0.4), (0.0, 0.3), (0.05, 0.5)):
        a = int(np.argmax(curve >= y0 + lo * rise)) if lo > 0 else 0
        b = int(np.argmax(curve >= y0 + hi * rise))
        if b - a < 4:
            raise _DataTooShort(
                f"the sampling is too coarse: the linear rise of the divergence spans "
                f"{b - a + 1} samples (need 5); sample more often"
            )
        fits[(lo, hi)] = (a, b, float(np.polyfit(times[a : b + 1], curve[a : b + 1], 1)[0]))
    a, b, value = fits[(0.0, 0.4)]
    window_spread = (max(f[2] for f in fits.values()) - min(f[2] for f in fits.values())) / 2

    # Block bootstrap over reference points (blocks of nearby start times are correlated).
    cols = np.unique(np.linspace(a, b, min(b - a + 1, 60)).round().astype(np.int64))
    n_blocks = min(50, refs.size // 10)
    block_of = np.minimum((np.argsort(np.argsort(refs)) * n_blocks) // refs.size, n_blocks - 1)
    members = [np.nonzero(block_of == i)[0] for i in range(n_blocks)]
    sub = logs[:, cols]
    slopes = np.empty(n_bootstrap)
    for i in range(n_bootstrap):
        pick = np.concatenate([members[j] for j in rng.integers(0, n_blocks, n_blocks)])
        slopes[i] = np.polyfit(times[cols], np.median(sub[pick], axis=0), 1)[0]
    boot = float(slopes.std(ddof=1))
    stderr = math.hypot(boot, window_spread)
    return DataLyapunovEstimate(
        value=value,
        stderr=stderr,
        method="neighbours",
        description=(
            "nearest-neighbour divergence (Rosenstein et al. 1993) on the standardised state "
            f"vectors, separation transverse to the flow: {refs.size} pairs, exclusion window "
            f"{window} samples, median log separation fitted over t = {times[a]:.4g}..."
            f"{times[b]:.4g}; uncertainty: block bootstrap ({n_bootstrap}) and fit windows"
        ),
        dt=dt,
        n_points=n_traj * steps,
        details={
            "pairs": int(refs.size),
            "exclusion_window_samples": window,
            "fit_start": float(times[a]),
            "fit_end": float(times[b]),
            "rise_e_folds": rise,
            "bootstrap_stderr": boot,
            "fit_window_spread": window_spread,
            "fit_windows": {f"{lo:g}-{hi:g}": f[2] for (lo, hi), f in fits.items()},
            "times": times,
            "median_log_separation": curve,
        },
    )


def _saturated(curve: np.ndarray) -> bool:
    """Whether the mean log separation has flattened: slope over its last third under a
    tenth of the slope over its first third."""
    n = curve.size // 3
    head = curve[n] - curve[0]
    tail = curve[-1] - curve[-1 - n]
    return bool(head > 0 and tail < 0.1 * head)


def _data_period(x: np.ndarray, dt: float) -> float:
    flat = x.reshape(-1, x.shape[-1])
    return _mean_period((x - flat.mean(0)) / flat.std(0)) * dt


def _time_scale(neighbours: DataLyapunovEstimate | None, x: np.ndarray, dt: float) -> float:
    """A time scale for the model's tangent runs: the neighbour estimate's Lyapunov time,
    bounded below by one mean period (ten mean periods without a neighbour estimate)."""
    period = _data_period(x, dt)
    if neighbours is not None and neighbours.value > 0:
        return max(1.0 / neighbours.value, period)
    return 10 * period


class _ModelRejected(Exception):
    pass


@dataclasses.dataclass(frozen=True, eq=False)
class _FittedEquations(AbstractSystem):
    """An ensemble of ``M`` fitted models ``dx/dt = Ξ_m Θ(x)`` as one system: the batch
    ``(B, D)`` is model-major (rows ``[i B/M, (i+1) B/M)`` belong to model ``i``), which is
    how :func:`lyapunov_spectrum` lays out ``n_runs = M × runs`` (runs, then tangent copies).
    Model ``i``'s initial conditions are drawn from ``pool[i]`` ``(P, D)``: states of its own
    trajectories, past their transient (on its own attractor, not on the noisy data)."""

    name: ClassVar[str] = "fitted-model"
    state_names: ClassVar[tuple[str, ...]] = ()
    default_dt: ClassVar[float] = 1.0

    features: Callable[[torch.Tensor], torch.Tensor] = dataclasses.field(default=None)  # type: ignore[assignment]
    coefficients: torch.Tensor = dataclasses.field(default=None)  # type: ignore[assignment]
    pool: torch.Tensor = dataclasses.field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:  # fields are not physical parameters: no number check
        pass

    @property
    def dim(self) -> int:
        return int(self.coefficients.shape[-1])

    def parameters(self) -> dict[str, float]:
        return {}

    def rhs(self, t: float, x: torch.Tensor) -> torch.Tensor:
        n_models = self.coefficients.shape[0]
        theta = self.features(x).reshape(n_models, -1, self.coefficients.shape[1])
        return torch.bmm(theta, self.coefficients).reshape(x.shape)

    def sample_initial_conditions(self, n: int, generator: torch.Generator) -> torch.Tensor:
        n_models, size = self.pool.shape[:2]
        if n % n_models:
            raise ValueError(f"need a multiple of {n_models} initial conditions, got {n}")
        idx = torch.randint(0, size, (n_models, n // n_models), generator=generator)
        return torch.stack([self.pool[i, idx[i]] for i in range(n_models)]).reshape(n, -1)


def _torch_features(library) -> Callable[[torch.Tensor], torch.Tensor]:
    """The fitted SINDy library ``Θ`` as a torch function ``(..., D) -> (..., P)``."""
    import sympy

    symbols = [sympy.Symbol(name) for name in library.state_names_]
    exprs = library.to_sympy(symbols)
    functions = {
        name: getattr(torch, name)
        for name in ("sin", "cos", "tan", "exp", "log", "sqrt", "tanh", "sinh", "cosh", "abs")
    }
    functions["Abs"] = torch.abs
    fn = sympy.lambdify(symbols, exprs, modules=[functions, "math"])

    def features(x: torch.Tensor) -> torch.Tensor:
        cols = fn(*x.unbind(-1))
        return torch.stack(
            [c if isinstance(c, torch.Tensor) else torch.full_like(x[..., 0], c) for c in cols],
            dim=-1,
        )

    return features


def _model_estimate(
    x: np.ndarray,
    dt: float,
    *,
    library: str,
    n_segments: int,
    time_scale: float,
    seed: int,
    progress: bool,
    runs_per_model: int = 64,
    lyapunov_times: float = 15.0,
) -> DataLyapunovEstimate:
    from dynaforge.data import Trajectories
    from dynaforge.models.sindy import SimulationBlowUpError, SINDy

    n_traj, steps, dim = x.shape
    names = tuple(f"x{i}" for i in range(dim))

    def fit(part: np.ndarray) -> SINDy:
        traj = Trajectories(
            t=torch.arange(part.shape[1], dtype=torch.float64) * dt,
            x=torch.from_numpy(np.ascontiguousarray(part)),
            state_names=names,
        )
        return SINDy(library=library).fit(traj)

    try:
        models = [fit(x)]
    except ValueError as exc:
        raise _ModelRejected(f"SINDy ({library}) could not be fitted: {exc}") from None
    seg_len = steps // n_segments if n_segments else 0
    skipped = 0
    if n_segments >= 2 and seg_len >= 500:
        for i in range(n_segments):
            try:
                models.append(fit(x[:, i * seg_len : (i + 1) * seg_len]))
            except ValueError:
                skipped += 1
    flat = x.reshape(-1, dim)
    mean_d, std_d = flat.mean(axis=0), flat.std(axis=0)
    rng = np.random.default_rng(seed)
    starts = flat[rng.integers(0, flat.shape[0], 32)]
    h = dt / max(1, math.ceil(dt / min(time_scale / 100, _data_period(x, dt) / 50)))
    check_t = np.arange(0.0, 20 * time_scale + dt / 2, dt)

    def check(model: SINDy) -> tuple[str | None, np.ndarray | None]:
        """Why the model fails (None: it passes), and its states past their transient."""
        try:
            sim = model.simulate(starts, check_t, substeps=max(1, round(dt / h)))
        except SimulationBlowUpError as exc:
            return str(exc), None
        tail = sim[:, sim.shape[1] // 4 :].reshape(-1, dim)
        d_mean = np.abs(tail.mean(axis=0) - mean_d) / std_d
        r_std = tail.std(axis=0) / std_d
        if d_mean.max() > 0.25 or np.abs(r_std - 1).max() > 0.25:
            i = int(np.argmax(np.maximum(d_mean, np.abs(r_std - 1))))
            return (
                f"its attractor does not match the data (component {i}: mean off by "
                f"{d_mean[i]:.2f} std, std ratio {r_std[i]:.2f})"
            ), None
        return None, tail

    why, tail = check(models[0])
    if why is not None:
        raise _ModelRejected(
            f"the SINDy ({library}) model fitted to the data fails its check: {why}"
        )
    kept, tails = [models[0]], [tail]
    for model in models[1:]:
        why, tail = check(model)
        if why is None:
            kept.append(model)
            tails.append(tail)
    rejected = len(models) - len(kept) + skipped
    features = _torch_features(kept[0].library_)
    warnings = []

    def spectrum(n_models: int):
        system = _FittedEquations(
            features=features,
            coefficients=torch.from_numpy(np.stack([m.coefficients_.T for m in kept[:n_models]])),
            pool=torch.from_numpy(np.stack(tails[:n_models])),
        )
        return lyapunov_spectrum(
            system,
            n_exponents=1,
            dt=h,
            time=lyapunov_times * time_scale,
            transient=5 * time_scale,
            n_runs=n_models * runs_per_model,
            seed=seed,
            progress=progress,
        )

    n_models = len(kept)
    try:
        spec = spectrum(n_models)
    except ValueError as exc:
        if n_models == 1:
            raise _ModelRejected(f"the fitted model's tangent integration failed: {exc}") from None
        # A segment model that diverged from one of its own states takes the batch down:
        # the full-data model alone, without the segment spread.
        warnings.append(f"the segment models were dropped: {exc}")
        n_models = 1
        try:
            spec = spectrum(1)
        except ValueError as exc1:
            raise _ModelRejected(f"the fitted model's tangent integration failed: {exc1}") from None
    per_model = spec.per_run[:, 0].reshape(n_models, runs_per_model)
    value = float(per_model[0].mean())
    run_err = float(per_model[0].std(ddof=1) / math.sqrt(runs_per_model))
    seg_values = per_model[1:].mean(axis=1)
    seg_err = (
        float(seg_values.std(ddof=1) / math.sqrt(seg_values.size)) if seg_values.size >= 2 else 0.0
    )
    if seg_values.size < 2:
        warnings.append(
            "too few segment models for the model uncertainty: it counts only the tangent runs"
        )
    if rejected:
        warnings.append(f"{rejected} of the segment models failed their check and were left out")
    return DataLyapunovEstimate(
        value=value,
        stderr=math.hypot(run_err, seg_err),
        method="model",
        description=(
            f"SINDy ({library}, weak form) fitted to the data, checked against it, then the "
            f"tangent method on the fitted equations (dt = {h:.4g}, {runs_per_model} runs of "
            f"{spec.time:.4g} time units); uncertainty: spread over {seg_values.size} models "
            f"fitted to disjoint time segments, and the runs' standard error"
        ),
        dt=dt,
        n_points=n_traj * steps,
        details={
            "library": library,
            "equations": models[0].equations(),
            "segment_values": seg_values.tolist(),
            "segment_stderr": seg_err,
            "run_stderr": run_err,
            "internal_dt": h,
            "time_per_run": spec.time,
            "wall_time_s": spec.wall_time,
        },
        warnings=tuple(warnings),
    )


# ------------------------------------------------------------------------------ helpers


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = [
    "DATA_METHODS",
    "DataLyapunovEstimate",
    "LyapunovSpectrum",
    "default_settings",
    "estimate_from_data",
    "kaplan_yorke_dimension",
    "leading_exponent",
    "lyapunov_spectrum",
]
