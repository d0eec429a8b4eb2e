"""The equation-discovery task: a data recipe with known truth, and how a discovered model is
scored against it.

Data: trajectories of a system integrated by the reference solver (DOP853 at rtol = atol =
1e-12) from initial conditions on the attractor, their exact derivatives from the equations,
and a noisy copy: Gaussian noise of standard deviation ``η × RMS`` of each state component
(RMS over all trajectories and times, so ``z`` of Lorenz-63, which lives around 25, gets more
noise than its fluctuations alone would give). The initial conditions and the noise come from
separate streams of the same seed.

Scoring: the found coefficient matrix ``(D, P)`` against the true one for the same library:
the support (which terms are nonzero) and the largest relative error on the true support.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy
import torch

from dynaforge.data import Trajectories
from dynaforge.discovery.libraries import AbstractLibrary, parse_library
from dynaforge.systems import AbstractSystem, Lorenz63, Rossler, get_system


@dataclasses.dataclass(frozen=True)
class DiscoveryTaskConfig:
    """How the data of an equation-discovery benchmark is made.

    Attributes:
        system: registry name of the system (its equations must be known to
            :func:`true_coefficients`).
        dt: sampling interval (time units).
        n_samples: total samples, split evenly over the trajectories.
        n_trajectories: number of trajectories.
        noise: ``η``: noise standard deviation as a fraction of each component's RMS.
        seed: seeds the initial conditions and the noise (separate streams).
        library: library spec (see :func:`dynaforge.discovery.parse_library`) the true
            coefficients are expressed in.
    """

    system: str = "lorenz63"
    dt: float = 0.002
    n_samples: int = 5000
    n_trajectories: int = 1
    noise: float = 0.0
    seed: int = 0
    library: str = "poly2"

    def __post_init__(self) -> None:
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be a positive number, got {self.dt!r}")
        for name in ("n_samples", "n_trajectories"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_samples // self.n_trajectories < 2:
            raise ValueError(
                f"n_samples = {self.n_samples} over {self.n_trajectories} trajectories leaves "
                "fewer than 2 samples per trajectory"
            )
        if not (
            isinstance(self.noise, (int, float)) and math.isfinite(self.noise) and self.noise >= 0
        ):
            raise ValueError(f"noise must be a finite number >= 0, got {self.noise!r}")


@dataclasses.dataclass(frozen=True)
class DiscoveryData:
    """Everything a discovery run needs, with the truth to score it.

    Attributes:
        config: the recipe.
        clean: reference trajectories ``x`` ``(N, T, D)``.
        noisy: the same with observation noise (``clean`` itself when ``noise == 0``).
        x_dot: ``(N, T, D)`` exact derivatives of ``clean`` from the equations.
        true_coefficients: ``(D, P)`` the system's equations in the library.
        library_names: the ``P`` term names.
        noise_std: ``(D,)`` standard deviation of the added noise per component.
    """

    config: DiscoveryTaskConfig
    clean: Trajectories
    noisy: Trajectories
    x_dot: np.ndarray
    true_coefficients: np.ndarray
    library_names: list[str]
    noise_std: np.ndarray


def _lorenz63_rhs(
    system: Lorenz63, x: sympy.Symbol, y: sympy.Symbol, z: sympy.Symbol
) -> list[sympy.Expr]:
    s, r, b = (sympy.Float(v, 17) for v in (system.sigma, system.rho, system.beta))
    return [s * (y - x), x * (r - z) - y, x * y - b * z]


def _rossler_rhs(system: Rossler, x: sympy.Symbol, y: sympy.Symbol, z: sympy.Symbol
                 ) -> list[sympy.Expr]:  # fmt: skip
    a, b, c = (sympy.Float(v, 17) for v in (system.a, system.b, system.c))
    return [-y - z, x + a * y, b + x * z - c * z]


#: System class -> its right-hand side as sympy expressions in its state symbols.
_SYMBOLIC_RHS: dict[type, Callable[..., list[sympy.Expr]]] = {
    Lorenz63: _lorenz63_rhs,
    Rossler: _rossler_rhs,
}


def true_coefficients(system: AbstractSystem, library: AbstractLibrary) -> np.ndarray:
    """The system's equations as a ``(D, P)`` coefficient matrix in ``library``.

    The library is fitted to the system's state names if it is not yet. Raises ``ValueError``
    when the system's equations are not known symbolically or the library lacks a term they
    need.
    """
    try:
        rhs_fn = _SYMBOLIC_RHS[type(system)]
    except KeyError:
        known = ", ".join(cls.__name__ for cls in _SYMBOLIC_RHS)
        raise ValueError(
            f"true coefficients are known only for {known}, not {type(system).__name__}"
        ) from None
    if not library.is_fitted:
        library.fit(system.state_names)
    if library.state_names_ != tuple(system.state_names):
        raise ValueError(
            f"library fitted on states {library.state_names_}, system has {system.state_names}"
        )
    symbols = [sympy.Symbol(n) for n in system.state_names]
    columns = {sympy.expand(e): j for j, e in enumerate(library.to_sympy(symbols))}
    names = library.names()
    out = np.zeros((system.dim, library.n_terms))
    for i, eq in enumerate(rhs_fn(system, *symbols)):
        for term, coef in sympy.expand(eq).as_coefficients_dict().items():
            if term not in columns:
                raise ValueError(
                    f"library {library.spec()!r} (terms {', '.join(names)}) cannot express the "
                    f"term {term} of d{system.state_names[i]}/dt"
                )
            out[i, columns[term]] += float(coef)
    return out


def build_discovery_data(config: DiscoveryTaskConfig) -> DiscoveryData:
    """Clean reference trajectories, exact derivatives, a noisy copy and the true model."""
    system = get_system(config.system)
    library = parse_library(config.library).fit(system.state_names)
    truth = true_coefficients(system, library)
    steps = config.n_samples // config.n_trajectories
    generator = torch.Generator().manual_seed(config.seed)
    x0 = system.sample_initial_conditions(config.n_trajectories, generator)
    x = system.integrate_reference(x0, dt=config.dt, steps=steps - 1)
    with torch.no_grad():
        x_dot = system.rhs(0.0, x).numpy().copy()
    t = config.dt * torch.arange(steps, dtype=torch.float64)
    meta = {
        "system": system.name,
        "parameters": system.parameters(),
        "dt": config.dt,
        "solver": "DOP853 rtol=atol=1e-12",
        "seed": config.seed,
        "source": "dynaforge.tasks.discovery",
    }
    clean = Trajectories(t=t, x=x, state_names=system.state_names, metadata=meta)
    xn = x.numpy()
    rms = np.sqrt((xn**2).reshape(-1, system.dim).mean(axis=0))
    noise_std = config.noise * rms
    if config.noise > 0:
        # A stream of its own: the same seed gives the same initial conditions at every noise.
        rng = np.random.default_rng([config.seed, 0x5EED])
        noisy_x = xn + rng.standard_normal(xn.shape) * noise_std
        noisy = Trajectories(
            t=t,
            x=torch.from_numpy(noisy_x),
            state_names=system.state_names,
            metadata={**meta, "noise": config.noise, "noise_of": "rms"},
        )
    else:
        noisy = clean
    return DiscoveryData(config, clean, noisy, x_dot, truth, library.names(), noise_std)


def coefficient_errors(found: np.ndarray, true: np.ndarray) -> dict[str, Any]:
    """Score a discovered ``(D, P)`` coefficient matrix against the truth.

    Returns:
        ``max_rel_error``: largest ``|found - true| / |true|`` over the true support (a missed
        term counts as 1.0); ``exact_support``: the nonzero sets are equal; ``n_terms``: nonzero
        terms found; ``false_positives`` / ``false_negatives``: terms found that are not in the
        truth / true terms missed; ``max_abs_spurious``: largest ``|coefficient|`` outside the
        true support (0 when none).
    """
    found = np.asarray(found, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if found.shape != true.shape:
        raise ValueError(f"found {found.shape} and true {true.shape} coefficients differ in shape")
    support_true = true != 0
    support_found = found != 0
    rel = np.abs(found[support_true] - true[support_true]) / np.abs(true[support_true])
    spurious = np.abs(found[~support_true])
    return {
        "max_rel_error": float(rel.max()) if rel.size else 0.0,
        "exact_support": bool(np.array_equal(support_true, support_found)),
        "n_terms": int(support_found.sum()),
        "false_positives": int((support_found & ~support_true).sum()),
        "false_negatives": int((~support_found & support_true).sum()),
        "max_abs_spurious": float(spurious.max()) if spurious.size else 0.0,
    }


def noise_sweep(
    noises: Sequence[float],
    seeds: Sequence[int],
    model_params: dict[str, Any],
    base: DiscoveryTaskConfig = DiscoveryTaskConfig(),
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Fit SINDy at every (noise, seed) and score it.

    Args:
        noises: noise levels ``η``.
        seeds: data seeds (initial condition and noise).
        model_params: keyword arguments of :class:`dynaforge.models.sindy.SINDy`; its
            ``library`` defaults to ``base.library``.
        base: the recipe; ``noise`` and ``seed`` are replaced per run.
        progress: print one line per run.

    Returns:
        One row per run: ``noise``, ``seed``, ``library``, ``differentiation``, the
        :func:`coefficient_errors` keys, ``threshold`` and ``fit_time_s`` (wall clock of
        ``fit``).
    """
    from dynaforge.models.sindy import SINDy

    params = {"library": base.library, **model_params}
    rows = []
    for noise in noises:
        for seed in seeds:
            config = dataclasses.replace(
                base, noise=float(noise), seed=int(seed), library=params["library"]
            )
            data = build_discovery_data(config)
            model = SINDy(**params)
            start = time.perf_counter()
            model.fit(data.noisy)
            elapsed = time.perf_counter() - start
            row = {
                "noise": float(noise),
                "seed": int(seed),
                "library": params["library"],
                "differentiation": model.differentiation,
                **coefficient_errors(model.coefficients_, data.true_coefficients),
                "threshold": model.threshold_,
                "fit_time_s": elapsed,
            }
            rows.append(row)
            if progress:
                print(
                    f"noise={noise:<6g} seed={seed:<3d} exact={row['exact_support']!s:5} "
                    f"terms={row['n_terms']:<3d} max_rel_err={row['max_rel_error']:.3g} "
                    f"fit={elapsed * 1e3:.0f} ms",
                    flush=True,
                )
    return rows
