"""Cut trajectories into (input, target) windows for sequence models.

A window pair is ``context`` consecutive states followed immediately by the next ``horizon``
states of the same trajectory. Windows never cross from one trajectory into the next: a pair
that did would ask a model to predict a jump between unrelated initial conditions.
"""

from __future__ import annotations

import torch


def make_windows(
    x: torch.Tensor, context: int, horizon: int, stride: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input and target windows of every trajectory.

    Args:
        x: ``(N, T, D)`` states.
        context: input length ``L`` (time steps), >= 1.
        horizon: target length ``H`` (time steps), >= 1.
        stride: steps between the starts of consecutive windows of one trajectory, >= 1.

    Returns:
        ``inputs`` ``(M, L, D)`` and ``targets`` ``(M, H, D)`` with
        ``M = N * ((T - L - H) // stride + 1)``, trajectory-major: window ``j`` of trajectory
        ``n`` is row ``n * (M // N) + j`` and starts at time index ``j * stride``; its target
        starts at ``j * stride + L``. Same dtype and device as ``x``; each output is one
        contiguous copy.
    """
    for name, value in (("context", context), ("horizon", horizon), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a 3-D tensor (N, T, D), got {shape}")
    _n, steps, dim = x.shape
    need = context + horizon
    if steps < need:
        raise ValueError(
            f"too few points for the window: need context + horizon = {need} time steps "
            f"per trajectory, have {steps}"
        )
    # Inputs start at s = 0, stride, ... with s + L + H <= T. Unfolding x[:, :T-H] with size L
    # and x[:, L:] with size H yields exactly those starts, so the two unfolds align row by row.
    # unfold gives views (N, M_n, D, size); the permute + reshape is the one copy per output
    # (contiguous() only matters when reshape could return a strided view, e.g. context 1).
    inputs = x[:, : steps - horizon].unfold(1, context, stride)
    targets = x[:, context:].unfold(1, horizon, stride)
    inputs = inputs.permute(0, 1, 3, 2).reshape(-1, context, dim).contiguous()
    targets = targets.permute(0, 1, 3, 2).reshape(-1, horizon, dim).contiguous()
    return inputs, targets
