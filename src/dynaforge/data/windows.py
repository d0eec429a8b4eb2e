"""Cut trajectories into (input, target) windows for sequence models.

A window pair is ``context`` consecutive states followed immediately by the next ``horizon``
states of the same trajectory. Windows never cross from one trajectory into the next, nor past
a trajectory's last valid sample: a pair that did would ask a model to predict a jump between
unrelated initial conditions, or to predict padding.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from dynaforge.data._common import as_int64_cpu


def make_windows(
    x: torch.Tensor,
    context: int,
    horizon: int,
    stride: int = 1,
    *,
    lengths: Any = None,
    return_index: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Input and target windows of every trajectory.

    Args:
        x: ``(N, T, *state)`` states (``(N, T, D)`` for a vector state).
        context: input length ``L`` (time steps), >= 1.
        horizon: target length ``H`` (time steps), >= 1.
        stride: steps between the starts of consecutive windows of one trajectory, >= 1.
        lengths: ``(N,)`` integers, valid samples per trajectory (``Trajectories.lengths``), or
            None when every trajectory has all ``T``. Samples past a trajectory's length are
            never read into a window.
        return_index: also return the trajectory of each window.

    Returns:
        ``inputs`` ``(M, L, *state)`` and ``targets`` ``(M, H, *state)``, trajectory-major:
        trajectory ``n`` contributes the windows starting at ``s = 0, stride, ...`` with
        ``s + L + H <= lengths[n]`` (``T`` without lengths), in order; the target of the window
        starting at ``s`` starts at ``s + L``. Without lengths that is
        ``M = N * ((T - L - H) // stride + 1)`` and window ``j`` of trajectory ``n`` is row
        ``n * (M // N) + j``. A trajectory too short for one window contributes none. Same
        dtype and device as ``x``; each output is one contiguous copy. With
        ``return_index=True`` a third tensor ``(M,)`` int64 (on ``x``'s device) gives each
        window's trajectory, e.g. to gather per-trajectory static inputs:
        ``static[index]``.
    """
    for name, value in (("context", context), ("horizon", horizon), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not isinstance(x, torch.Tensor) or x.ndim < 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor shaped (N, T, *state), e.g. (N, T, D), got {shape}")
    n, steps = x.shape[:2]
    state = tuple(x.shape[2:])
    dim = math.prod(state)
    need = context + horizon
    if lengths is None:
        if steps < need:
            raise ValueError(
                f"too few points for the window: need context + horizon = {need} time steps "
                f"per trajectory, have {steps}"
            )
        counts = None
    else:
        lengths = as_int64_cpu(lengths, "lengths")
        if lengths.shape != (n,):
            raise ValueError(
                f"lengths must be shaped (N,) = ({n},), got shape {tuple(lengths.shape)}"
            )
        out = (lengths < 0) | (lengths > steps)
        if out.any():
            i = int(out.nonzero()[0, 0])
            raise ValueError(f"lengths[{i}] = {int(lengths[i])} is outside [0, T = {steps}]")
        # Windows of trajectory n: starts 0, stride, ... up to lengths[n] - L - H.
        counts = torch.div(lengths - need, stride, rounding_mode="floor").add(1).clamp(min=0)
        if int(counts.sum()) == 0:
            raise ValueError(
                f"too few points for the window: need context + horizon = {need} time steps "
                f"per trajectory, the longest trajectory has {int(lengths.max())}"
            )

    # A flat (N, T, D) view: for 3-D x this is x itself, so today's arithmetic is unchanged.
    flat = x.reshape(n, steps, dim)
    # Inputs start at s = 0, stride, ... with s + L + H <= T. Unfolding x[:, :T-H] with size L
    # and x[:, L:] with size H yields exactly those starts, so the two unfolds align row by row.
    # unfold gives views (N, M_n, D, size); the permute + reshape is the one copy per output
    # (contiguous() only matters when reshape could return a strided view, e.g. context 1).
    inputs = flat[:, : steps - horizon].unfold(1, context, stride)
    targets = flat[:, context:].unfold(1, horizon, stride)
    if counts is not None:
        # Keep window j of trajectory n only if j < counts[n]; boolean indexing over the
        # (N, M_n) axes keeps trajectory-major order and copies only the windows kept.
        keep = torch.arange(inputs.shape[1])[None, :] < counts[:, None]
        keep = keep.to(x.device)
        inputs, targets = inputs[keep][None], targets[keep][None]
    inputs = inputs.permute(0, 1, 3, 2).reshape(-1, context, *state).contiguous()
    targets = targets.permute(0, 1, 3, 2).reshape(-1, horizon, *state).contiguous()
    if not return_index:
        return inputs, targets
    if counts is None:
        counts = torch.full((n,), inputs.shape[0] // n, dtype=torch.int64)
    index = torch.arange(n).repeat_interleave(counts).to(x.device)
    return inputs, targets, index
