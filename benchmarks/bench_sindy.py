"""SINDy: dynaforge's ``SINDy`` vs PySINDy 2.1.0 on the Lorenz noise sweep, and predict time.

Same data for both tools, built once per (η, seed) by dynaforge:

* ``build_discovery_data(DiscoveryTaskConfig(dt=0.002, n_samples=5000, noise=η, seed=s))``:
  one Lorenz-63 trajectory of 5 000 samples at dt = 0.002 (DOP853 at 1e-12 from an initial
  condition on the attractor), plus Gaussian noise of std ``η × RMS`` of each state component;
  η in (0, 1 %, 5 %, 10 %), seeds 0..9. The noisy ``(T, 3)`` array is handed to PySINDy as is;
* library poly2 with constant for both (10 terms ``1, x, y, z, x^2, x y, x z, y^2, y z, z^2``;
  PySINDy's coefficient columns are mapped onto dynaforge's by term name, and the mapping is
  checked);
* scoring for both with ``dynaforge.tasks.discovery.coefficient_errors``: exact 7-term support,
  worst relative coefficient error on the true support (a missed term counts 1.0), fit time
  (wall clock of everything data-dependent: differentiation, library, regression; for PySINDy's
  weak form also building the ``WeakPDELibrary``, whose test-function weights depend on the
  time grid).

dynaforge: ``SINDy(library="poly2", differentiation=m, threshold=None)`` (automatic threshold)
for m in ("fd", "smoothed-fd", "weak").

PySINDy has no automatic threshold. Its settings, from its own docs and examples:

* optimizer ``STLSQ(threshold=0.1, alpha=0.05)``, i.e. ``ps.SINDy()``'s default, the setting of
  its README and "Feature Overview" Lorenz example (dt = 0.002, the same as here) and of the
  ``STLSQ`` docstring's Lorenz example; used for all three differentiation settings so they
  differ in the derivative only;
* "fd": ``FiniteDifference(order=2)`` (``ps.SINDy()``'s default);
* "smoothed-fd": ``SmoothedFiniteDifference()``, its default Savitzky–Golay smoother (window 11,
  polyorder 3), as in the Feature Overview;
* "weak": ``WeakPDELibrary(function_library=PolynomialLibrary(2, include_bias=False),
  spatiotemporal_grid=t, include_bias=True)`` with its defaults (K = 100 subdomains of half-width
  L/20, p = 4), as in its weak-form notebook (example 12, Lorenz, K = 100). That notebook pairs
  it with ``SR3(l1)``; on this data SR3/l1 keeps 9-30 terms at every noise level in a pilot
  (soft thresholding does not zero small terms), so the weak row also uses STLSQ(0.1). The
  subdomain centres are drawn from NumPy's global RNG (PySINDy offers no seed argument); it is
  seeded with the data seed around the construction and restored afterwards.

A further table, "PySINDy, threshold picked with hindsight", gives PySINDy its best fixed
threshold from (0.05, 0.1, 0.2, 0.5) per method and η, and for the weak form also K in (100,
1000), chosen with the truth (most exact supports, then smallest median error). No user can
choose that way; it bounds what any fixed PySINDy threshold could do on this sweep. (Thresholds
>= 1 remove Lorenz's unit coefficients by construction.)

Predict time per call: each tool's model fitted by "fd" on the clean seed-0 data; the median
wall clock of many single calls of ``model.predict(x)`` on one state ``(1, 3)`` and on a batch of
1 000 states ``(1000, 3)`` (float64 NumPy input, as PySINDy takes it). The two tools' outputs are
compared (both models are the clean-data fit, so they agree to the coefficients' accuracy).
Goal: dynaforge ≥ 50× faster than PySINDy on one state.

Run alone: ``.venv/bin/python benchmarks/bench_sindy.py [--quick]``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from _common import fmt_ratio, goal_mark, median, print_table, quick_flag, setup_threads, timed
from dynaforge.models.sindy import SINDy
from dynaforge.tasks.discovery import (
    DiscoveryData,
    DiscoveryTaskConfig,
    build_discovery_data,
    coefficient_errors,
)

NOISES = (0.0, 0.01, 0.05, 0.10)
METHODS = ("fd", "smoothed-fd", "weak")
DT = 0.002
N_SAMPLES = 5000
LIBRARY = "poly2"
GOAL_PREDICT_RATIO = 50.0

#: PySINDy's documented Lorenz setting (``ps.SINDy()`` defaults; README / Feature Overview).
PYSINDY_THRESHOLD = 0.1
PYSINDY_ALPHA = 0.05
PYSINDY_WEAK_K = 100
#: Grid of the hindsight table (see the module docstring).
HINDSIGHT_THRESHOLDS = (0.05, 0.1, 0.2, 0.5)
HINDSIGHT_WEAK_K = (100, 1000)

FULL = {
    "seeds": 10,
    "calls_1": 3000,
    "calls_batch": 300,
    "batch": 1000,
    "hindsight_weak_k": HINDSIGHT_WEAK_K,
}
QUICK = {"seeds": 2, "calls_1": 300, "calls_batch": 30, "batch": 1000, "hindsight_weak_k": (100,)}


# -- PySINDy side -------------------------------------------------------------------------------
def _pysindy_library(method: str, t: np.ndarray, *, weak_k: int, seed: int):
    """The feature library (and differentiation) of one PySINDy setting."""
    import pysindy as ps

    if method != "weak":
        return ps.PolynomialLibrary(degree=2, include_bias=True), (
            ps.FiniteDifference(order=2, axis=-2)
            if method == "fd"
            # smoother_kws given explicitly: PySINDy's default is a shared mutable dict.
            else ps.SmoothedFiniteDifference(
                axis=-2, smoother_kws={"window_length": 11, "polyorder": 3}
            )
        )
    # WeakPDELibrary draws its subdomain centres from NumPy's global RNG at construction (it has
    # no seed argument): seed it, and leave the caller's global state as it was.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        lib = ps.WeakPDELibrary(
            function_library=ps.PolynomialLibrary(degree=2, include_bias=False),
            spatiotemporal_grid=t,
            include_bias=True,
            K=weak_k,
        )
    finally:
        np.random.set_state(state)
    return lib, None


def _pysindy_fit(
    x: np.ndarray,
    t: np.ndarray,
    method: str,
    *,
    threshold: float,
    seed: int,
    weak_k: int = PYSINDY_WEAK_K,
    library=None,
):
    """Fit one PySINDy model on ``x`` ``(T, D)``; returns the fitted model.

    ``library`` reuses an already built (weak) library, for the hindsight grid.
    """
    import pysindy as ps

    if library is None:
        library, diff = _pysindy_library(method, t, weak_k=weak_k, seed=seed)
    else:
        diff = None
    kwargs: dict[str, Any] = {
        "optimizer": ps.STLSQ(threshold=threshold, alpha=PYSINDY_ALPHA),
        "feature_library": library,
    }
    if diff is not None:
        kwargs["differentiation_method"] = diff
    model = ps.SINDy(**kwargs)
    with warnings.catch_warnings():
        # STLSQ warns when a threshold removes every term of an equation; that is scored below.
        warnings.simplefilter("ignore")
        model.fit(x, t=t if method == "weak" else float(t[1] - t[0]), feature_names=["x", "y", "z"])
    return model


def _pysindy_coefficients(model, names: Sequence[str]) -> np.ndarray:
    """PySINDy's ``(D, P)`` coefficients reordered to dynaforge's term ``names``."""
    py_names = [n.strip() for n in model.get_feature_names()]
    if sorted(py_names) != sorted(names):
        raise RuntimeError(f"PySINDy's terms {py_names} are not dynaforge's {list(names)}")
    coef = np.asarray(model.coefficients(), dtype=np.float64)
    if coef.shape != (3, len(names)):
        raise RuntimeError(
            f"PySINDy's coefficients are shaped {coef.shape}, expected (3, {len(names)})"
        )
    return coef[:, [py_names.index(n) for n in names]]


def _pysindy_signature_check() -> dict[str, Any]:
    """The PySINDy arguments relied on, read from the installed version."""
    import inspect

    import pysindy as ps

    wanted = {
        ps.STLSQ: ("threshold", "alpha"),
        ps.FiniteDifference: ("order", "axis"),
        ps.SmoothedFiniteDifference: ("smoother_kws",),
        ps.WeakPDELibrary: (
            "function_library",
            "spatiotemporal_grid",
            "include_bias",
            "K",
            "H_xt",
            "p",
        ),
        ps.PolynomialLibrary: ("degree", "include_bias"),
    }
    missing, defaults = [], {}
    for cls, names in wanted.items():
        params = inspect.signature(cls.__init__).parameters
        missing += [f"{cls.__name__}.{n}" for n in names if n not in params]
        defaults[cls.__name__] = {n: repr(params[n].default) for n in names if n in params}
    fit_params = inspect.signature(ps.SINDy.fit).parameters
    missing += [f"SINDy.fit.{n}" for n in ("t", "feature_names") if n not in fit_params]
    if missing:
        raise RuntimeError(f"PySINDy's signature changed; missing arguments: {missing}")
    return defaults


# -- dynaforge side -----------------------------------------------------------------------------
def _dyn_model(method: str) -> SINDy:
    return SINDy(library=LIBRARY, differentiation=method, threshold=None)


# -- helpers ------------------------------------------------------------------------------------
def _score(found: np.ndarray, data: DiscoveryData, fit_s: float) -> dict[str, Any]:
    return {**coefficient_errors(found, data.true_coefficients), "fit_time_s": fit_s}


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [r["max_rel_error"] for r in rows]
    return {
        "exact_support": int(sum(r["exact_support"] for r in rows)),
        "n_seeds": len(rows),
        "worst_max_rel_error": float(max(errors)),
        "median_max_rel_error": median(errors),
        "median_fit_time_s": median([r["fit_time_s"] for r in rows]),
        "n_terms": [r["n_terms"] for r in rows],
        "per_seed": rows,
    }


def _per_call_seconds(fn: Callable[[], Any], calls: int, warmup: int = 20) -> float:
    """Median wall clock of single calls of ``fn``."""
    for _ in range(warmup):
        fn()
    times = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times))


def _eta_label(eta: float) -> str:
    return "η = 0" if eta == 0 else f"η = {eta * 100:g}%"


def run(quick: bool = False) -> dict[str, Any]:
    setup_threads()
    import pysindy

    cfg = QUICK if quick else FULL
    seeds = list(range(cfg["seeds"]))
    defaults = _pysindy_signature_check()

    dyn: dict[str, dict[str, list]] = {m: {str(e): [] for e in NOISES} for m in METHODS}
    peer: dict[str, dict[str, list]] = {m: {str(e): [] for e in NOISES} for m in METHODS}
    grid_keys = [
        (m, thr, k)
        for m in METHODS
        for thr in HINDSIGHT_THRESHOLDS
        for k in (cfg["hindsight_weak_k"] if m == "weak" else (None,))
    ]
    grid: dict[tuple, dict[str, list]] = {key: {str(e): [] for e in NOISES} for key in grid_keys}
    names: list[str] | None = None
    predict_data = None

    for eta in NOISES:
        for seed in seeds:
            data = build_discovery_data(
                DiscoveryTaskConfig(
                    system="lorenz63",
                    dt=DT,
                    n_samples=N_SAMPLES,
                    n_trajectories=1,
                    noise=eta,
                    seed=seed,
                    library=LIBRARY,
                )
            )
            names = list(data.library_names)
            x = data.noisy.x[0].numpy()  # (T, 3): the array both tools see
            t = data.noisy.t.numpy()
            for method in METHODS:
                fit_s, model = timed(lambda m=method: _dyn_model(m).fit(data.noisy))
                if list(model.feature_names_) != names:
                    raise RuntimeError(
                        f"dynaforge's model terms {model.feature_names_} differ "
                        f"from the task's {names}"
                    )
                dyn[method][str(eta)].append(
                    {
                        "seed": seed,
                        **_score(model.coefficients_, data, fit_s),
                        "threshold": float(model.threshold_),
                    }
                )
                fit_s, pmodel = timed(
                    lambda m=method: _pysindy_fit(x, t, m, threshold=PYSINDY_THRESHOLD, seed=seed)
                )
                peer[method][str(eta)].append(
                    {"seed": seed, **_score(_pysindy_coefficients(pmodel, names), data, fit_s)}
                )
            # Hindsight grid (coefficients only; a weak library is built once per K and seed).
            for method in METHODS:
                for k in cfg["hindsight_weak_k"] if method == "weak" else (None,):
                    lib = (
                        _pysindy_library("weak", t, weak_k=k, seed=seed)[0]
                        if method == "weak"
                        else None
                    )
                    for thr in HINDSIGHT_THRESHOLDS:
                        pmodel = _pysindy_fit(x, t, method, threshold=thr, seed=seed, library=lib)
                        grid[(method, thr, k)][str(eta)].append(
                            {
                                "seed": seed,
                                **_score(_pysindy_coefficients(pmodel, names), data, float("nan")),
                            }
                        )
            if eta == 0 and seed == 0:
                predict_data = data

    sweep = {
        "dynaforge": {m: {e: _aggregate(r) for e, r in d.items()} for m, d in dyn.items()},
        "pysindy": {m: {e: _aggregate(r) for e, r in d.items()} for m, d in peer.items()},
    }
    hindsight: dict[str, dict[str, Any]] = {m: {} for m in METHODS}
    for method in METHODS:
        for eta in NOISES:
            best_key, best = None, None
            for key in grid_keys:
                if key[0] != method:
                    continue
                agg = _aggregate(grid[key][str(eta)])
                rank = (agg["exact_support"], -agg["median_max_rel_error"])
                if best is None or rank > (best["exact_support"], -best["median_max_rel_error"]):
                    best_key, best = key, agg
            best = {k: v for k, v in best.items() if k != "median_fit_time_s"}
            hindsight[method][str(eta)] = {"threshold": best_key[1], "weak_K": best_key[2], **best}
    grid_summary = {
        f"{m} thr={thr}" + (f" K={k}" if k else ""): {
            e: int(sum(r["exact_support"] for r in rows)) for e, rows in d.items()
        }
        for (m, thr, k), d in grid.items()
    }

    # ---- predict time per call ------------------------------------------------------------
    data = predict_data
    x_clean = data.clean.x[0].numpy()
    dyn_model = _dyn_model("fd").fit(data.clean)
    py_model = _pysindy_fit(
        x_clean, data.clean.t.numpy(), "fd", threshold=PYSINDY_THRESHOLD, seed=0
    )
    rng = np.random.default_rng(7)
    states = {
        1: x_clean[rng.integers(0, len(x_clean), 1)],
        cfg["batch"]: x_clean[rng.integers(0, len(x_clean), cfg["batch"])],
    }
    predict: dict[str, Any] = {}
    for batch, xs in states.items():
        xs = np.ascontiguousarray(xs)
        calls = cfg["calls_1"] if batch == 1 else cfg["calls_batch"]
        d_out = np.asarray(dyn_model.predict(xs))
        p_out = np.asarray(py_model.predict(xs))
        if d_out.shape != xs.shape or p_out.shape != xs.shape:
            raise RuntimeError(
                f"predict shapes: dynaforge {d_out.shape}, PySINDy {p_out.shape}, input {xs.shape}"
            )
        t_dyn = _per_call_seconds(lambda: dyn_model.predict(xs), calls)
        t_py = _per_call_seconds(lambda: py_model.predict(xs), calls)
        scale = float(np.max(np.abs(p_out)))
        predict[str(batch)] = {
            "batch": batch,
            "calls": calls,
            "dynaforge_s": t_dyn,
            "pysindy_s": t_py,
            "ratio": t_py / t_dyn,
            "max_abs_diff_over_max_abs": float(np.max(np.abs(d_out - p_out))) / scale,
        }
    ratio_1 = predict["1"]["ratio"]

    return {
        "name": "sindy",
        "quick": quick,
        "pysindy_version": pysindy.__version__,
        "config": {
            **cfg,
            "seeds": seeds,
            "noises": list(NOISES),
            "dt": DT,
            "n_samples": N_SAMPLES,
            "library": LIBRARY,
            "term_names": names,
        },
        "dynaforge_settings": {
            m: {"library": LIBRARY, "differentiation": m, "threshold": None} for m in METHODS
        },
        "pysindy_settings": {
            "optimizer": f"STLSQ(threshold={PYSINDY_THRESHOLD}, alpha={PYSINDY_ALPHA})",
            "fd": "FiniteDifference(order=2)",
            "smoothed-fd": "SmoothedFiniteDifference(savgol window_length=11, polyorder=3)",
            "weak": f"WeakPDELibrary(PolynomialLibrary(2, include_bias=False), "
            f"include_bias=True, K={PYSINDY_WEAK_K}, H_xt=L/20, p=4)",
            "why": "ps.SINDy() defaults = README / Feature Overview Lorenz example (dt 0.002); "
            "weak-form defaults as in PySINDy example 12 (Lorenz, K=100)",
            "signature_defaults": defaults,
        },
        "sweep": sweep,
        "pysindy_hindsight": hindsight,
        "pysindy_grid_exact_support": grid_summary,
        "predict": predict,
        "goal": {"predict_speedup_1_state": GOAL_PREDICT_RATIO},
        "goal_met": {"predict_speedup_1_state": ratio_1 >= GOAL_PREDICT_RATIO},
    }


def report(result: dict[str, Any]) -> None:
    noises = result["config"]["noises"]
    n = len(result["config"]["seeds"])
    cols = ["tool / derivative"] + [_eta_label(e) for e in noises]
    sweep = result["sweep"]

    def rows_for(fmt: Callable[[dict], str]) -> list[list[str]]:
        rows = []
        for tool, label in (
            ("dynaforge", "dynaforge (auto threshold)"),
            ("pysindy", f"PySINDy (STLSQ {PYSINDY_THRESHOLD})"),
        ):
            for method in METHODS:
                rows.append(
                    [f"{label}, {method}"] + [fmt(sweep[tool][method][str(e)]) for e in noises]
                )
        return rows

    print_table(
        f"SINDy noise sweep, Lorenz-63 dt={DT}, {N_SAMPLES} samples, poly2: exact 7-term "
        f"support (of {n} seeds)",
        cols,
        rows_for(lambda a: f"{a['exact_support']}/{a['n_seeds']}"),
        [
            "Same noisy arrays for both tools (built by dynaforge.tasks.discovery); noise std "
            "= η × RMS of each component.",
            f"PySINDy {result['pysindy_version']}: {result['pysindy_settings']['optimizer']} "
            "(its default and its Lorenz examples' setting); weak = WeakPDELibrary defaults "
            f"(K={PYSINDY_WEAK_K}).",
        ],
    )
    print_table(
        "Worst relative coefficient error on the true support, worst over seeds (median)",
        cols,
        rows_for(lambda a: f"{a['worst_max_rel_error']:.3g} ({a['median_max_rel_error']:.3g})"),
        [
            "A true term that is missed counts 1.0; spurious terms are not in this figure "
            "(see the support table)."
        ],
    )
    rows = []
    for method in METHODS:
        for e in noises:
            d = sweep["dynaforge"][method][str(e)]["median_fit_time_s"]
            p = sweep["pysindy"][method][str(e)]["median_fit_time_s"]
            rows.append(
                [f"{method}, {_eta_label(e)}", f"{d * 1e3:.1f}", f"{p * 1e3:.1f}", fmt_ratio(p / d)]
            )
    print_table(
        "Fit time (ms, median over seeds)",
        ["derivative / noise", "dynaforge", "PySINDy", "PySINDy / dynaforge"],
        rows,
        [
            "dynaforge includes its automatic threshold selection; PySINDy fits one fixed "
            "threshold (weak: including building WeakPDELibrary)."
        ],
    )
    hs = result["pysindy_hindsight"]
    rows = []
    for method in METHODS:
        cells = []
        for e in noises:
            h = hs[method][str(e)]
            setting = f"thr {h['threshold']:g}" + (f", K {h['weak_K']}" if h["weak_K"] else "")
            cells.append(f"{h['exact_support']}/{h['n_seeds']} ({setting})")
        rows.append([f"PySINDy, {method}"] + cells)
    print_table(
        "PySINDy with its threshold picked with hindsight (using the truth): exact support",
        cols,
        rows,
        [
            f"Best of STLSQ thresholds {HINDSIGHT_THRESHOLDS}" + " (weak also K in "
            f"{tuple(result['config']['hindsight_weak_k'])})"
            " per method and η, by exact supports then median error. Not a usable setting: an "
            "upper bound for any fixed PySINDy threshold on this sweep."
        ],
    )
    pred = result["predict"]
    rows = []
    for p in pred.values():
        rows.append(
            [
                f"{p['batch']:,} state{'s' if p['batch'] > 1 else ''}",
                f"{p['dynaforge_s'] * 1e6:.1f}",
                f"{p['pysindy_s'] * 1e6:.1f}",
                fmt_ratio(p["ratio"]),
                f"{p['max_abs_diff_over_max_abs']:.1e}",
            ]
        )
    met = result["goal_met"]["predict_speedup_1_state"]
    print_table(
        "predict time per call (µs, median of single calls), models fitted by fd on clean data",
        ["input", "dynaforge", "PySINDy", "speedup", "max |Δ| / max |ẋ|"],
        rows,
        [
            f"Goal: >= {GOAL_PREDICT_RATIO:.0f}x faster than PySINDy on one state: "
            f"{goal_mark(met)} ({fmt_ratio(pred['1']['ratio'])}).",
            "Input: float64 NumPy (1, 3) and (1000, 3) states from the clean trajectory; "
            "|Δ| compares the two tools' outputs (different fits of the same data).",
        ],
    )


def main() -> None:
    report(run(quick_flag()))


if __name__ == "__main__":
    main()
