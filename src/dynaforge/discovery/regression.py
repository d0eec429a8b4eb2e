"""Sparse regression for SINDy: STLSQ with ridge, significance-ordered elimination, automatic
threshold choice, ensembles.

The problem is ``target ≈ theta @ Ξᵀ`` with ``theta`` ``(M, P)`` (library terms at ``M``
samples or weak-form test functions) shared by all equations, or ``(D, M, P)`` with one design
per equation (after per-equation whitening), ``target`` ``(M, D)`` and coefficients ``Ξ``
``(D, P)``. Every fit works on per-equation Gram statistics ``θᵀθ`` (P × P) of unit-norm
columns, so the many fits of a threshold path and of cross-validation folds cost P × P solves,
not passes over the data.

Two ways to sparsify (``optimizer``):

``"stlsq"`` — sequentially thresholded least squares (Brunton, Proctor & Kutz 2016): solve,
drop every term below the threshold, repeat. With ``normalize_columns=True`` a coefficient is
compared with the threshold through its *relative contribution* ``|Ξ_ij| ‖θ_j‖ / ‖y_i‖`` (the
norm of the term's contribution as a fraction of the norm of the target): dimensionless, the
same for every equation whatever its scale, independent of the number of rows. With
``normalize_columns=False`` the threshold applies to the raw ``|Ξ_ij|`` (PySINDy's convention).

``"backward"`` — greedy backward elimination on *significance*: from the full model, remove
one term at a time, the one whose removal lowers ``RSS / σ² + threshold Σ_j w_j`` most, refit,
and stop when every remaining term pays for itself (``ΔRSS_j / σ² >= threshold × w_j``). ``σ²``
is the residual variance (1 after whitening by a known noise covariance, else estimated, never
below a floor) and ``w_j = 1 + κ (c_j - 1)`` a complexity weight, ``c_j`` the term's polynomial
degree (:func:`term_complexity`). The threshold is thus a χ² cost per unit of complexity. Two
reasons it beats magnitude thresholding on noisy data: refitting after every single removal
keeps one of two nearly collinear terms instead of dropping both because each looked
unnecessary next to the other; and the complexity weight breaks near-ties the data cannot
resolve in favour of the simpler term (on the Lorenz attractor ``y`` and ``y z / 28`` nearly
coincide: at 10% noise some noise draws make ``x, x z, y z`` fit ``dy/dt`` as well as the true
``x, y, x z``).

Automatic selection (:func:`select_threshold`) runs the optimizer over a path of thresholds
and scores each model with a criterion; the default, ``"significance"``, keeps a term only if
the data reject its absence at a family-wise level of 0.1% (Bonferroni over all candidate
terms).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import sympy

#: Threshold-selection methods of :func:`select_threshold`.
SELECTION_METHODS = ("significance", "bic", "aic", "cv")

#: Sparsification paths.
OPTIMIZERS = ("backward", "stlsq")

#: Family-wise significance level of the default selection (:func:`significance_penalty`).
SIGNIFICANCE_LEVEL = 1e-3

#: Default ridge weight: relative to the unit diagonal of the normalised Gram matrix.
DEFAULT_RIDGE = 1e-10


@dataclasses.dataclass(frozen=True)
class SelectionResult:
    """Outcome of :func:`select_threshold`.

    Attributes:
        coefficients: ``(D, P)`` the model at the chosen threshold, fitted on all rows.
        threshold: the chosen threshold (units: ``threshold_kind``).
        method: ``"bic"``, ``"aic"`` or ``"cv"``.
        thresholds: ``(L,)`` the candidate path, increasing.
        scores: ``(L,)`` the criterion along the path (lower is better), summed over equations.
        n_terms: ``(L,)`` nonzero coefficients of the full-data model at each threshold.
        threshold_kind: ``"significance"`` (optimizer ``"backward"``: χ² per unit of
            complexity) or ``"relative contribution"`` / ``"coefficient"`` (``"stlsq"``).
        score_errors: ``(L,)`` standard error of the CV score over folds (``"cv"``), else None.
    """

    coefficients: np.ndarray
    threshold: float
    method: str
    thresholds: np.ndarray
    scores: np.ndarray
    n_terms: np.ndarray
    threshold_kind: str = "significance"
    score_errors: np.ndarray | None = None

    def to_dict(self) -> dict:
        """Plain arrays and values (for saving)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True)
