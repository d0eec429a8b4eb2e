"""Charges from a trajectory: the inverse problem of fixed-charge scattering.

One particle of charge +1 and unit mass moves in the plane among ``P`` fixed charges ``q``
at known positions; only its positions are observed, every ``dt``. Its acceleration is
*linear* in the charges, ``a(x) = A(x) q`` with the basis ``A(x)`` ``(2, P)`` the field of
each unit charge at ``x`` (``FixedChargeScattering.acceleration_basis``). Two estimators:

- ``charge-lsq`` (physics, needs the equations): finite-difference accelerations of the
  observed positions give a weighted linear least-squares estimate of ``q``; a multiple-
  shooting fit of the positions through an accurate solve refines it (nonlinear least
  squares over ``q`` and one state per segment), and the refit is kept only when it lowers
  the residual on held-out samples.
- ``field-lsq`` (learned, no equations): the same least squares, with a network in place of
  the basis ``A(x)`` and a learned weight per step, trained end to end on the charges.

Finite differences and why the weights: at ``dt = 0.1`` a close pass moves the particle by
about a unit of length per sample, so no stencil resolves its acceleration there, while away
from the charges a 9-point stencil is exact to ~1e-10. Unweighted least squares is ruined by
the close passes (test MSE 30 on 300 simulated trajectories, against 0.083 for the mean);
weighting each step by ``1 / (e^2 + floor^2)``, with ``e`` the difference between the stencil
and the next lower-order one (an estimate of the lower order's error, so an upper bound on
the stencil's own), gives MSE 5e-15 on the same noise-free trajectories: the close passes get
no weight, the smooth flight between them determines the charges. The floor (``weight_floor``
times the trajectory's median ``e``) keeps a step whose two stencils agree by accident from
taking all the weight.

Shapes: positions ``(N, T, 2)`` (padding past each trajectory's length is NaN), charges
``(N, P)``, time in the units of ``dt``, lengths in those of the positions.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dynaforge.data import LabelledTrajectories, Normalizer, Trajectories
from dynaforge.models.base import (
    RAGGED,
    SCATTERING_EQUATIONS,
    SHAPED_STATE,
    STATIC,
    AbstractEstimator,
    GradientTrained,
)
from dynaforge.train import (
    EpochCallback,
    TrainConfig,
    TrainResult,
    as_train_config,
    resolve_device,
    train_module,
)

#: The system whose equations the physics models use by default.
DEFAULT_SYSTEM = "fixed-charge-scattering"

# -- finite differences -----------------------------------------------------------------------


@functools.cache
def stencil_weights(points: int, deriv: int) -> torch.Tensor:
    """Finite-difference weights ``(points, points)`` float64: row ``o`` holds the weights of
    samples ``s, ..., s + points - 1`` for derivative ``deriv`` at sample ``s + o`` (in units of
    ``dt^-deriv``), exact for polynomials of degree ``< points``. Computed in exact rational
    arithmetic (a Vandermonde solve in floats loses digits at 9 points)."""
    if not 1 <= deriv < points:
        raise ValueError(f"need 1 <= deriv < points, got deriv={deriv}, points={points}")
    rows = []
    for o in range(points):
        # Taylor conditions: sum_j w_j (j - o)^m / m! = [m == deriv], m = 0 .. points - 1.
        a = [[Fraction((j - o) ** m, math.factorial(m)) for j in range(points)]
             for m in range(points)]  # fmt: skip
        b = [Fraction(int(m == deriv)) for m in range(points)]
        for c in range(points):  # Gauss-Jordan, exact
            p = next(r for r in range(c, points) if a[r][c] != 0)
            a[c], a[p], b[c], b[p] = a[p], a[c], b[p], b[c]
            for r in range(points):
                if r != c and a[r][c] != 0:
                    f = a[r][c] / a[c][c]
                    a[r] = [x - f * y for x, y in zip(a[r], a[c], strict=True)]
                    b[r] -= f * b[c]
        rows.append([float(b[i] / a[i][i]) for i in range(points)])
    return torch.tensor(rows, dtype=torch.float64)


def finite_difference(
    x: torch.Tensor,
    dt: float,
    lengths: torch.Tensor | None = None,
    *,
    deriv: int,
    points: int,
    central_only: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Derivative ``deriv`` of sampled trajectories by a ``points``-point stencil.

    Args:
        x: ``(N, T, D)`` samples every ``dt``; values past ``lengths`` are ignored (may be NaN).
        dt: sampling interval (time units).
        lengths: ``(N,)`` valid samples per trajectory (None: all ``T``).
        deriv: 1 (velocity) or 2 (acceleration).
        points: stencil width; a central stencil is of order ``points - 1`` (odd ``points``).
        central_only: keep only samples with ``points // 2`` valid neighbours on both sides;
            otherwise the samples near each end get a one-sided stencil inside the trajectory
            (less accurate, but defined everywhere once a trajectory has ``points`` samples).

    Returns:
        ``(values (N, T, D), mask (N, T))``: the derivative (units of ``x`` per ``dt^deriv``),
        NaN where ``mask`` is False.
    """
    n, steps = x.shape[:2]
    lengths = torch.full((n,), steps) if lengths is None else lengths.to(torch.int64)
    half = points // 2
    k = torch.arange(steps)[None, :].expand(n, steps)
    last = lengths[:, None]
    start = torch.minimum((k - half).clamp(min=0), (last - points).clamp(min=0))
    offset = (k - start).clamp(max=points - 1)
    idx = (start[..., None] + torch.arange(points)).clamp(max=steps - 1)  # (N, T, points)
    window = torch.gather(
        torch.nan_to_num(x), 1, idx.reshape(n, -1, 1).expand(-1, -1, x.shape[-1])
    ).reshape(n, steps, points, x.shape[-1])
    weights = stencil_weights(points, deriv).to(x.dtype)[offset]  # (N, T, points)
    values = torch.einsum("ntp,ntpd->ntd", weights, window) / dt**deriv
    mask = (k < last) & (last >= points)
    if central_only:
        mask = mask & (k >= half) & (k + half < last)
    return torch.where(mask[..., None], values, torch.nan), mask


