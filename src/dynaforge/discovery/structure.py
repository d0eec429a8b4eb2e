"""Is a discovered 3-variable model the Lorenz system in disguise?

A model found in learned coordinates (e.g. by the SINDy autoencoder) can be Lorenz-63 up to
a relabelling, a rescaling (with sign) of each coordinate and a shift of the third. With
Lorenz ``u' = σ(v − u)``, ``v' = u(ρ − w) − v``, ``w' = uv − βw`` and latent coordinates
``a = αu``, ``b = γv``, ``c = δw + c₀`` (α, γ, δ ≠ 0), the latent model is

    a' = A₁ a + A₂ b                     A₁ = −σ,  A₂ = σα/γ
    b' = B₁ a + B₂ b + B₃ a c            B₁ = (γ/α)(ρ + c₀/δ),  B₂ = −1,  B₃ = −γ/(αδ)
    c' = K + C₁ c + C₂ a b               K = βc₀,  C₁ = −β,  C₂ = δ/(αγ)

so the support has 7 terms (8 with a shift, K ≠ 0), and the physical parameters are invariant
combinations of the coefficients:

    σ = −A₁,   β = −C₁,   ρ = (A₂/σ)(B₁ + K B₃/β)   (= −A₂B₁/A₁ without a shift),

plus two checks: ``B₂ = −1`` (time is not rescaled; reported as ``unit``) and ``B₃C₂ = −1/α²
< 0`` (required: with ``B₃C₂ > 0`` no real rescaling maps the model to Lorenz). The shift, in
Lorenz units, is ``c₀/δ = −K A₂ B₃ / (σβ)`` (``w = 0`` sits at ``c = c₀``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class LorenzMatch:
    """A model recognised as Lorenz-63.

    Attributes:
        permutation: latent indices playing the roles of Lorenz ``(x, y, z)``.
        n_terms: nonzero coefficients of the whole model (7, or 8 with a shift).
        sigma, rho, beta: the implied Lorenz parameters (invariant under the rescaling).
        unit: the coefficient ``B₂`` of ``y`` in the ``y'`` equation (−1 for Lorenz).
        shift: ``c₀/δ``, the offset of the third coordinate in Lorenz units (0 if none).
        coefficients: the matched coefficients by symbol (``A1 A2 B1 B2 B3 K C1 C2``).
    """

    permutation: tuple[int, int, int]
    n_terms: int
    sigma: float
    rho: float
    beta: float
    unit: float
    shift: float
    coefficients: dict[str, float]


def _exponents(names: Sequence[str]) -> tuple[list[str], list[tuple[int, ...]]]:
    """Variable names (from the degree-1 terms, in order) and each term's exponent vector."""
    variables: list[str] = []
    for name in names:
        if name != "1" and " " not in name and "^" not in name:
            variables.append(name)
    exps = []
    for name in names:
        e = [0] * len(variables)
        if name != "1":
            for factor in name.split(" "):
                var, _, power = factor.partition("^")
                if var not in variables:
                    raise ValueError(
                        f"term {name!r} uses {var!r}, which is no library variable "
                        f"(variables: {variables})"
                    )
                e[variables.index(var)] += int(power) if power else 1
        exps.append(tuple(e))
    return variables, exps