class EnsembleResult:
    """Outcome of :func:`ensemble`.

    Attributes:
        coefficients: ``(n_models, D, P)`` one model per row subsample.
        inclusion_probability: ``(D, P)`` fraction of models in which each term is nonzero.
        aggregate: ``(D, P)`` median over models, zero where the inclusion probability is below
            ``inclusion_threshold``.
        inclusion_threshold: the cut applied to form ``aggregate``.
    """

    coefficients: np.ndarray
    inclusion_probability: np.ndarray
    aggregate: np.ndarray
    inclusion_threshold: float


# -- complexity -------------------------------------------------------------------------------
def term_complexity(expr: sympy.Expr) -> int:
    """Complexity of one library term: its total polynomial degree, counting each
    non-polynomial factor (``sin(x)``, ``exp(-x)``) as 1; at least 1 (so the constant costs as
    much as a linear term)."""
    if not isinstance(expr, sympy.Expr):  # an Expr, never text: sympify would evaluate it
        raise TypeError(f"term_complexity takes a sympy expression, got {type(expr).__name__}")
    total = 0
    for factor in sympy.Mul.make_args(expr):
        if factor.is_number:
            continue
        base, exp = factor.as_base_exp()
        if base.is_Symbol and exp.is_Integer and exp > 0:
            total += int(exp)
        else:
            total += 1
    return max(1, total)


def complexity_weights(exprs: Sequence[sympy.Expr], penalty: float) -> np.ndarray:
    """``w_j = 1 + penalty (c_j - 1)`` for the library terms ``exprs`` (``(P,)``)."""
    if not (math.isfinite(penalty) and penalty >= 0):
        raise ValueError(f"complexity penalty must be a finite number >= 0, got {penalty!r}")
    return np.array([1.0 + penalty * (term_complexity(e) - 1) for e in exprs])


# -- input checks -----------------------------------------------------------------------------
def _check_problem(theta: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    theta = np.asarray(theta, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if target.ndim == 1:
        target = target[:, None]
    if target.ndim != 2:
        raise ValueError(f"target must be shaped (M, D), got {target.shape}")
    m_rows, n_eq = target.shape
    if theta.ndim == 2:
        ok = theta.shape[0] == m_rows
    elif theta.ndim == 3:
        ok = theta.shape[0] == n_eq and theta.shape[1] == m_rows
    else:
        ok = False
    if not ok:
        raise ValueError(
            f"need theta (M, P) or (D, M, P) and target (M, D) with the same M and D, got "
            f"{theta.shape} and {target.shape}"
        )
    if m_rows == 0 or theta.shape[-1] == 0:
        raise ValueError(f"empty regression problem: theta has shape {theta.shape}")
    for name, arr in (("theta", theta), ("target", target)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains non-finite values (NaN/inf)")
    return theta, target


def _check_threshold(threshold: float) -> float:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.floating))
        or not (math.isfinite(threshold) and threshold >= 0)
    ):
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    return float(threshold)


def _check_weights(weights: np.ndarray | None, n_terms: int) -> np.ndarray:
    if weights is None:
        return np.ones(n_terms)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_terms,) or not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError(f"weights must be {n_terms} positive numbers, got {weights!r}")
    return weights


# -- per-equation sufficient statistics -------------------------------------------------------
@dataclasses.dataclass
class _Stats:
    """Normalised Gram statistics of each equation's (sub)problem."""

    a: np.ndarray  # (D, P, P) θnᵀθn
    c: np.ndarray  # (D, P) θnᵀy
    yy: np.ndarray  # (D,) ‖y‖²
    n_rows: int

    def __sub__(self, other: _Stats) -> _Stats:
        return _Stats(
            self.a - other.a, self.c - other.c, self.yy - other.yy, self.n_rows - other.n_rows
        )