def error_weights(
    x: torch.Tensor,
    dt: float,
    lengths: torch.Tensor | None,
    *,
    points: int,
    weight_floor: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Accelerations and their least-squares weights.

    Returns ``(acc (N, T, D), weights (N, T), err (N, T))``: the central ``points``-point
    second derivative, the weight ``1 / (err^2 + floor^2)`` of each step (0 where the stencil
    does not fit; scaled to a maximum of 1 per trajectory) and ``err``, the norm of the
    difference to the ``points - 2`` stencil (the error estimate; 0 where undefined).
    ``floor`` is ``weight_floor`` times the trajectory's median ``err``.
    """
    acc, mask = finite_difference(x, dt, lengths, deriv=2, points=points)
    lower, _ = finite_difference(x, dt, lengths, deriv=2, points=points - 2)
    err = torch.where(mask, (acc - lower).norm(dim=-1), 0.0)
    med = _masked_median(err, mask)  # (N,)
    scale = acc.abs().nan_to_num().amax(dim=(1, 2)).clamp(min=1.0)
    # The absolute term keeps exactly polynomial motion (err == 0 everywhere) finite.
    floor2 = (weight_floor * med) ** 2 + (1e-13 * scale) ** 2
    w = torch.where(mask, 1.0 / (err**2 + floor2[:, None]), 0.0)
    w = w / w.amax(dim=1, keepdim=True).clamp(min=1e-300)
    return acc, w, err


def _masked_median(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Median of ``values[i][mask[i]]`` per row ``(N,)`` (0 for an empty row)."""
    filled = torch.where(mask, values, torch.nan)
    med = torch.nanquantile(filled, 0.5, dim=1) if filled.shape[1] else filled.sum(1)
    return torch.nan_to_num(med, nan=0.0)


def least_squares_charges(
    basis: torch.Tensor, acc: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted linear least squares ``argmin_q sum_t w_t |A_t q - a_t|^2`` per trajectory.

    Solved from the weighted rows themselves (SVD on the CPU), not the normal equations, whose
    squared condition number would cost digits when a charge is barely felt; a direction the
    data do not determine at all gets the minimum-norm answer (0).

    Args:
        basis: ``(N, T, D, P)`` the acceleration of each unit charge at each step.
        acc: ``(N, T, D)`` accelerations (NaN allowed where the weight is 0).
        weights: ``(N, T)`` non-negative weights.

    Returns:
        ``(N, P)`` float64 charges.
    """
    n, p = basis.shape[0], basis.shape[-1]
    root = weights.to(basis.dtype).clamp(min=0).sqrt()
    used = root > 0
    rows = torch.where(used[..., None, None], basis, 0.0) * root[..., None, None]
    rhs = torch.where(used[..., None], acc, 0.0) * root[..., None]
    driver = "gelsd" if basis.device.type == "cpu" else "gels"
    solution = torch.linalg.lstsq(rows.reshape(n, -1, p), rhs.reshape(n, -1, 1), driver=driver)
    return solution.solution[..., 0]


# -- an accurate batched solver ---------------------------------------------------------------

# Dormand & Prince (1980) 5(4) tableau: fifth-order solution, fourth-order error estimate, the
# last stage evaluated at the new point (and reused as the next step's first: FSAL).
_DP_A = torch.tensor(
    [
        [0, 0, 0, 0, 0, 0],
        [1 / 5, 0, 0, 0, 0, 0],
        [3 / 40, 9 / 40, 0, 0, 0, 0],
        [44 / 45, -56 / 15, 32 / 9, 0, 0, 0],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0],
    ],
    dtype=torch.float64,
)
_DP_B = torch.tensor([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
                     dtype=torch.float64)  # fmt: skip
_DP_E = torch.tensor(  # fifth- minus fourth-order weights, the last on the FSAL stage
    [35 / 384 - 5179 / 57600, 0, 500 / 1113 - 7571 / 16695, 125 / 192 - 393 / 640,
     -2187 / 6784 + 92097 / 339200, 11 / 84 - 187 / 2100, -1 / 40],
    dtype=torch.float64,
)  # fmt: skip


def solve_motion(
    acceleration,
    pos0: torch.Tensor,
    vel0: torch.Tensor,
    charges: torch.Tensor,
    *,
    dt: float,
    steps: int,
    rtol: float = 1e-10,
    atol: float | None = None,
    group: int = 1,
    max_steps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate ``x'' = acceleration(x, q)`` for a batch, each row with its own adaptive step.

    Dormand-Prince 5(4) with per-row error control, stepping exactly onto every sample time
    ``k dt``. Rows finish at their own pace and leave the working set, so a close pass in one
    row costs steps for that row only. Rows in consecutive blocks of ``group`` share their step
    sizes (the error of the block is its largest), which makes the result a smooth function of
    the initial values inside a block: finite differences between the rows of a block are then
    derivatives, not step-size noise.

    Args:
        acceleration: ``(pos (n, D), charges (n, P)) -> (n, D)``.
        pos0, vel0: ``(n, D)`` initial positions and velocities, float64.
        charges: ``(n, P)``.
        dt: sampling interval; ``steps`` samples after the initial one are returned.
        rtol, atol: tolerances on every component of position and velocity (``atol`` default
            ``rtol / 100``).
        group: rows per block of shared step sizes (``n`` divisible by it).
        max_steps: budget of attempted steps per block (None: ``10 000`` per sample). A block
            that exhausts it, whose step underflows, or whose state becomes non-finite (a
            particle through a charge without softening) is NaN from where it stopped.

    Returns:
        ``(positions (n, steps + 1, D), velocities (n, steps + 1, D))`` at ``0, dt, ...``.
    """
    n, d = pos0.shape
    if n % group:
        raise ValueError(f"{n} rows do not split into blocks of {group}")
    atol = rtol / 100 if atol is None else atol
    max_steps = 10_000 * steps if max_steps is None else max_steps
    out = torch.full((n, steps + 1, 2 * d), math.nan, dtype=torch.float64)
    out[:, 0, :d], out[:, 0, d:] = pos0, vel0
    if steps == 0 or n == 0:
        return out[..., :d], out[..., d:]
    q_all = charges.to(torch.float64)

    def f(state: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return torch.cat([state[:, d:], acceleration(state[:, :d], q)], dim=1)

    blocks = n // group
    y = out[:, 0].clone()
    k_first = f(y, q_all)
    t = torch.zeros(blocks, dtype=torch.float64)  # per block: time, next sample, step size
    nxt = torch.ones(blocks, dtype=torch.int64)
    h = torch.full((blocks,), 0.1 * dt, dtype=torch.float64)
    tries = torch.zeros(blocks, dtype=torch.int64)
    active = torch.arange(blocks)
    offsets = torch.arange(group)
    stages = torch.empty(7, n, 2 * d, dtype=torch.float64)
    while active.numel():
        full = active.numel() == blocks  # no gathers while every row still runs
        rows = None if full else (active[:, None] * group + offsets).reshape(-1)
        ya = y if full else y[rows]
        qa = q_all if full else q_all[rows]
        ks = stages[:, : ya.shape[0]]
        ks[0] = k_first if full else k_first[rows]
        ta, na, ha = (t, nxt, h) if full else (t[active], nxt[active], h[active])
        target = na.to(torch.float64) * dt
        hits = ha >= (target - ta) * (1 - 1e-12)
        step = torch.where(hits, target - ta, ha)
        hr = step.repeat_interleave(group)[:, None]
        for i in range(1, 6):
            inc = torch.einsum("s,snd->nd", _DP_A[i, :i], ks[:i])
            ks[i] = f(torch.addcmul(ya, hr, inc), qa)
        y5 = torch.addcmul(ya, hr, torch.einsum("s,snd->nd", _DP_B, ks[:6]))
        ks[6] = f(y5, qa)
        err = hr * torch.einsum("s,snd->nd", _DP_E, ks)
        tol = atol + rtol * torch.maximum(ya.abs(), y5.abs())
        ratio = (err.abs() / tol).amax(dim=1).reshape(-1, group).amax(dim=1)
        ratio = torch.nan_to_num(ratio, nan=math.inf)  # a non-finite state: reject, shrink
        accept = ratio <= 1.0
        acc_rows = accept.repeat_interleave(group)[:, None]
        y_new = torch.where(acc_rows, y5, ya)
        k_new = torch.where(acc_rows, ks[6], ks[0])
        record = accept & hits
        n_new = na + record.to(torch.int64)
        t_new = torch.where(accept, torch.where(hits, target, ta + step), ta)
        # Standard controller: safety 0.9, growth in [0.2, 5], a rejection only shrinks; a
        # step clipped onto a sample time says little about the natural one, so keep that.
        factor = (0.9 * ratio.clamp(min=1e-10) ** -0.2).clamp(0.2, 5.0)
        factor = torch.where(accept, factor, factor.clamp(max=1.0))
        h_new = torch.where(record & (step < ha), ha, step * factor)
        tries_new = (tries if full else tries[active]) + 1
        if full:
            y, k_first = y_new, k_new
            t, nxt, h, tries = t_new, n_new, h_new, tries_new
        else:
            y[rows], k_first[rows] = y_new, k_new
            t[active], nxt[active], h[active], tries[active] = t_new, n_new, h_new, tries_new
        if record.any():
            rec = active[record]
            rec_rows = (rec[:, None] * group + offsets).reshape(-1)
            out[rec_rows, nxt[rec].repeat_interleave(group) - 1] = y[rec_rows]
        done = (n_new > steps) | (h_new < 1e-14 * dt) | (tries_new >= max_steps)
        active = active[~done]
    return out[..., :d], out[..., d:]


# -- multiple shooting ------------------------------------------------------------------------


@dataclasses.dataclass
class _Segments:
    """Observed positions cut into overlapping segments of ``steps`` steps.

    Segment ``m`` covers samples ``m S, ..., m S + S`` (its last sample is the next one's
    first). ``obs`` ``(U, M, S + 1, D)`` (0 where not valid); ``fit`` and ``held``
    ``(U, M, S + 1)`` split the valid samples of the active segments into the fitted and the
    held-out ones; ``active`` ``(U, M)``: segments with at least 3 valid samples (the fewest
    that say anything about the charges once the segment's own state is fitted).
    """

    obs: torch.Tensor
    fit: torch.Tensor
    held: torch.Tensor
    active: torch.Tensor
    steps: int

    def repeat(self, times: int) -> _Segments:
        """The same segments for ``times`` units per trajectory (unit ``u`` is trajectory
        ``u % N``)."""
        tensors = (self.obs, self.fit, self.held, self.active)
        return _Segments(*(torch.cat([t] * times) for t in tensors), self.steps)


def _segments(x: torch.Tensor, lengths: torch.Tensor, steps: int, holdout_every: int) -> _Segments:
    total = x.shape[1]
    m = max(1, math.ceil((total - 1) / steps))
    idx = torch.arange(m)[:, None] * steps + torch.arange(steps + 1)  # (M, S + 1)
    obs = x[:, idx.clamp(max=total - 1)]
    valid = (idx[None] < lengths[:, None, None]) & (idx[None] < total)
    active = valid.sum(dim=-1) >= 3
    valid = valid & active[..., None]
    held = torch.zeros_like(valid)
    if holdout_every:
        held = valid & (idx % holdout_every == holdout_every // 2)[None]
        held[..., 0] = False  # the segment's first sample anchors its state
    obs = torch.where(valid[..., None], torch.nan_to_num(obs), 0.0)
    return _Segments(obs, valid & ~held, held, active, steps)


def _shoot(acceleration, seg, rows, q, states, dt, solver):
    """Residuals ``(R, S + 1, D)`` (predicted minus observed positions) of segment ``rows``
    (indices into the flattened ``(U * M)`` segments) and their Jacobian ``(R, S + 1, D, K)``
    with respect to ``(charges (P), state (2 D))``, by forward differences: each segment and
    its ``K`` perturbations form one block of shared step sizes, so the differences are smooth
    in the parameters (not step-size noise)."""
    m = seg.active.shape[1]
    d = seg.obs.shape[-1]
    p = q.shape[1]
    theta = torch.cat([q[rows // m], states.reshape(-1, 2 * d)[rows]], dim=1)  # (R, K)
    k = theta.shape[1]
    # Steps near the square root of the precision of a smooth map (the solver's tolerance).
    h = 1e-6 * theta.abs().clamp(min=1.0)
    copies = theta[:, None].repeat(1, k + 1, 1)
    copies[:, 1:] += torch.diag_embed(h)
    copies = copies.reshape(-1, k)
    pos, _ = solve_motion(
        acceleration,
        copies[:, p : p + d],
        copies[:, p + d :],
        copies[:, :p],
        dt=dt,
        steps=seg.steps,
        group=k + 1,
        **solver,
    )
    pos = pos.reshape(-1, k + 1, seg.steps + 1, d)
    r = pos[:, 0] - seg.obs.reshape(-1, seg.steps + 1, d)[rows]
    jac = (pos[:, 1:] - pos[:, :1]).permute(0, 2, 3, 1) / h[:, None, None, :]
    return r, jac


@dataclasses.dataclass
class _ShootingFit:
    q: torch.Tensor  # (U, P)
    states: torch.Tensor  # (U, M, 2 D)
    heldout: torch.Tensor  # (U,) RMS residual on the held-out samples (NaN: none)
    usable: torch.Tensor  # (U, M) segments the solver finished


def _fit_shooting(
    acceleration,
    seg: _Segments,
    q: torch.Tensor,
    states: torch.Tensor,
    fit_charges: torch.Tensor,
    dt: float,
    *,
    n_traj: int,
    iterations: int,
    outlier_factor: float,
    solver: dict[str, Any],
) -> _ShootingFit:
    """Levenberg-Marquardt on the fitted samples of every segment: the segment states, and the
    charges shared by a unit's segments where ``fit_charges`` ``(U,)`` is True. Unit ``u``
    is trajectory ``u % n_traj`` (the units are problems posed on the same ``n_traj``
    trajectories, solved together so that they share the solver's iterations).

    The normal equations are block-arrow shaped (each segment's state couples only to itself
    and to the ``P`` charges), so the states are eliminated segment by segment (a Schur
    complement): each step solves one ``(P, P)`` system per unit and one ``(2 D, 2 D)`` per
    segment. Damping and acceptance are per unit. The Jacobian is evaluated at every trial
    point together with its residual (one solve per iteration); a rejected trial's is dropped.

    Segments are left out, in every unit of the same trajectory alike, where the solver cannot
    finish them from the first guess (a close pass beyond its step budget), and, after a first
    round of ``iterations``, where their RMS residual exceeds ``outlier_factor`` times the
    median of their unit's (a close pass whose state fit found a wrong local minimum: left in,
    it drags the shared charges); a second round then fits without them.
    """
    units, m = seg.active.shape
    d = seg.obs.shape[-1]
    p = q.shape[1]
    rows = seg.active.reshape(-1).nonzero()[:, 0]
    owner = rows // m
    fitted = seg.fit.reshape(-1, seg.steps + 1)[rows].to(torch.float64)[..., None]
    free = fit_charges[owner].to(torch.float64)[:, None, None, None]

    def shared(bad: torch.Tensor) -> torch.Tensor:
        """Rows ``(R,)`` left out: ``bad`` in any unit of the same trajectory."""
        flags = torch.zeros(units * m, dtype=torch.int64)
        flags[rows] = bad.to(torch.int64)
        per_traj = flags.reshape(units // n_traj, n_traj, m).amax(dim=0)
        return per_traj.repeat(units // n_traj, 1).reshape(-1)[rows].to(torch.bool)

    def shoot(q, states, out=None):
        """Residuals and Jacobian of the rows not ``out`` (zeros for those: a segment left out
        costs no solver steps)."""
        k = p + 2 * d
        r = torch.zeros(rows.numel(), seg.steps + 1, d, dtype=torch.float64)
        jac = torch.zeros(rows.numel(), seg.steps + 1, d, k, dtype=torch.float64)
        keep = torch.ones(rows.numel(), dtype=torch.bool) if out is None else ~out
        if keep.any():
            r[keep], jac[keep] = _shoot(acceleration, seg, rows[keep], q, states, dt, solver)
        # With the charges fixed their columns are 0 (computed anyway: one block size).
        jac[..., :p] *= free
        return r, jac

    r, jac = shoot(q, states)
    out = shared(~(torch.isfinite(r).all(dim=(1, 2)) & torch.isfinite(jac).all(dim=(1, 2, 3))))
    eye_s = torch.eye(2 * d, dtype=torch.float64)
    eye_q = torch.eye(p, dtype=torch.float64)
    for round_ in range(2):
        w = fitted * (~out).to(torch.float64)[:, None, None]

        def cost_of(r, w=w):
            per_row = torch.nan_to_num((w * r**2).sum(dim=(1, 2)), nan=math.inf)
            return torch.zeros(units, dtype=torch.float64).index_add_(0, owner, per_row)

        r, jac = torch.nan_to_num(r) * (~out)[:, None, None], torch.nan_to_num(jac)
        cost = cost_of(r)
        lam = torch.full((units,), 1e-3, dtype=torch.float64)
        done = cost == 0
        for _ in range(iterations):
            if bool(done.all()):
                break
            jw = jac * w[..., None]
            normal = torch.einsum("asdk,asdl->akl", jw, jac)
            grad = torch.einsum("asdk,asd->ak", jw, r)
            ss = normal[:, p:, p:]
            # A segment left out gets the identity: its state stays where it is.
            ss = (ss + lam[owner, None, None] * torch.diag_embed(ss.diagonal(dim1=1, dim2=2))
                  + (1e-12 + out.to(torch.float64))[:, None, None] * eye_s)  # fmt: skip
            gs, qs = grad[:, p:], normal[:, :p, p:]
            sol = torch.linalg.solve(ss, torch.cat([qs.transpose(1, 2), gs[..., None]], dim=2))
            hq = torch.zeros(units, p, p, dtype=torch.float64).index_add_(
                0, owner, normal[:, :p, :p] - qs @ sol[..., :p]
            )
            gq = torch.zeros(units, p, dtype=torch.float64).index_add_(
                0, owner, grad[:, :p] - (qs @ sol[..., p:])[..., 0]
            )
            hq = hq + lam[:, None, None] * torch.diag_embed(hq.diagonal(dim1=1, dim2=2))
            hq = hq + eye_q * (1e-12 + (~fit_charges).to(torch.float64))[:, None, None]
            dq = -torch.linalg.solve(hq, gq[..., None])[..., 0] * fit_charges[:, None]
            ds = -(sol[..., p] + (sol[..., :p] @ dq[owner][..., None])[..., 0])
            trial_q = q + dq
            trial_states = states.reshape(-1, 2 * d).clone()
            trial_states[rows] += torch.where(out[:, None], 0.0, ds)
            trial_states = trial_states.reshape(units, m, 2 * d)
            r_t, jac_t = shoot(trial_q, trial_states, out)
            trial_cost = cost_of(torch.where(out[:, None, None], 0.0, r_t))
            accept = (trial_cost < cost) & ~done
            gain = torch.where(accept, (cost - trial_cost) / cost.clamp(min=1e-300), 0.0)
            q = torch.where(accept[:, None], trial_q, q)
            states = torch.where(accept[:, None, None], trial_states, states)
            take = accept[owner]
            r = torch.where(take[:, None, None], torch.nan_to_num(r_t) * (~out)[:, None, None], r)
            jac = torch.where(take[:, None, None, None], torch.nan_to_num(jac_t), jac)
            cost = torch.where(accept, trial_cost, cost)
            lam = torch.where(accept, (lam / 3).clamp(min=1e-9), lam * 4)
            # Done: a step that gains almost nothing, or damping that finds no descent.
            done = done | (accept & (gain < 1e-6)) | (lam > 1e8) | (cost == 0)
        if round_ == 1 or not outlier_factor:
            break
        # Per-segment RMS over the fitted samples, against the median of its unit.
        rms = ((w * r**2).sum(dim=(1, 2)) / w.sum(dim=(1, 2)).clamp(min=1)).sqrt()
        grid = torch.full((units * m,), math.nan, dtype=torch.float64)
        grid[rows] = torch.where(out, math.nan, rms)
        median = torch.nan_to_num(torch.nanmedian(grid.reshape(units, m), dim=1).values)
        floor = 10 * solver["rtol"] * seg.obs.abs().amax().clamp(min=1.0)
        bad = ~out & (rms > outlier_factor * torch.maximum(median[owner], floor))
        if not bool(bad.any()):
            break
        out = out | shared(bad)
        r, jac = (
            torch.where(out[:, None, None], 0.0, r),
            torch.where(out[:, None, None, None], 0.0, jac),
        )
    sq = torch.zeros(units * m, seg.steps + 1, dtype=torch.float64)
    sq[rows] = torch.where(out[:, None], 0.0, (r**2).sum(dim=-1))
    usable = torch.ones(units * m, dtype=torch.bool)
    usable[rows] = ~out
    usable = usable.reshape(units, m) & seg.active
    held = seg.held & usable[..., None]
    count = held.sum(dim=(1, 2))
    total = torch.where(held, sq.reshape(units, m, -1), 0.0).sum(dim=(1, 2))
    heldout = torch.where(count > 0, (total / count.clamp(min=1)).sqrt(), math.nan)
    return _ShootingFit(q, states, heldout, usable)


# -- the inversion ----------------------------------------------------------------------------


@dataclasses.dataclass
class ChargeInversion:
    """What :func:`invert_charges` found, per trajectory (``N`` rows).

    Attributes:
        charges: ``(N, P)`` the estimate (the refit where it was kept, else the linear one).
        linear: ``(N, P)`` the weighted linear least-squares estimate.
        refined: ``(N, P)`` the multiple-shooting refit, or None when not run.
        refit_kept: ``(N,)`` bool, whether ``charges`` is the refit (None: not run).
        heldout_linear, heldout_refined: ``(N,)`` RMS position residual on the held-out
            samples (length units), with the linear estimate (segment states fitted for it)
            and with the refit; NaN without held-out samples.
        states: ``(N, M, 2 D)`` position and velocity at the start of each segment, fitted
            with ``charges``; ``usable`` ``(N, M)`` the segments that took part;
            ``segment_steps`` steps per segment.
    """

    charges: torch.Tensor
    linear: torch.Tensor
    refined: torch.Tensor | None = None
    refit_kept: torch.Tensor | None = None
    heldout_linear: torch.Tensor | None = None
    heldout_refined: torch.Tensor | None = None
    states: torch.Tensor | None = None
    usable: torch.Tensor | None = None
    segment_steps: int = 0


def min_samples(fd_order: int) -> int:
    """Fewest valid samples a trajectory needs for stencil order ``fd_order``: three central
    stencils (six equations for the three charges, so that no single step decides them)."""
    return fd_order + 3


def linear_charges(
    system: Any,
    x: torch.Tensor,
    dt: float,
    lengths: torch.Tensor | None = None,
    *,
    fd_order: int = 8,
    weight_floor: float = 0.1,
) -> torch.Tensor:
    """The weighted linear least-squares charges ``(N, P)`` of positions ``x`` ``(N, T, D)``
    (see the module docstring; ``fd_order`` even, the stencil has ``fd_order + 1`` points)."""
    n, total, d = x.shape
    lengths = torch.full((n,), total) if lengths is None else lengths.to(torch.int64)
    acc, w, _ = error_weights(x, dt, lengths, points=fd_order + 1, weight_floor=weight_floor)
    valid = torch.arange(total)[None] < lengths[:, None]
    filled = torch.where(valid[..., None], x, x[:, :1])  # padding: any point the basis takes
    basis = system.acceleration_basis(filled.reshape(-1, d)).to(torch.float64)
    return least_squares_charges(basis.reshape(n, total, d, -1), acc, w)


def invert_charges(
    system: Any,
    x: torch.Tensor,
    dt: float,
    lengths: torch.Tensor | None = None,
    *,
    fd_order: int = 8,
    weight_floor: float = 0.1,
    refine: bool = True,
    segment_steps: int = 10,
    holdout_every: int = 5,
    iterations: int = 6,
    rtol: float = 1e-9,
    max_steps_per_sample: int = 40,
    outlier_factor: float = 10.0,
    holdout_tolerance: float = 0.1,
) -> ChargeInversion:
    """Charges of each trajectory: weighted linear least squares on finite-difference
    accelerations, then (``refine``) a multiple-shooting refit of the positions, kept where it
    lowers the held-out residual.

    Args:
        system: has ``acceleration_basis(pos (B, D)) -> (B, D, P)`` and ``acceleration(pos,
            charges (B, P)) -> (B, D)``, float64 tensors.
        x: ``(N, T, D)`` observed positions every ``dt`` (NaN past each length).
        lengths: ``(N,)`` valid samples (None: all ``T``), each at least
            :func:`min_samples` ``(fd_order)`` (not checked here).
        fd_order: order of the central stencil of the accelerations (even; ``fd_order + 1``
            points); its error estimate is the difference to order ``fd_order - 2``.
        weight_floor: floor of the error estimate in the weights, times its median.
        refine: run the refit.
        segment_steps: steps per shooting segment. Each segment fits its own start state (the
            charges are shared), so a close pass disturbs only its segment and errors never
            compound along the trajectory.
        holdout_every: every ``holdout_every``-th sample (at offset ``holdout_every // 2``) is
            left out of both fits and decides between them: the refit is kept unless its
            held-out RMS residual exceeds the linear estimate's by more than a fraction
            ``holdout_tolerance`` (plus the solver's precision); 0 keeps every finite refit.
        iterations: Levenberg-Marquardt iterations (one batched solve each).
        rtol: the solver's relative tolerance (absolute ``rtol / 100``).
        max_steps_per_sample: the solver's step budget per segment, per sample interval; a
            segment that needs more (a very close pass) is left out of the refit.
        outlier_factor: a segment whose RMS residual after a first round of fitting exceeds
            this times the median of its trajectory's is left out of a second round (0: no
            second round).
    """
    n, total = x.shape[:2]
    lengths = torch.full((n,), total) if lengths is None else lengths.to(torch.int64)
    linear = linear_charges(system, x, dt, lengths, fd_order=fd_order, weight_floor=weight_floor)
    if not refine:
        return ChargeInversion(charges=linear, linear=linear)
    solver = {"rtol": rtol, "max_steps": max_steps_per_sample * segment_steps}
    seg = _segments(x, lengths, segment_steps, holdout_every)
    # First guesses of the segment states: the observed position and a 5-point velocity
    # (one-sided near the ends), 4th order.
    vel, _ = finite_difference(x, dt, lengths, deriv=1, points=5, central_only=False)
    starts = (torch.arange(seg.active.shape[1]) * segment_steps).clamp(max=total - 1)
    states = torch.cat([x[:, starts], vel[:, starts]], dim=-1)
    states = torch.where(seg.active[..., None], torch.nan_to_num(states), 0.0)
    # Two problems on the same segments, solved together (they share the solver's iterations):
    # units 0..N-1 fit only the states with the linear charges (what the linear estimate
    # explains of the held-out samples), units N..2N-1 fit the charges too.
    fit_charges = torch.arange(2 * n) >= n
    both = _fit_shooting(
        system.acceleration,
        seg.repeat(2),
        linear.repeat(2, 1),
        states.repeat(2, 1, 1),
        fit_charges,
        dt,
        n_traj=n,
        iterations=iterations,
        outlier_factor=outlier_factor,
        solver=solver,
    )
    held_lin, held_ref = both.heldout[:n], both.heldout[n:]
    refined = both.q[n:]
    keep = torch.isfinite(refined).all(dim=1)
    if holdout_every:
        # Differences inside the tolerance are ties: at the noise floor (or, on exact data, at
        # the solver's precision) both residuals are that floor and their order is chance.
        floor = 10 * rtol * float(torch.nan_to_num(x).abs().amax().clamp(min=1.0))
        keep &= ~(held_ref > (1 + holdout_tolerance) * held_lin + floor)
    return ChargeInversion(
        charges=torch.where(keep[:, None], refined, linear),
        linear=linear,
        refined=refined,
        refit_kept=keep,
        heldout_linear=held_lin,
        heldout_refined=held_ref,
        states=torch.where(keep[:, None, None], both.states[n:], both.states[:n]),
        usable=both.usable[:n],
        segment_steps=segment_steps,
    )


# -- the estimators ---------------------------------------------------------------------------

#: Trajectories inverted per batch by ``predict`` (bounds the solver's working set).
_PREDICT_BATCH = 256


def resolve_system(model: str, system: str, parameters: dict[str, Any] | None, data: Any):
    """The system object whose equations a physics model uses, and its parameters as plain
    values.

    ``parameters`` None takes them from the data's metadata (``metadata["parameters"]`` of
    trajectories made by ``dynaforge simulate``, when ``metadata["system"]`` is ``system``);
    data made with other parameters than the given ones are refused, and so is a system whose
    parameters nobody states (its defaults might silently be the wrong charge positions).
    """
    from dynaforge.systems import get_system

    meta = getattr(data, "metadata", None) or {}
    known = meta.get("parameters") if meta.get("system") == system else None
    if parameters is None:
        if known is None:
            raise ValueError(
                f"{model} needs the parameters of the {system!r} system (its constants and "
                "charge positions): pass parameters={...} (the task sets them), or fit on data "
                "whose metadata names the system and its parameters"
            )
        parameters = known
    elif known is not None and _plain(known) != _plain(parameters):
        raise ValueError(
            f"{model} was given {system!r} parameters {_plain(parameters)}, but the data were "
            f"made with {_plain(known)}"
        )
    obj = get_system(system, **_tuples(parameters))
    for method in ("acceleration", "acceleration_basis"):
        if not callable(getattr(obj, method, None)):
            raise ValueError(
                f"{model} needs a system with {method}(); {system!r} has none (it infers "
                "charges of fixed-charge scattering)"
            )
    return obj, _plain(parameters)


def _tuples(value: Any) -> Any:
    """JSON lists back to tuples (dataclass systems hold pairs and positions as tuples)."""
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` as JSON would give them back (tuples as lists)."""
    return json.loads(json.dumps(values))


def field_shape(model: str, system: Any, traj: Trajectories) -> tuple[int, int]:
    """``(D, P)`` of the system's field (positions of ``D`` components, ``P`` charges), checked
    against the data's state columns."""
    dim = len(getattr(system, "state_names", ())) or traj.dim
    probe = system.acceleration_basis(torch.full((1, dim), 7.0, dtype=torch.float64))
    if dim != traj.dim:
        raise ValueError(
            f"{model} reads the moving particle's positions: the {system.name!r} field is "
            f"{dim}-dimensional, the data have {traj.dim} state columns"
        )
    return dim, probe.shape[-1]


def _check_lengths(model: str, traj: Trajectories, needed: int, why: str) -> None:
    lengths = traj.lengths_or_full()
    short = (lengths < needed).nonzero()[:, 0]
    if short.numel():
        i = int(short[0])
        raise ValueError(
            f"trajectory {i} has {int(lengths[i])} valid samples ({short.numel()} of "
            f"{traj.n_trajectories} have fewer than {needed}): too short to estimate the "
            f"charges from; {model} needs at least {needed} ({why})"
        )


class ChargeLeastSquares(AbstractEstimator):
    """The charges of fixed-charge scattering from the moving particle's positions, by the
    physics: weighted linear least squares on finite-difference accelerations, refined by a
    multiple-shooting fit of the positions (:func:`invert_charges`; module docstring).

    Nothing is learned: ``fit`` resolves the system and checks the data (positions ``(2,)``,
    as many targets as the system has charges, in the system's order). ``predict`` reads each
    trajectory's own ``dt`` and valid samples (ragged data welcome); every trajectory needs at
    least ``fd_order + 3`` samples.

    Args:
        system: registry name of the system (the task sets it).
        parameters: its parameters (constants, charge positions; the task sets them); None
            takes them from the training data's metadata.
        fd_order, weight_floor, refine, segment_steps, holdout_every, iterations, rtol,
        max_steps_per_sample, outlier_factor, holdout_tolerance: see :func:`invert_charges`.
        clip_low, clip_high: the estimate is clipped to ``[clip_low, clip_high]`` (None: no
            bound). Default ``[-1, 0]``, the support of the charges' prior U[-1, 0]: the truth
            lies inside, so clipping can only bring an estimate closer (it matters for a charge
            the trajectory hardly feels).
    """

    name = "charge-lsq"
    kind = "baseline"
    capabilities = frozenset({RAGGED})
    needs = frozenset({SCATTERING_EQUATIONS})

    def __init__(
        self,
        *,
        system: str = DEFAULT_SYSTEM,
        parameters: dict[str, Any] | None = None,
        fd_order: int = 8,
        weight_floor: float = 0.1,
        refine: bool = True,
        segment_steps: int = 10,
        holdout_every: int = 5,
        iterations: int = 6,
        rtol: float = 1e-9,
        max_steps_per_sample: int = 40,
        outlier_factor: float = 10.0,
        holdout_tolerance: float = 0.1,
        clip_low: float | None = -1.0,
        clip_high: float | None = 0.0,
    ) -> None:
        if fd_order < 4 or fd_order % 2:
            raise ValueError(f"fd_order must be even and >= 4, got {fd_order}")
        if segment_steps < 2:
            raise ValueError(f"segment_steps must be >= 2, got {segment_steps}")
        self.system = system
        # As JSON gives them back, so that a loaded model has the same hyperparameters.
        self.parameters = None if parameters is None else _plain(parameters)
        self.fd_order = fd_order
        self.weight_floor = weight_floor
        self.refine = refine
        self.segment_steps = segment_steps
        self.holdout_every = holdout_every
        self.iterations = iterations
        self.rtol = rtol
        self.max_steps_per_sample = max_steps_per_sample
        self.outlier_factor = outlier_factor
        self.holdout_tolerance = holdout_tolerance
        self.clip_low = clip_low
        self.clip_high = clip_high

    @property
    def min_samples(self) -> int:
        """Fewest valid samples a trajectory needs."""
        return min_samples(self.fd_order)

    def _fit(self, train: LabelledTrajectories, val: LabelledTrajectories | None = None) -> None:
        self.system_, self.system_parameters_ = resolve_system(
            self.name, self.system, self.parameters, train.trajectories
        )
        self._check_data(train.trajectories, train.n_targets)

    def _check_data(self, traj: Trajectories, n_targets: int) -> None:
        _dim, n_charges = field_shape(self.name, self.system_, traj)
        if n_targets != n_charges:
            raise ValueError(
                f"{self.name} estimates the {n_charges} fixed charges of {self.system!r}; "
                f"the data have {n_targets} targets"
            )

    def invert(self, trajectories: Trajectories) -> ChargeInversion:
        """The whole :class:`ChargeInversion` of vector-state trajectories (before clipping;
        one batch: callers bound the size)."""
        _check_lengths(self.name, trajectories, self.min_samples, f"fd_order {self.fd_order}")
        return invert_charges(
            self.system_,
            trajectories.x,
            trajectories.dt,
            trajectories.lengths_or_full(),
            fd_order=self.fd_order,
            weight_floor=self.weight_floor,
            refine=self.refine,
            segment_steps=self.segment_steps,
            holdout_every=self.holdout_every,
            iterations=self.iterations,
            rtol=self.rtol,
            max_steps_per_sample=self.max_steps_per_sample,
            outlier_factor=self.outlier_factor,
            holdout_tolerance=self.holdout_tolerance,
        )

    def _predict(self, trajectories: Trajectories) -> torch.Tensor:
        _check_lengths(self.name, trajectories, self.min_samples, f"fd_order {self.fd_order}")
        n = trajectories.n_trajectories
        chunks = []
        for start in range(0, n, _PREDICT_BATCH):
            part = trajectories.subset(torch.arange(start, min(n, start + _PREDICT_BATCH)))
            chunks.append(self.invert(part).charges)
        return clip_charges(torch.cat(chunks), self.clip_low, self.clip_high)

    def _state(self) -> dict[str, Any]:
        return {"dim": self.dim_, "system_parameters": self.system_parameters_}

    def _set_state(self, state: dict[str, Any]) -> None:
        from dynaforge.systems import get_system

        self.dim_ = state["dim"]
        self.system_parameters_ = state["system_parameters"]
        self.system_ = get_system(self.system, **_tuples(self.system_parameters_))


def clip_charges(q: torch.Tensor, low: float | None, high: float | None) -> torch.Tensor:
    """``q`` clipped to ``[low, high]`` (a None bound: none)."""
    if low is None and high is None:
        return q
    return q.clamp(min=low, max=high)


# -- the learned estimator --------------------------------------------------------------------


class _FieldReader(nn.Module):
    """Learned basis, learned step weights, and the least squares between them.

    ``forward(pos (B, T, D), acc (B, T, D), weight (B, T), feats (B, T, 2), static (B, S) or
    None) -> (q (B, P), basis (B, T, D, P))``, all in model units: ``pos`` z-scored, ``acc``
    the finite-difference accelerations over their scale, ``weight`` the finite-difference
    weights (0 where undefined), ``q`` the z-scored targets. The basis network maps a position
    (and the static inputs) to ``D x P`` coefficients; the least squares is a MAP estimate
    with a learned Gaussian prior around the training mean (precision ``exp(log_prior)``), so
    a target the trajectory hardly constrains falls back towards the mean, and an untrained
    basis (its last layer starts near 0) predicts the mean.
    """

    def __init__(
        self, dim: int, static_dim: int, n_targets: int, hidden: int, layers: int, offset
    ) -> None:
        super().__init__()
        self.dim, self.n_targets = dim, n_targets
        sizes = [dim + static_dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            blocks += [nn.Linear(a, b), nn.SiLU()]
        last = nn.Linear(sizes[-1], dim * n_targets)
        nn.init.normal_(last.weight, std=1e-3)
        nn.init.zeros_(last.bias)
        self.basis = nn.Sequential(*blocks, last)
        self.log_weight = nn.Sequential(
            nn.Linear(dim + static_dim + 2, hidden), nn.SiLU(), nn.Linear(hidden, 1)
        )
        self.log_prior = nn.Parameter(torch.full((n_targets,), -4.0))
        # The training mean in z-units of the *unscaled* targets: a = basis (mean + q).
        self.register_buffer("offset", torch.as_tensor(offset, dtype=torch.float32))

    def forward(self, pos, acc, weight, feats, static=None):
        inputs = pos
        if static is not None:
            inputs = torch.cat([pos, static[:, None].expand(-1, pos.shape[1], -1)], dim=-1)
        basis = self.basis(inputs).reshape(*pos.shape[:2], self.dim, self.n_targets)
        logw = self.log_weight(torch.cat([inputs, feats], dim=-1))[..., 0].clamp(-20.0, 5.0)
        w = weight * torch.exp(logw)
        w = w / w.sum(dim=1, keepdim=True).clamp(min=1e-12)
        rhs_acc = acc - basis @ self.offset
        normal = torch.einsum("btdp,bt,btdr->bpr", basis, w, basis)
        rhs = torch.einsum("btdp,bt,btd->bp", basis, w, rhs_acc)
        prior = torch.diag_embed(torch.exp(self.log_prior).expand(pos.shape[0], -1))
        return torch.linalg.solve(normal + prior, rhs), basis


def _field_loss(module: _FieldReader, *batch: torch.Tensor, aux_weight: float) -> torch.Tensor:
    """MSE of the z-scored targets plus ``aux_weight`` times a Huber loss of the basis applied
    to the true targets against the observed accelerations (every valid step: a direct signal
    for the field at each position, where the first term only sees its least-squares
    outcome). ``batch`` is ``(pos, acc, weight, feats, mask[, static], targets)``."""
    pos, acc, weight, feats, mask, *rest = batch
    *static, targets = rest
    q, basis = module(pos, acc, weight, feats, static[0] if static else None)
    loss = torch.mean((q - targets) ** 2)
    if aux_weight:
        pred = basis @ (targets + module.offset)[:, None, :, None]
        err = nn.functional.smooth_l1_loss(pred[..., 0], acc, reduction="none").sum(dim=-1)
        loss = loss + aux_weight * (err * mask).sum() / mask.sum().clamp(min=1.0)
    return loss


#: ``field-lsq``'s training defaults where :class:`~dynaforge.train.TrainConfig`'s do not fit:
#: one example is a whole trajectory, so an epoch of 800 is 25 small steps, not 3 big ones.
FIELD_TRAIN_DEFAULTS = {"epochs": 150, "batch_size": 32, "patience": 20}


class FieldLeastSquares(GradientTrained, AbstractEstimator):
    """A learned estimator for parameters that enter the dynamics linearly, as charges do.

    The same weighted least squares as ``charge-lsq``'s linear stage, ``q = argmin sum_t w_t
    |G(x_t) q - a_t|^2``, with both unknowns of that recipe learned from the training data
    instead of taken from the equations: the basis ``G(x)`` ``(D, P)`` (for the charges, the
    field of each unit charge at ``x``) is a network of the position, and the weight of a step
    is the finite-difference weight (:func:`error_weights`) times a learned factor. Trained end
    to end on the targets through the one training loop, with an auxiliary loss that fits
    ``G(x_t) q_true`` to the observed accelerations (``aux_weight``). No equations needed: the
    network learns where the charges are and how their pull falls off. The assumption it
    makes: the state's second derivative is linear in the targets (true of charges, masses'
    inverse... not of a frequency).

    States of any shape arrive flattened (``D`` = all components); static inputs join the
    position as inputs of both networks; padding past each length gets weight 0 (predictions
    never depend on it). Every trajectory needs ``fd_order + 3`` valid samples. Predictions are
    clipped to the training targets' range (``clip_to_range``).

    Args:
        hidden_size, num_layers: width and depth (SiLU) of the basis network; the weight
            network has one hidden layer of the same width.
        fd_order, weight_floor: the finite differences and their weights (as ``charge-lsq``).
        aux_weight: weight of the auxiliary field loss (0: targets only).
        clip_to_range: clip predictions to ``[min, max]`` of the training targets.
        train: training-loop options (:class:`~dynaforge.train.TrainConfig` or a dict of its
            fields, over :data:`FIELD_TRAIN_DEFAULTS`); one example is one trajectory.
    """

    name = "field-lsq"
    capabilities = frozenset({RAGGED, STATIC, SHAPED_STATE})
    train: TrainConfig

    def __init__(
        self,
        *,
        hidden_size: int = 128,
        num_layers: int = 3,
        fd_order: int = 8,
        weight_floor: float = 0.1,
        aux_weight: float = 1.0,
        clip_to_range: bool = True,
        train: TrainConfig | dict | None = None,
    ) -> None:
        if fd_order < 4 or fd_order % 2:
            raise ValueError(f"fd_order must be even and >= 4, got {fd_order}")
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.fd_order = fd_order
        self.weight_floor = weight_floor
        self.aux_weight = aux_weight
        self.clip_to_range = clip_to_range
        if train is None or isinstance(train, dict):
            train = {**FIELD_TRAIN_DEFAULTS, **(train or {})}
        self.train = as_train_config(train)

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        params["train"] = dataclasses.asdict(self.train)
        return params

    @property
    def min_samples(self) -> int:
        return min_samples(self.fd_order)

    # -- inputs -----------------------------------------------------------------------------
    def _features(self, traj: Trajectories) -> tuple[torch.Tensor, ...]:
        """Physical-unit ``(acc (N, T, D), weight (N, T), err (N, T))`` of vector states."""
        _check_lengths(self.name, traj, self.min_samples, f"fd_order {self.fd_order}")
        return error_weights(
            traj.x, traj.dt, traj.lengths_or_full(), points=self.fd_order + 1,
            weight_floor=self.weight_floor,
        )  # fmt: skip

    def _inputs(self, traj: Trajectories) -> tuple[torch.Tensor, ...]:
        """``(pos, acc, weight, feats, mask[, static])`` in model units (see
        :class:`_FieldReader`), padding and undefined steps zeroed."""
        acc, weight, err = self._features(traj)
        mask = weight > 0
        pos = torch.where(mask[..., None], (traj.x - self.pos_mean_) / self.pos_scale_, 0.0)
        acc = torch.where(mask[..., None], acc / self.acc_scale_, 0.0)
        tiny = 1e-12
        feats = (
            torch.stack(
                [torch.log(err / self.acc_scale_ + tiny), torch.log(acc.norm(dim=-1) + tiny)], -1
            )
            / 10
        )  # log sizes, O(1)
        feats = torch.where(mask[..., None], feats, 0.0)
        out = (pos, acc, weight, feats, mask.to(torch.float64))
        if traj.static is None:
            return out
        return (*out, self.static_normalizer_.transform(traj.static))

    # -- fitting ----------------------------------------------------------------------------
    def _build_module(self) -> _FieldReader:
        return _FieldReader(
            self.dim_,
            self.static_dim_,
            self.target_normalizer_.dim,
            self.hidden_size,
            self.num_layers,
            self.offset_,
        )

    def _fit(
        self,
        train: LabelledTrajectories,
        val: LabelledTrajectories | None = None,
        *,
        checkpoint: str | Path | None = None,
        on_epoch_end: EpochCallback | None = None,
    ) -> None:
        traj = train.trajectories
        acc, weight, _ = self._features(traj)
        valid = traj.valid_states()
        # One scale for every component: the basis network sees the geometry undistorted.
        self.pos_mean_ = valid.mean(dim=0)
        self.pos_scale_ = float(valid.std(dim=0).mean().clamp(min=1e-12))
        # The median size of the accelerations: close passes (huge, few) do not set it.
        self.acc_scale_ = float(acc[weight > 0].norm(dim=-1).median().clamp(min=1e-12))
        self.static_dim_ = 0 if traj.static is None else traj.static.shape[1]
        self.static_normalizer_ = (
            None if traj.static is None else Normalizer.fit(traj.static, allow_constant=True)
        )
        targets = train.targets.to(torch.float64)
        self.target_normalizer_ = Normalizer.fit(targets, allow_constant=True)
        self.offset_ = self.target_normalizer_.mean / self.target_normalizer_.std
        self.target_low_, self.target_high_ = targets.amin(dim=0), targets.amax(dim=0)
        torch.manual_seed(self.train.seed)  # parameter initialisation
        self.module_ = self._build_module()
        result: TrainResult = train_module(
            self.module_,
            functools.partial(_field_loss, aux_weight=self.aux_weight),
            self._examples(train),
            None if val is None else self._examples(val),
            self.train,
            checkpoint=checkpoint,
            on_epoch_end=on_epoch_end,
            description=self.name,
        )
        self.history_ = result.history
        self.train_result_ = result
        self.module_.to("cpu")

    def _examples(self, data: LabelledTrajectories) -> tuple[torch.Tensor, ...]:
        targets = self.target_normalizer_.transform(data.targets.to(torch.float64))
        return (*self._inputs(data.trajectories), targets)

    # -- prediction -------------------------------------------------------------------------
    def _run(self, traj: Trajectories, device: torch.device) -> torch.Tensor:
        inputs = [t.to(torch.float32) for t in self._inputs(traj)]
        del inputs[4]  # the mask: only the auxiliary loss reads it
        chunks = []
        with torch.no_grad():
            for start in range(0, inputs[0].shape[0], _PREDICT_BATCH):
                batch = [t[start : start + _PREDICT_BATCH].to(device) for t in inputs]
                chunks.append(self.module_(*batch)[0].cpu())
        out = self.target_normalizer_.inverse(torch.cat(chunks).to(torch.float64))
        if self.clip_to_range:
            out = torch.maximum(torch.minimum(out, self.target_high_), self.target_low_)
        return out

    def _predict(self, trajectories: Trajectories) -> torch.Tensor:
        device = resolve_device(self.train.device)
        self.module_.to(device).eval()
        try:
            return self._run(trajectories, device)
        finally:
            self.module_.to("cpu")

    def predict_during_fit(self, trajectories: Trajectories) -> torch.Tensor:
        """Parameters ``(B, P)`` with the network as it is now, from inside ``fit`` (an epoch
        callback); the module stays on its device and returns to its mode."""
        if getattr(self, "module_", None) is None:
            raise RuntimeError(f"{type(self).__name__}.predict_during_fit: fit has not started")
        if not isinstance(trajectories, Trajectories):
            raise ValueError(
                f"{self.name}.predict_during_fit needs Trajectories, got "
                f"{type(trajectories).__name__}"
            )
        if (trajectories.state_shape, trajectories.static_shape) != (
            self.state_shape_,
            self.static_shape_,
        ):
            raise ValueError(
                f"trajectories have states shaped {trajectories.state_shape} and static "
                f"inputs shaped {trajectories.static_shape}, the model is being fitted on "
                f"{self.state_shape_} and {self.static_shape_}"
            )
        device = next(self.module_.parameters()).device
        was_training = self.module_.training
        self.module_.eval()
        try:
            return self._run(trajectories.flat(), device)
        finally:
            self.module_.train(was_training)

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "static_dim": self.static_dim_,
            "pos_mean": self.pos_mean_,
            "pos_scale": self.pos_scale_,
            "acc_scale": self.acc_scale_,
            "static_normalizer": None
            if self.static_normalizer_ is None
            else self.static_normalizer_.state_dict(),
            "target_normalizer": self.target_normalizer_.state_dict(),
            "target_range": (self.target_low_, self.target_high_),
            "module": self.module_.state_dict(),
            "history": self.training_history,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self.dim_ = state["dim"]
        self.static_dim_ = state["static_dim"]
        self.pos_mean_, self.pos_scale_ = state["pos_mean"], state["pos_scale"]
        self.acc_scale_ = state["acc_scale"]
        static = state["static_normalizer"]
        self.static_normalizer_ = None if static is None else Normalizer.from_state_dict(static)
        self.target_normalizer_ = Normalizer.from_state_dict(state["target_normalizer"])
        self.offset_ = self.target_normalizer_.mean / self.target_normalizer_.std
        self.target_low_, self.target_high_ = state["target_range"]
        self.module_ = self._build_module()
        self.module_.load_state_dict(state["module"])
        self.module_.eval()
        self.history_ = state["history"]
