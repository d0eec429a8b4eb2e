"""Batched integrators: a fixed-step RK4 in torch and a high-accuracy reference solver.

``integrate_rk4`` advances thousands of initial conditions at once (one tensor op per stage for
the whole batch), on whatever device ``x0`` lives. ``integrate_reference`` is the ground truth
used by evaluation: SciPy's adaptive 8th-order Dormand–Prince (DOP853) at rtol = atol = 1e-12
on the whole batch as one stacked system.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp

RHS = Callable[[float, torch.Tensor], torch.Tensor]


def rk4_step(rhs: RHS, t: float, x: torch.Tensor, h: float) -> torch.Tensor:
    """One classical Runge–Kutta step of size ``h`` for a batch ``x`` shaped ``(..., dim)``."""
    k1 = rhs(t, x)
    k2 = rhs(t + 0.5 * h, torch.add(x, k1, alpha=0.5 * h))
    k3 = rhs(t + 0.5 * h, torch.add(x, k2, alpha=0.5 * h))
    k4 = rhs(t + h, torch.add(x, k3, alpha=h))
    if torch.is_grad_enabled() and x.requires_grad:
        return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    # Without autograd the stages are ours to reuse: accumulate in place (fewer temporaries).
    k1.add_(k2, alpha=2.0).add_(k3, alpha=2.0).add_(k4)
    return torch.add(x, k1, alpha=h / 6.0)


def integrate_rk4(
    rhs: RHS,
    x0: torch.Tensor,
    *,
    dt: float,
    steps: int,
    substeps: int = 1,
    t0: float = 0.0,
    progress: bool = False,
) -> torch.Tensor:
    """Integrate a batch with fixed-step RK4, recording every ``dt``.

    Args:
        rhs: batched right-hand side ``rhs(t, x)`` on ``(..., dim)`` tensors.
        x0: initial states ``(N, dim)``; dtype and device are kept (use float64 for data).
        dt: recording interval (time units).
        steps: number of recorded steps after the initial state.
        substeps: RK4 steps per recording interval (internal step ``dt / substeps``).
        t0: initial time.
        progress: show a progress bar.

    Returns:
        ``(N, steps + 1, dim)`` states at ``t0 + k * dt``, ``k = 0..steps``.
    """
    if x0.ndim != 2:
        raise ValueError(f"x0 must be shaped (N, dim), got {tuple(x0.shape)}")
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains non-finite values")
    if steps < 0 or substeps < 1:
        raise ValueError(
            f"need steps >= 0 and substeps >= 1, got steps={steps}, substeps={substeps}"
        )
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    # Component-major storage behind (N, dim) views: x[:, i] is a contiguous row, so a
    # right-hand side that works per component (and allocates with empty_like, which keeps
    # this layout) streams through memory instead of striding by dim; each recorded state is
    # one contiguous copy. Measured about 1.5x faster at N >= 1e4 on a CPU; values unchanged.
    differentiable = torch.is_grad_enabled() and x0.requires_grad
    if differentiable:  # keep the graph: collect states instead of writing into a buffer
        states = [x0]
    else:
        store = torch.empty((steps + 1, x0.shape[1], x0.shape[0]), dtype=x0.dtype, device=x0.device)
        store[0] = x0.T
    x = x0 if differentiable else store[0].T
    h = dt / substeps
    iterator = range(1, steps + 1)
    bar = None
    if progress:
        from dynaforge.progress import progress_bar

        bar = progress_bar(steps, desc="RK4", unit="step", min_interval=10.0, leave=False)
    for k in iterator:
        t = t0 + (k - 1) * dt
        for j in range(substeps):
            x = rk4_step(rhs, t + j * h, x, h)
        if differentiable:
            states.append(x)
        else:
            store[k] = x.T
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if differentiable:
        return torch.stack(states, dim=1)
    # (steps+1, dim, N) -> (N, steps+1, dim), one copy at the end.
    return store.permute(2, 0, 1).contiguous()


def integrate_reference(
    rhs: RHS,
    x0: torch.Tensor,
    *,
    dt: float,
    steps: int,
    t0: float = 0.0,
    rtol: float = 1e-12,
    atol: float = 1e-12,
) -> torch.Tensor:
    """High-accuracy ground truth: DOP853 at ``rtol = atol = 1e-12`` on the stacked batch.

    Same signature and output as :func:`integrate_rk4` (``(N, steps + 1, dim)``, float64, on the
    device of ``x0``). All trajectories share the adaptive step, so every one gets at least the
    accuracy the hardest one needs.
    """
    if x0.ndim != 2:
        raise ValueError(f"x0 must be shaped (N, dim), got {tuple(x0.shape)}")
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains non-finite values")
    n, dim = x0.shape

    def flat_rhs(t: float, y: np.ndarray) -> np.ndarray:
        state = torch.from_numpy(y.reshape(n, dim))
        return rhs(t, state).numpy().reshape(-1)

    t_eval = t0 + dt * np.arange(steps + 1)
    sol = solve_ivp(
        flat_rhs,
        (t0, float(t_eval[-1])),
        x0.detach().cpu().double().numpy().reshape(-1),
        method="DOP853",
        t_eval=t_eval,
        rtol=rtol,
        atol=atol,
    )
    if not sol.success:
        raise RuntimeError(f"reference solver failed: {sol.message}")
    y = np.ascontiguousarray(sol.y.T.reshape(steps + 1, n, dim).transpose(1, 0, 2))
    return torch.from_numpy(y).to(x0.device)