def _scales(theta: np.ndarray, n_eq: int, normalize: bool) -> np.ndarray:
    """Column norms ``(D, P)`` (ones when not normalising)."""
    p = theta.shape[-1]
    if not normalize:
        return np.ones((n_eq, p))
    norms = np.sqrt(np.einsum("...mp,...mp->...p", theta, theta))
    norms = np.where(norms > 0, norms, 1.0)
    return np.broadcast_to(norms, (n_eq, p)).copy()


def _stats(
    theta: np.ndarray, target: np.ndarray, scale: np.ndarray, rows: slice | np.ndarray = slice(None)
) -> _Stats:
    y = target[rows]
    if theta.ndim == 2:
        t = theta[rows]
        a = np.einsum("mp,mq->pq", t, t)[None] / (scale[:, :, None] * scale[:, None, :])
        c = (t.T @ y).T / scale
    else:
        t = theta[:, rows]
        a = np.einsum("dmp,dmq->dpq", t, t) / (scale[:, :, None] * scale[:, None, :])
        c = np.einsum("dmp,md->dp", t, y) / scale
    return _Stats(a, c, np.einsum("md,md->d", y, y), y.shape[0])


def _solve(a: np.ndarray, c: np.ndarray, active: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge solution restricted to ``active`` columns; zeros elsewhere."""
    w = np.zeros(a.shape[0])
    idx = np.flatnonzero(active)
    if idx.size:
        sub = a[np.ix_(idx, idx)] + ridge * np.eye(idx.size)
        try:
            w[idx] = np.linalg.solve(sub, c[idx])
        except np.linalg.LinAlgError:
            w[idx] = np.linalg.lstsq(sub, c[idx], rcond=None)[0]
    return w


def _rss(a: np.ndarray, c: np.ndarray, yy: float, w: np.ndarray) -> float:
    """``‖y - θn w‖²`` from the statistics of one equation."""
    return max(float(yy - 2.0 * w @ c + w @ a @ w), 0.0)


def _stlsq_eq(
    a: np.ndarray,
    c: np.ndarray,
    yy: float,
    threshold: float,
    ridge: float,
    max_iter: int,
    relative: bool,
    weights: np.ndarray,
) -> np.ndarray:
    """STLSQ for one equation on normalised statistics (normalised coefficients)."""
    scale = math.sqrt(yy) if relative else 1.0
    active = np.diag(a) > 0
    if scale == 0.0:
        return np.zeros(a.shape[0])
    w = _solve(a, c, active, ridge)
    for _ in range(max_iter):
        keep = active & (np.abs(w) >= threshold * scale * weights)
        if np.array_equal(keep, active):
            break
        active = keep
        w = _solve(a, c, active, ridge)
    w[~active] = 0.0
    return w


def _backward_eq(
    a: np.ndarray,
    c: np.ndarray,
    yy: float,
    variance: float,
    ridge: float,
    weights: np.ndarray,
    threshold: float,
    cache: dict | None = None,
) -> np.ndarray:
    """Greedy backward elimination of one equation (normalised coefficients).

    Minimises ``RSS / σ² + threshold Σ_{j kept} w_j`` greedily: from the full model, remove
    the term whose removal lowers that objective most (``ΔRSS_j / σ² - threshold w_j`` most
    negative), refit, repeat until every remaining term pays for itself. ``cache`` (one dict
    per equation and problem) keeps the fit of each active set across thresholds.
    """
    active = np.diag(a) > 0
    cache = {} if cache is None else cache
    while True:
        key = active.tobytes()
        if key not in cache:
            idx = np.flatnonzero(active)
            w = np.zeros(a.shape[0])
            gain = np.zeros(0)
            if idx.size:
                sub = a[np.ix_(idx, idx)] + ridge * np.eye(idx.size)
                try:
                    inv = np.linalg.inv(sub)
                except np.linalg.LinAlgError:
                    inv = np.linalg.pinv(sub)
                w[idx] = inv @ c[idx]
                # Removing term j raises the RSS by w_j² / (A_S⁻¹)_jj (exactly, ridge = 0).
                gain = w[idx] ** 2 / np.maximum(np.diag(inv), 1e-300) / variance
            cache[key] = (idx, w, gain)
        idx, w, gain = cache[key]
        if idx.size == 0:
            return w.copy()
        change = gain - threshold * weights[idx]
        j = int(np.argmin(change))
        if change[j] >= 0:
            return w.copy()
        active = active.copy()
        active[idx[j]] = False


def _variances(st: _Stats, min_variance: np.ndarray, ridge: float) -> np.ndarray:
    """Residual variance per equation: the full model's residual mean square, at least
    ``min_variance``."""
    out = np.empty(st.c.shape[0])
    p = st.c.shape[1]
    for i in range(st.c.shape[0]):
        w = _solve(st.a[i], st.c[i], np.diag(st.a[i]) > 0, ridge)
        dof = max(st.n_rows - p, 1)
        out[i] = max(_rss(st.a[i], st.c[i], st.yy[i], w) / dof, min_variance[i], 1e-300)
    return out


def _fit(
    st: _Stats,
    threshold: float,
    optimizer: str,
    ridge: float,
    max_iter: int,
    relative: bool,
    weights: np.ndarray,
    variance: np.ndarray,
    caches: list[dict] | None = None,
) -> np.ndarray:
    """Normalised ``(D, P)`` coefficients at one threshold (``caches``: one dict per equation,
    reused across thresholds of the same problem)."""
    out = np.zeros(st.c.shape)
    for i in range(st.c.shape[0]):
        if optimizer == "stlsq":
            out[i] = _stlsq_eq(
                st.a[i], st.c[i], st.yy[i], threshold, ridge, max_iter, relative, weights
            )
        else:
            out[i] = _backward_eq(
                st.a[i],
                st.c[i],
                st.yy[i],
                variance[i],
                ridge,
                weights,
                threshold,
                None if caches is None else caches[i],
            )
    return out


def _prepare(theta, target, normalize_columns, min_variance):
    theta, target = _check_problem(theta, target)
    n_eq = target.shape[1]
    scale = _scales(theta, n_eq, normalize_columns)
    if min_variance is None:
        floor = np.zeros(n_eq)
    else:
        floor = np.broadcast_to(np.asarray(min_variance, dtype=np.float64), (n_eq,)).copy()
    return theta, target, scale, floor


def _check_optimizer(optimizer: str) -> None:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")


def stlsq(
    theta: np.ndarray,
    target: np.ndarray,
    *,
    threshold: float,
    ridge: float = DEFAULT_RIDGE,
    max_iter: int = 20,
    normalize_columns: bool = True,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Sequentially thresholded (ridge) least squares (Brunton, Proctor & Kutz, PNAS 2016).

    Repeat: solve the ridge problem on the active terms, drop the terms below
    ``threshold × weights_j``, until the active set stops changing (at most ``max_iter``
    rounds); the last solve is on the final active set.

    Args:
        theta: ``(M, P)`` library matrix, or ``(D, M, P)`` one per equation.
        target: ``(M, D)`` targets (derivatives or weak-form projections).
        threshold: see the module docstring for its units.
        ridge: Tikhonov weight on the normalised problem (unit-diagonal Gram matrix).
        max_iter: most thresholding rounds.
        normalize_columns: threshold on relative contributions (True) or raw coefficients.
        weights: ``(P,)`` per-term multipliers of the threshold (default all 1).

    Returns:
        ``(D, P)`` coefficients in the units of the data.
    """
    theta, target, scale, _ = _prepare(theta, target, normalize_columns, None)
    threshold = _check_threshold(threshold)
    if ridge < 0 or not math.isfinite(ridge):
        raise ValueError(f"ridge must be a finite number >= 0, got {ridge!r}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter!r}")
    weights = _check_weights(weights, theta.shape[-1])
    st = _stats(theta, target, scale)
    return (
        _fit(
            st,
            threshold,
            "stlsq",
            ridge,
            max_iter,
            normalize_columns,
            weights,
            np.ones(target.shape[1]),
        )
        / scale
    )


def backward_elimination(
    theta: np.ndarray,
    target: np.ndarray,
    *,
    threshold: float,
    weights: np.ndarray | None = None,
    min_variance: float | np.ndarray | None = None,
    ridge: float = DEFAULT_RIDGE,
) -> np.ndarray:
    """Significance-ordered sequential thresholding (see the module docstring).

    Args:
        theta: ``(M, P)`` or ``(D, M, P)``.
        target: ``(M, D)``.
        threshold: a term stays while ``ΔRSS_j / (σ² w_j) >= threshold``.
        weights: ``(P,)`` complexity weights ``w_j`` (default all 1).
        min_variance: floor of the residual variance ``σ²`` per equation (scalar or ``(D,)``;
            1 for whitened rows whose noise covariance is known).
        ridge: Tikhonov weight on the normalised problem.

    Returns:
        ``(D, P)`` coefficients.
    """
    theta, target, scale, floor = _prepare(theta, target, True, min_variance)
    threshold = _check_threshold(threshold)
    weights = _check_weights(weights, theta.shape[-1])
    st = _stats(theta, target, scale)
    variance = _variances(st, floor, ridge)
    return _fit(st, threshold, "backward", ridge, 1, True, weights, variance) / scale


def long_run_variance(residual: np.ndarray, max_lag: int | None = None) -> np.ndarray:
    """Variance of the residual inflated by its autocorrelation (Newey–West, Bartlett kernel).

    Rows of a SINDy regression are not independent: finite differences, smoothing windows and
    overlapping test functions correlate neighbours, and a systematic error (truncation error
    on clean data) is correlated over a whole oscillation. A sum over ``M`` such rows carries
    the information of fewer rows; using ``γ₀ + 2 Σ_k (1 - k / (L + 1)) γ_k`` instead of
    ``γ₀`` as the residual variance keeps a χ²-based criterion honest.

    Args:
        residual: ``(N, M, D)`` residuals, rows in time order within each of ``N`` groups
            (trajectories).
        max_lag: ``L``; default: three times the lag at which the autocorrelation first falls
            below 0.05, at least Newey & West's ``4 (M / 100)^(2/9)``, at most ``M / 5``.

    Returns:
        ``(D,)`` long-run variances, never below the plain variance ``γ₀``.
    """
    residual = np.asarray(residual, dtype=np.float64)
    if residual.ndim != 3:
        raise ValueError(f"residual must be shaped (N, M, D), got {residual.shape}")
    n, m, _ = residual.shape
    r = residual - residual.mean(axis=1, keepdims=True)
    gamma0 = (r * r).mean(axis=(0, 1))
    if m < 3:
        return gamma0
    # All autocovariances at once through the FFT (zero-padded: no wrap-around).
    size = 1 << math.ceil(math.log2(2 * m))
    spec = np.fft.rfft(r, n=size, axis=1)
    acov = np.fft.irfft(spec * np.conj(spec), n=size, axis=1)[:, 1:m].sum(axis=0) / (n * m)
    if max_lag is None:
        rho = acov / np.maximum(gamma0, 1e-300)  # (m - 1, D)
        below = rho < 0.05
        first = np.where(below.any(axis=0), below.argmax(axis=0) + 1, m)
        rule = math.ceil(4 * (m / 100.0) ** (2.0 / 9.0))
        lag = int(min(max(3 * int(first.max()), rule), m // 5))
    else:
        lag = int(max_lag)
    lag = max(0, min(lag, m - 1))
    kernel = 1.0 - np.arange(1, lag + 1) / (lag + 1.0)
    total = gamma0 + 2.0 * (kernel[:, None] * acov[:lag]).sum(axis=0)
    return np.maximum(total, gamma0)


def _criterion(
    st: _Stats, w: np.ndarray, variance: np.ndarray, weights: np.ndarray, penalty: float
) -> float:
    total = 0.0
    for i in range(st.c.shape[0]):
        rss = _rss(st.a[i], st.c[i], st.yy[i], w[i])
        total += rss / variance[i] + penalty * float(weights[w[i] != 0].sum())
    return total


def significance_penalty(n_candidates: int, alpha: float = SIGNIFICANCE_LEVEL) -> float:
    """χ² cost per unit of complexity at which a term is kept only if the data reject its
    absence at family-wise level ``alpha`` over ``n_candidates`` terms (Bonferroni):
    the ``1 - alpha / n_candidates`` quantile of χ² with one degree of freedom."""
    from scipy.stats import chi2

    if n_candidates < 1 or not 0 < alpha < 1:
        raise ValueError(f"need n_candidates >= 1 and 0 < alpha < 1, got {n_candidates}, {alpha}")
    return float(chi2.isf(alpha / n_candidates, 1))


def select_threshold(
    theta: np.ndarray,
    target: np.ndarray,
    *,
    method: str = "significance",
    optimizer: str = "backward",
    weights: np.ndarray | None = None,
    min_variance: float | np.ndarray | None = None,
    penalty: float | None = None,
    n_thresholds: int = 60,
    n_folds: int = 5,
    ridge: float = DEFAULT_RIDGE,
    max_iter: int = 20,
    normalize_columns: bool = True,
) -> SelectionResult:
    """Choose the sparsity threshold along a path of candidates.

    The path: for ``optimizer="backward"`` (threshold = χ² cost per unit of complexity)
    ``n_thresholds`` values log-spaced over ``[1e-2, 1e6]`` plus the criterion's own penalty;
    for ``"stlsq"`` 0 and ``n_thresholds`` log-spaced values between the smallest and largest
    coefficient of the full fit. Each model on the path is scored (lower is better, summed over
    equations; ``σ_i²`` is the residual variance of equation ``i``'s full model, at least
    ``min_variance``):

    ``"significance"`` (default): ``RSS_i / σ_i² + c Σ_j w_j`` over the kept terms with
        ``c`` = :func:`significance_penalty` over all ``D × P`` candidates at level 0.05: a term
        survives only if the data reject its absence at family-wise level 5%. Unlike BIC this
        does not grow with the number of rows, which for weak-form or densely sampled data is
        an arbitrary choice (overlapping test functions add rows, not information).
    ``"bic"``: the same with ``c = log M``; ``"aic"``: ``c = 2``. ``penalty`` overrides ``c``.
    ``"cv"``: ``n_folds`` contiguous blocks of rows (blocks of time, so held-out rows are not
        interleaved with training rows carrying nearly the same information); the held-out
        squared error divided by ``σ_i²``, summed over folds and equations.

    Returns:
        A :class:`SelectionResult`; its ``coefficients`` are fitted on all rows at the chosen
        threshold (the largest threshold among equally scored ones).
    """
    if method not in SELECTION_METHODS:
        raise ValueError(
            f"unknown threshold-selection method {method!r}; use one of "
            f"{', '.join(SELECTION_METHODS)}"
        )
    _check_optimizer(optimizer)
    relative = normalize_columns or optimizer == "backward"
    theta, target, scale, floor = _prepare(theta, target, relative, min_variance)
    weights = _check_weights(weights, theta.shape[-1])
    m_rows, n_eq = target.shape
    if penalty is None:
        penalty = {"bic": math.log(m_rows), "aic": 2.0, "cv": 0.0}.get(
            method,
            significance_penalty(n_eq * theta.shape[-1]) if method == "significance" else 0.0,
        )
    elif not (math.isfinite(penalty) and penalty >= 0):
        raise ValueError(f"penalty must be a finite number >= 0, got {penalty!r}")
    full = _stats(theta, target, scale)
    variance = _variances(full, floor, ridge)
    if optimizer == "backward":
        path = np.geomspace(1e-2, 1e6, n_thresholds)
        if penalty > 0:
            path = np.concatenate([path, [penalty]])
        path = np.unique(np.concatenate([[0.0], path]))
        kind = "significance"
    else:
        w0 = np.array(
            [_solve(full.a[i], full.c[i], np.diag(full.a[i]) > 0, ridge) for i in range(n_eq)]
        )
        mags = np.abs(w0) / (np.sqrt(np.maximum(full.yy, 1e-300))[:, None] if relative else 1.0)
        mags = (mags / weights)[mags > 0]
        if mags.size:
            hi, lo = float(mags.max()), float(mags.min())
            lo = max(lo, hi * 1e-12)
            grid = np.geomspace(lo, hi * 1.0001, n_thresholds) if hi > lo else np.array([hi])
        else:
            grid = np.zeros(0)
        path = np.concatenate([[0.0], grid])
        kind = "relative contribution" if relative else "coefficient"
    caches: list[dict] = [{} for _ in range(n_eq)]
    models = [
        _fit(full, t, optimizer, ridge, max_iter, relative, weights, variance, caches) for t in path
    ]
    n_terms = np.array([int(np.count_nonzero(w)) for w in models])
    errors = None
    if method == "cv":
        if not 2 <= n_folds <= m_rows:
            raise ValueError(
                f"n_folds must be between 2 and the number of rows {m_rows}, got {n_folds}"
            )
        bounds = np.linspace(0, m_rows, n_folds + 1).round().astype(int)
        fold_scores = np.zeros((len(path), n_folds))
        for f in range(n_folds):
            held = _stats(theta, target, scale, slice(bounds[f], bounds[f + 1]))
            train = full - held
            fold_caches: list[dict] = [{} for _ in range(n_eq)]
            for j, t in enumerate(path):
                w = _fit(
                    train, t, optimizer, ridge, max_iter, relative, weights, variance, fold_caches
                )
                fold_scores[j, f] = _criterion(held, w, variance, weights, 0.0)
        scores = fold_scores.sum(axis=1)
        errors = fold_scores.std(axis=1, ddof=1) * math.sqrt(n_folds)
    else:
        scores = np.array([_criterion(full, w, variance, weights, penalty) for w in models])
    best = int(np.flatnonzero(scores <= scores.min() + 1e-9 * abs(scores.min()))[-1])
    return SelectionResult(
        coefficients=models[best] / scale,
        threshold=float(path[best]),
        method=method,
        thresholds=path,
        scores=scores,
        n_terms=n_terms,
        threshold_kind=kind,
        score_errors=errors,
    )


def ensemble(
    theta: np.ndarray,
    target: np.ndarray,
    *,
    n_models: int,
    fraction: float,
    threshold: float,
    seed: int,
    inclusion_threshold: float = 0.5,
    optimizer: str = "stlsq",
    weights: np.ndarray | None = None,
    min_variance: float | np.ndarray | None = None,
    ridge: float = DEFAULT_RIDGE,
    max_iter: int = 20,
    normalize_columns: bool = True,
) -> EnsembleResult:
    """Bagging (E-SINDy, Fasel et al. 2022): one sparse fit per random row subset.

    Each model sees ``round(fraction M)`` rows drawn without replacement (numpy
    ``Generator(seed)``); columns are normalised once on all rows and the residual variance
    (``"backward"``) is that of all rows scaled to the subset, so every model thresholds in the
    same units as the full fit.

    Returns:
        An :class:`EnsembleResult` with the per-model coefficients, the inclusion probability
        of each term and the aggregate model (median, zeroed below ``inclusion_threshold``).
    """
    _check_optimizer(optimizer)
    relative = normalize_columns or optimizer == "backward"
    theta, target, scale, floor = _prepare(theta, target, relative, min_variance)
    threshold = _check_threshold(threshold)
    weights = _check_weights(weights, theta.shape[-1])
    if isinstance(n_models, bool) or not isinstance(n_models, (int, np.integer)) or n_models < 1:
        raise ValueError(f"n_models must be a positive integer, got {n_models!r}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if not 0 <= inclusion_threshold <= 1:
        raise ValueError(f"inclusion_threshold must be in [0, 1], got {inclusion_threshold!r}")
    m_rows = target.shape[0]
    n_sub = max(1, round(fraction * m_rows))
    if n_sub < theta.shape[-1]:
        raise ValueError(
            f"ensemble subsets of {n_sub} rows cannot determine {theta.shape[-1]} terms; "
            f"raise fraction ({fraction})"
        )
    variance = _variances(_stats(theta, target, scale), floor, ridge)
    rng = np.random.default_rng(seed)
    coefs = np.empty((int(n_models), target.shape[1], theta.shape[-1]))
    for k in range(int(n_models)):
        rows = np.sort(rng.choice(m_rows, size=n_sub, replace=False))
        st = _stats(theta, target, scale, rows)
        coefs[k] = (
            _fit(st, threshold, optimizer, ridge, max_iter, relative, weights, variance) / scale
        )
    inclusion = (coefs != 0).mean(axis=0)
    aggregate = np.median(coefs, axis=0)
    aggregate[inclusion < inclusion_threshold] = 0.0
    return EnsembleResult(coefs, inclusion, aggregate, float(inclusion_threshold))
