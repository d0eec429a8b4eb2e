"""Dynamical systems, looked up by name through :data:`SYSTEMS`.

Chaotic systems with a cited largest Lyapunov exponent (their natural time scale): Lorenz-63
(:mod:`~dynaforge.systems.lorenz`), Rössler (:mod:`~dynaforge.systems.rossler`), Lorenz-96 with
``n`` sites (:mod:`~dynaforge.systems.lorenz96`), the Hénon–Heiles Hamiltonian sampled in its
chaotic sea (:mod:`~dynaforge.systems.henon_heiles`) and the Kuramoto–Sivashinsky PDE on ``n``
grid points, integrated by ETDRK4 (:mod:`~dynaforge.systems.ks`). The 1-D advection PDE (not an
ODE system: its data come from :func:`simulate_advection`) is in
:mod:`dynaforge.systems.advection`; charged particles (their own simulators and samplers) in
:mod:`dynaforge.systems.particles`."""

from __future__ import annotations

from dynaforge.systems.advection import BETAS, simulate_advection
from dynaforge.systems.base import AbstractSystem
from dynaforge.systems.henon_heiles import HenonHeiles
from dynaforge.systems.ks import KuramotoSivashinsky
from dynaforge.systems.lorenz import Lorenz63
from dynaforge.systems.lorenz96 import Lorenz96
from dynaforge.systems.particles import (
    EGNN_CHARGED,
    ChargedParticles,
    FixedChargeScattering,
    NBodyProtocol,
    ScatteringSample,
    simulate_charged_particles,
)
from dynaforge.systems.rossler import Rossler

#: name → system class; the one place a system name on the command line becomes an object.
#: Fixed-charge scattering is not an ODE system of the ``AbstractSystem`` kind (it has its own
#: simulator), but the physics models resolve its equations by name (``charge-lsq``,
#: ``physics-continuation``), and a saved model reloads its system from here.
SYSTEMS: dict[str, type[AbstractSystem]] = {
    Lorenz63.name: Lorenz63,
    Rossler.name: Rossler,
    Lorenz96.name: Lorenz96,
    HenonHeiles.name: HenonHeiles,
    KuramotoSivashinsky.name: KuramotoSivashinsky,
    FixedChargeScattering.name: FixedChargeScattering,  # type: ignore[dict-item]
}


def get_system(name: str, **parameters: float) -> AbstractSystem:
    """The system registered as ``name`` with the given physical parameters."""
    try:
        cls = SYSTEMS[name]
    except KeyError:
        known = ", ".join(sorted(SYSTEMS))
        raise ValueError(f"unknown system {name!r}; known systems: {known}") from None
    known_parameters = cls.parameter_names() if hasattr(cls, "parameter_names") else None
    if known_parameters is not None:
        unknown = sorted(set(parameters) - set(known_parameters))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for system {name}; its parameters: "
                f"{', '.join(known_parameters) or '(none)'}"
            )
    return cls(**parameters)


__all__ = [
    "BETAS",
    "EGNN_CHARGED",
    "SYSTEMS",
    "AbstractSystem",
    "ChargedParticles",
    "FixedChargeScattering",
    "HenonHeiles",
    "KuramotoSivashinsky",
    "Lorenz63",
    "Lorenz96",
    "NBodyProtocol",
    "Rossler",
    "ScatteringSample",
    "get_system",
    "simulate_advection",
    "simulate_charged_particles",
]
