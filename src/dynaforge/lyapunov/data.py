"""The leading Lyapunov exponent from data alone: a SINDy model's exponent (the tangent
method of :mod:`.equations` on the fitted equations), cross-checked by flow-transverse
nearest-neighbour divergence (the package docstring says how, why and what was measured)."""

from __future__ import annotations

import dataclasses
import keyword
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from dynaforge.lyapunov.equations import _check_int, _check_positive, lyapunov_spectrum
from dynaforge.systems.base import AbstractSystem


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
    states, dt, names = _checked_data(x, dt)
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
            names=names,
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


def _checked_data(x: Any, dt: float | None) -> tuple[np.ndarray, float, tuple[str, ...]]:
    """``(states (N, T, D), dt, state names)``; the names are a Trajectories' own when they
    can be symbols in the model's equations, else ``x0, x1, ...``."""
    from dynaforge.data import Trajectories

    names = None
    if isinstance(x, Trajectories):
        usable = all(n.isidentifier() and not keyword.iskeyword(n) for n in x.state_names)
        if usable and len(set(x.state_names)) == x.dim:
            names = tuple(x.state_names)
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
    return arr, float(dt), names or tuple(f"x{i}" for i in range(arr.shape[-1]))


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
    names: tuple[str, ...],
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
