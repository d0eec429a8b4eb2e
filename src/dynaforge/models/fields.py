"""What the 1-D field models (FNO, U-Net) share: reading a window as frames and channels.

A field state is ``(nx,)`` values at the cell centres ``x_j = (j + 1/2) / nx`` of the periodic
unit interval. A neural forecaster's core receives a window ``(B, L, nx + S)``: at every one of
the ``L`` positions the ``nx`` field values followed by the ``S`` (z-scored) static inputs,
which are the same at every position (:mod:`dynaforge.models.neural`). Field models read the
``L`` frames as ``L`` input channels over the grid, as PDEBench does with its ``initial_step``
frames, and the static inputs as ``S`` channels constant along the grid.
"""

from __future__ import annotations

import torch


def split_window(window: torch.Tensor, nx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A core's window ``(B, L, nx + S)`` as frames ``(B, L, nx)`` (oldest first, so the frames
    are the channels) and static inputs ``(B, S)`` (``S = 0``: an empty ``(B, 0)``)."""
    return window[..., :nx], window[:, -1, nx:]


def cell_centres(nx: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(nx,)`` cell centres ``(j + 1/2) / nx`` of the unit interval (PDEBench's
    ``x-coordinate``)."""
    return (torch.arange(nx, dtype=torch.float64) + 0.5).div(nx).to(dtype)


def channels(frames: torch.Tensor, static: torch.Tensor, grid: torch.Tensor | None) -> torch.Tensor:
    """Input channels ``(B, L + S [+ 1], nx)``: the frames, each static input as a constant
    channel, and the grid coordinate when ``grid`` ``(nx,)`` is given."""
    batch, _, nx = frames.shape
    parts = [frames]
    if static.shape[1]:
        parts.append(static[:, :, None].expand(-1, -1, nx))
    if grid is not None:
        parts.append(grid.to(frames)[None, None].expand(batch, 1, nx))
    return torch.cat(parts, dim=1)