def lorenz_structure(
    coefficients: np.ndarray, names: Sequence[str], *, tol: float = 0.0
) -> LorenzMatch | None:
    """Lorenz structure of a 3-variable model, or None.

    Args:
        coefficients: ``(3, P)`` (row = equation of ``dz_i/dt``, column = library term).
        names: the ``P`` term names (``"1"``, ``"z1"``, ``"z1 z3"``, ``"z2^2"`` ...).
        tol: coefficients with ``|c| <= tol`` count as absent (0: exact zeros, as left by
            thresholding).

    Returns:
        The match (see :class:`LorenzMatch`) when, for some assignment of the latent
        coordinates to Lorenz's roles, the active terms are exactly the Lorenz pattern
        (``x' ∋ x, y``; ``y' ∋ y, x z`` and ``x`` unless a shift supplies ρ; ``z' ∋ z, x y``
        and optionally a constant) and ``B₃C₂ < 0``; else None.
    """
    coefficients = np.asarray(coefficients, dtype=np.float64)
    if coefficients.ndim != 2 or coefficients.shape[0] != 3 or coefficients.shape[1] != len(names):
        raise ValueError(
            f"coefficients must be shaped (3, {len(names)}) to match the names, got "
            f"{coefficients.shape}"
        )
    variables, exps = _exponents(names)
    if len(variables) != 3:
        raise ValueError(f"need a library in 3 variables, found {variables}")
    column = {e: j for j, e in enumerate(exps)}
    active = np.abs(coefficients) > tol
    n_terms = int(active.sum())
    if n_terms not in (7, 8):
        return None

    def unit(*idx: int) -> tuple[int, ...]:
        e = [0, 0, 0]
        for i in idx:
            e[i] += 1
        return tuple(e)

    for ix, iy, iz in itertools.permutations(range(3)):
        # (equation, term exponents, symbol, required?)
        pattern = [
            (ix, unit(ix), "A1", True),
            (ix, unit(iy), "A2", True),
            (iy, unit(ix), "B1", False),
            (iy, unit(iy), "B2", True),
            (iy, unit(ix, iz), "B3", True),
            (iz, unit(), "K", False),
            (iz, unit(iz), "C1", True),
            (iz, unit(ix, iy), "C2", True),
        ]
        if any(e not in column for _, e, _, req in pattern if req):
            continue
        pattern = [p for p in pattern if p[1] in column]  # e.g. a library without constant
        allowed = np.zeros_like(active)
        for eq, e, _, _ in pattern:
            allowed[eq, column[e]] = True
        if (active & ~allowed).any():
            continue
        values = {"B1": 0.0, "K": 0.0}
        values.update(
            {
                sym: float(coefficients[eq, column[e]]) if active[eq, column[e]] else 0.0
                for eq, e, sym, _ in pattern
            }
        )
        if any(values[sym] == 0.0 for _, _, sym, req in pattern if req):
            continue
        if values["B1"] == 0.0 and values["K"] == 0.0:  # ρ would be 0: not a Lorenz flow
            continue
        if values["B3"] * values["C2"] >= 0:
            continue
        sigma, beta = -values["A1"], -values["C1"]
        rho = values["A2"] / sigma * (values["B1"] + values["K"] * values["B3"] / beta)
        shift = -values["K"] * values["A2"] * values["B3"] / (sigma * beta)
        return LorenzMatch(
            permutation=(ix, iy, iz),
            n_terms=n_terms,
            sigma=sigma,
            rho=rho,
            beta=beta,
            unit=values["B2"],
            shift=shift,
            coefficients=values,
        )
    return None


def affine_map(
    z_latent: np.ndarray, z_true: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares affine map from learned to true coordinates, ``z_true ≈ A z + b``.

    Args:
        z_latent: ``(M, 3)`` learned coordinates (any leading shape is flattened).
        z_true: ``(M, 3)`` the true coordinates at the same samples.

    Returns:
        ``A (3, 3)``, ``b (3,)`` and ``r2 (3,)``, the coefficient of determination of each true
        coordinate (1 = the learned coordinates are an exact affine image of the truth).
    """
    zl = np.asarray(z_latent, dtype=np.float64).reshape(-1, np.shape(z_latent)[-1])
    zt = np.asarray(z_true, dtype=np.float64).reshape(-1, np.shape(z_true)[-1])
    if zl.shape[0] != zt.shape[0] or zl.shape[0] < zl.shape[1] + 1:
        raise ValueError(
            f"need matching sample counts (more than {zl.shape[1]}), got "
            f"{zl.shape[0]} latent and {zt.shape[0]} true samples"
        )
    design = np.hstack([zl, np.ones((zl.shape[0], 1))])
    solution, *_ = np.linalg.lstsq(design, zt, rcond=None)
    residual = zt - design @ solution
    ss_tot = ((zt - zt.mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1.0 - (residual**2).sum(axis=0) / np.where(ss_tot > 0, ss_tot, 1.0)
    return solution[:-1].T.copy(), solution[-1].copy(), r2
