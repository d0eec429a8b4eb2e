"""High-dimensional embeddings of low-dimensional dynamics: the SINDy-autoencoder data.

Champion, Lusch, Kutz & Brunton, "Data-driven discovery of coordinates and governing
equations", PNAS 116, 22445 (2019), Lorenz example: a 128-dimensional signal carrying the three
(scaled) Lorenz states and their cubes on the first six Legendre polynomials,

    x(t) = sum_i modes[i] z_i(t) + sum_i modes[3 + i] z_i(t)^3,      i = 1..3,

so the coordinates in which the dynamics are simple are hidden behind a fixed nonlinear map.
Derivatives are exact: ``dz`` from the equations, ``dx`` by the chain rule through the map.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import torch

from dynaforge.systems.lorenz import Lorenz63

#: Initial-condition box of Champion et al. (their ``example_lorenz.get_lorenz_data``):
#: uniform in ``means ± widths / 2`` (unscaled Lorenz units).
IC_MEANS = (0.0, 0.0, 25.0)
IC_WIDTHS = (72.0, 96.0, 82.0)


def legendre_modes(n_points: int = 128, n_modes: int = 6) -> np.ndarray:
    """Legendre polynomials ``P_0 .. P_{n_modes-1}`` on ``linspace(-1, 1, n_points)``.

    Returns:
        ``(n_modes, n_points)`` float64; row ``k`` is ``P_k`` (so ``P_k(1) = 1``).
    """
    if n_points < 2 or n_modes < 1:
        raise ValueError(f"need n_points >= 2 and n_modes >= 1, got {n_points}, {n_modes}")
    grid = np.linspace(-1.0, 1.0, n_points)
    return np.stack([np.polynomial.Legendre.basis(k)(grid) for k in range(n_modes)])


def cubic_library_names(state_names: tuple[str, ...] = ("z1", "z2", "z3")) -> list[str]:
    """Term names of the cubic polynomial library with constant (the shared convention).

    Degree-graded; within a degree ``itertools.combinations_with_replacement`` order; powers
    as ``z1^2``, products joined by one space: ``1, z1, z2, z3, z1^2, z1 z2, ..., z3^3``.
    """
    names = ["1"]
    for degree in (1, 2, 3):
        for combo in itertools.combinations_with_replacement(range(len(state_names)), degree):
            parts = []
            for i in sorted(set(combo)):
                k = combo.count(i)
                parts.append(state_names[i] if k == 1 else f"{state_names[i]}^{k}")
            names.append(" ".join(parts))
    return names


def lorenz_true_coefficients(
    system: Lorenz63, scale: float, names: list[str] | None = None
) -> np.ndarray:
    """Lorenz-63 in the coordinates ``z = scale * (x, y, z)`` on the cubic library.

    ``z1' = σ(z2 - z1)``, ``z2' = ρ z1 - z2 - z1 z3 / scale``, ``z3' = z1 z2 / scale - β z3``.

    Returns:
        ``(3, 20)`` float64 (row = equation, column = library term; see
        :func:`cubic_library_names`).
    """
    names = cubic_library_names() if names is None else names
    col = {n: j for j, n in enumerate(names)}
    xi = np.zeros((3, len(names)))
    xi[0, col["z1"]], xi[0, col["z2"]] = -system.sigma, system.sigma
    xi[1, col["z1"]], xi[1, col["z2"]], xi[1, col["z1 z3"]] = system.rho, -1.0, -1.0 / scale
    xi[2, col["z3"]], xi[2, col["z1 z2"]] = -system.beta, 1.0 / scale
    return xi


@dataclasses.dataclass
class EmbeddedLorenzData:
    """Lorenz trajectories and their 128-dimensional embedding (all float64 numpy).

    Attributes:
        t: ``(T,)`` sample times (time units).
        z: ``(N, T, 3)`` scaled Lorenz states (``scale`` × the physical state).
        dz: ``(N, T, 3)`` their exact time derivatives (1 / time unit).
        x: ``(N, T, n_points)`` the embedded signal (plus noise, if any).
        dx: ``(N, T, n_points)`` its exact time derivative (plus noise, if any).
        modes: ``(6, n_points)`` the Legendre modes carrying ``z`` and ``z**3``.
        scale: factor applied to the physical Lorenz state.
        true_coefficients: ``(3, 20)`` the Lorenz model in ``z`` on the cubic library with
            constant (:func:`cubic_library_names` order).
        state_names: names of the latent states, ``("z1", "z2", "z3")``.
        noise: std of the Gaussian noise added to ``x`` and ``dx``.
        seed: the seed that drew the initial conditions and the noise.
    """

    t: np.ndarray
    z: np.ndarray
    dz: np.ndarray
    x: np.ndarray
    dx: np.ndarray
    modes: np.ndarray
    scale: float
    true_coefficients: np.ndarray
    state_names: tuple[str, ...] = ("z1", "z2", "z3")
    noise: float = 0.0
    seed: int = 0

    @property
    def n_samples(self) -> int:
        """Number of (x, dx) snapshots, ``N * T``."""
        return self.x.shape[0] * self.x.shape[1]

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """Snapshots as rows: ``x`` and ``dx`` reshaped to ``(N * T, n_points)``."""
        n_points = self.x.shape[-1]
        return self.x.reshape(-1, n_points), self.dx.reshape(-1, n_points)


def embedded_lorenz_data(
    n_ics: int,
    *,
    steps: int = 250,
    dt: float = 0.02,
    scale: float = 1.0 / 40.0,
    noise: float = 0.0,
    seed: int = 0,
    system: Lorenz63 | None = None,
    n_points: int = 128,
) -> EmbeddedLorenzData:
    """The Lorenz data set of Champion et al. (2019).

    Initial conditions uniform in the box centred on ``(0, 0, 25)`` with widths
    ``(72, 96, 82)``; each trajectory has ``steps`` samples ``t = 0, dt, ..., (steps-1) dt``
    (the paper's ``np.arange(0, 5, 0.02)``: 250 samples) from dynaforge's reference solver
    (DOP853, rtol = atol = 1e-12); ``dz`` is the right-hand side at those states; both are
    multiplied by ``scale``; then ``x = modes[:3]ᵀ z + modes[3:]ᵀ z³`` and
    ``dx = modes[:3]ᵀ dz + modes[3:]ᵀ (3 z² dz)``. ``noise > 0`` adds independent Gaussian
    noise of that std to ``x`` and to ``dx`` (the paper uses 1e-6).

    Args:
        n_ics: number of trajectories ``N``.
        steps: samples per trajectory ``T``.
        dt: sampling interval (time units).
        scale: factor applied to the Lorenz state (paper: 1/40).
        noise: std of the additive noise on ``x`` and ``dx``.
        seed: seeds one ``numpy.random.Generator`` for the initial conditions and the noise.
        system: the Lorenz system (default: classic parameters 10, 28, 8/3).
        n_points: length of the embedded signal (paper: 128).
    """
    system = Lorenz63() if system is None else system
    if not isinstance(system, Lorenz63):
        raise ValueError(f"the embedding is defined for Lorenz63, got {type(system).__name__}")
    if n_ics < 1 or steps < 2:
        raise ValueError(f"need n_ics >= 1 and steps >= 2, got n_ics={n_ics}, steps={steps}")
    if not (dt > 0 and scale > 0 and noise >= 0):
        raise ValueError(f"need dt > 0, scale > 0, noise >= 0; got {dt}, {scale}, {noise}")
    rng = np.random.default_rng(seed)
    ics = np.asarray(IC_WIDTHS) * (rng.random((n_ics, 3)) - 0.5) + np.asarray(IC_MEANS)
    z_phys = system.integrate_reference(torch.from_numpy(ics), dt=dt, steps=steps - 1)
    dz_phys = system.rhs(0.0, z_phys)
    z = z_phys.numpy() * scale
    dz = dz_phys.numpy() * scale

    modes = legendre_modes(n_points, 6)
    x = z @ modes[:3] + z**3 @ modes[3:]
    dx = dz @ modes[:3] + (3.0 * z**2 * dz) @ modes[3:]
    if noise > 0:
        x = x + noise * rng.standard_normal(x.shape)
        dx = dx + noise * rng.standard_normal(dx.shape)
    return EmbeddedLorenzData(
        t=dt * np.arange(steps),
        z=z,
        dz=dz,
        x=x,
        dx=dx,
        modes=modes,
        scale=float(scale),
        true_coefficients=lorenz_true_coefficients(system, scale),
        noise=float(noise),
        seed=seed,
    )
