"""1-D linear advection, ∂ₜu + β∂ₓu = 0 on (0, 1) with periodic boundaries, as PDEBench poses it.

Two ways to make data, both batched in torch (CUDA when the tensors are on CUDA):

- ``kind="exact"``: ``u(x, t) = ic((x − βt) mod 1)``, the initial condition evaluated at the
  shifted points. Each initial condition is kept as its parameters
  (:class:`InitialConditions`), so this is exact for any β, grid and time: no interpolation.
- ``kind="fv"``: :func:`fv_solve`, the finite-volume scheme PDEBench generated its data with
  (Takamoto et al., "PDEBench", NeurIPS 2022 Datasets and Benchmarks, appendix D.1):
  cell values, periodic ghost cells (two each side), a MUSCL reconstruction whose slopes are
  limited (PDEBench's ``VLlimiter`` with α = 2, van Leer's monotonised-central limiter, is the
  default; others are offered), the upwind flux, a two-stage predictor–corrector (half step,
  then the full step with the half-step fluxes: the midpoint rule), CFL 0.4, and the last step
  before each output time shortened so that every frame lands on its time exactly.

Everything here was written from the published description and from reading PDEBench's
generator (``pdebench/data_gen/data_gen_NLE/AdvectionEq/advection_multi_solution_Hydra.py``,
``utils.py``: ``init_multi``, ``bc``, ``limiting``, ``VLlimiter``, ``Courant``; configs
``AdvectionEq/config/multi/beta*.yaml``); none of its code is copied (it carries a
non-commercial licence). What was taken from there:

- grid: ``nx = 1024`` cells on (0, 1), centres ``x_j = (j + ½)/nx``; frames every
  ``dt_save = 0.01`` from 0 to 2 (201 frames); CFL 0.4 with ``dt = CFL·dx/|β|``;
  β ∈ {0.1, 0.2, 0.4, 0.7, 1, 2, 4, 7} (:data:`BETAS`, the published data sets); the initial
  state is the initial condition sampled at the cell centres (no cell averaging).
- the initial-condition recipe (:class:`ICRecipe`, :func:`sample_initial_conditions`), per
  sample: two draws from the wavenumbers 1..4, combined as PDEBench's one-hot sum does, so
  that a wavenumber drawn twice becomes one sine of twice that wavenumber and each of the four
  wavenumbers not drawn contributes a *constant* ``a·sin φ`` (its wavenumber is 0); amplitudes
  U(0, 1) and phases U(0, 2π), one per wavenumber; then ``|u|`` with probability 0.1; then a
  sign ±1 with probability ½ each; then, with probability 0.1, a window
  ``½(tanh((x − x_L)/0.01) − tanh((x − x_R)/0.01))``.
- two details of PDEBench's code that shape its data, mirrored by default and switchable in
  :class:`ICRecipe`: its wavenumbers are ``2πk/(x_last − x_first) = 2πk·nx/(nx − 1)``, so the
  sines are not quite periodic on (0, 1) (``pdebench_length``); and the window decision and
  both window edges come from one random key, i.e. one uniform ``v`` per sample: windowed iff
  ``v < 0.1``, ``x_L = 0.1 + 0.35v``, ``x_R = 0.55 + 0.35v``, so a window always spans 0.45 and
  starts in [0.1, 0.135) (``coupled_window``; False draws ``x_L ~ U(0.1, 0.45)`` and
  ``x_R ~ U(0.55, 0.9)`` independently, as the paper describes it).

PDEBench draws with JAX's generator; dynaforge draws from an explicit ``torch.Generator``, so
the recipe (the distribution) is the same but the individual samples are not PDEBench's.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from dynaforge.progress import progress_bar

#: The advection speeds of PDEBench's published 1-D advection data sets.
BETAS = (0.1, 0.2, 0.4, 0.7, 1.0, 2.0, 4.0, 7.0)
#: PDEBench's grid: cells on (0, 1), frames, and the interval between frames.
NX = 1024
FRAMES = 201
DT = 0.01
#: PDEBench's Courant number.
CFL = 0.4
#: Slope limiters of :func:`fv_solve`; ``"mc"`` is PDEBench's.
LIMITERS = ("mc", "minmod", "van_leer", "superbee", "none")
KINDS = ("fv", "exact")

#: Default samples per block on the CPU: 256 cells-rows of 1024 float32 are 1 MiB per array,
#: so a block's working set stays in the caches through all its time steps.
CPU_CHUNK = 256
#: :func:`fv_solve` compiles its step (``compile=None``) once the work reaches this many cell
#: updates: about 10 s uncompiled on two cores, more than the first compilation costs.
COMPILE_THRESHOLD = 2e9


# ---------------------------------------------------------------------- checks


def _finite_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_count(value: Any, name: str) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _checked_beta(beta: Any) -> float:
    if isinstance(beta, torch.Tensor) and beta.numel() == 1:
        beta = beta.item()
    if not _finite_number(beta):
        raise ValueError(f"beta must be a finite number, got {beta!r}")
    return float(beta)


def _checked_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    return kind


def _checked_times(times: Any) -> list[float]:
    values = torch.as_tensor(times, dtype=torch.float64).cpu()
    if values.ndim != 1 or values.numel() == 0:
        raise ValueError(f"times must be a non-empty 1-D sequence, got shape {tuple(values.shape)}")
    if not torch.isfinite(values).all() or (values < 0).any():
        raise ValueError("times must be finite and >= 0")
    if (values[1:] < values[:-1]).any():
        raise ValueError("times must be non-decreasing")
    return values.tolist()


def cell_centres(
    nx: int, *, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """``(nx,)`` cell centres ``(j + ½)/nx`` of ``nx`` equal cells on (0, 1)."""
    _check_count(nx, "nx")
    return (torch.arange(nx, dtype=torch.float64) + 0.5).div(nx).to(device=device, dtype=dtype)


def frame_times(
    frames: int,
    dt: float,
    *,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """``(frames,)`` output times ``k·dt``, k = 0 .. frames − 1 (PDEBench: 201 × 0.01)."""
    _check_count(frames, "frames")
    if not _finite_number(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite number > 0, got {dt!r}")
    return (torch.arange(frames, dtype=torch.float64) * dt).to(device=device, dtype=dtype)


# ---------------------------------------------------------------------- initial conditions


@dataclasses.dataclass(frozen=True)
class ICRecipe:
    """How initial conditions are drawn; the defaults are PDEBench's (module docstring).

    Attributes:
        k_max: wavenumbers 1 .. k_max (in cycles per ``length``) can be drawn.
        n_modes: draws per sample (with replacement).
        p_abs: probability of taking ``|u|``.
        p_window: probability of the tanh window.
        window_left, window_right: ranges of the window's left and right edges.
        transition: width of the window's tanh edges.
        coupled_window: PDEBench's single uniform for the decision and both edges.
        pdebench_length: wavenumbers per ``(nx − 1)/nx`` (PDEBench's ``x_last − x_first``)
            instead of per 1.
    """

    k_max: int = 4
    n_modes: int = 2
    p_abs: float = 0.1
    p_window: float = 0.1
    window_left: tuple[float, float] = (0.1, 0.45)
    window_right: tuple[float, float] = (0.55, 0.9)
    transition: float = 0.01
    coupled_window: bool = True
    pdebench_length: bool = True

    def __post_init__(self) -> None:
        for name in ("k_max", "n_modes"):
            _check_count(getattr(self, name), name)
        for name in ("p_abs", "p_window"):
            p = getattr(self, name)
            if not _finite_number(p) or not 0 <= p <= 1:
                raise ValueError(f"ICRecipe.{name} must be a probability in [0, 1], got {p!r}")
        for name in ("window_left", "window_right"):
            lo_hi = getattr(self, name)
            if (
                not isinstance(lo_hi, tuple)
                or len(lo_hi) != 2
                or not all(_finite_number(v) for v in lo_hi)
                or lo_hi[0] > lo_hi[1]
            ):
                raise ValueError(f"ICRecipe.{name} must be a (low, high) pair, got {lo_hi!r}")
        if not _finite_number(self.transition) or self.transition <= 0:
            raise ValueError(f"ICRecipe.transition must be > 0, got {self.transition!r}")

    def length(self, nx: int) -> float:
        """The length the wavenumbers refer to on a grid of ``nx`` cells."""
        return (nx - 1) / nx if self.pdebench_length else 1.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: PDEBench's recipe, every detail as its generator has it.
PDEBENCH_RECIPE = ICRecipe()


@dataclasses.dataclass(frozen=True, eq=False)
class InitialConditions:
    """``n`` initial conditions as parameters; ``ic(x)`` evaluates them at any points.

    ``u(x) = w(x) · s · A(Σ_k a_k sin(2π m_k x / length + φ_k))`` where ``A`` is ``|·|`` for
    the samples with ``absolute`` and the identity otherwise, ``s = sign`` and ``w`` is the
    tanh window for the samples with ``windowed`` (1 otherwise). Shapes (``K = k_max``):

    Attributes:
        wavenumbers: ``(n, K)`` int64 ``m_k``: ``k`` times the number of times wavenumber ``k``
            was drawn (0 for a wavenumber not drawn, whose term is the constant ``a_k sin φ_k``).
        amplitudes: ``(n, K)`` float64 ``a_k``.
        phases: ``(n, K)`` float64 ``φ_k`` (radians).
        absolute: ``(n,)`` bool.
        sign: ``(n,)`` float64, ±1.
        windowed: ``(n,)`` bool.
        window_left, window_right: ``(n,)`` float64 window edges (used where ``windowed``).
        transition: width of the window's edges.
        length: the length the wavenumbers refer to.
    """

    wavenumbers: torch.Tensor
    amplitudes: torch.Tensor
    phases: torch.Tensor
    absolute: torch.Tensor
    sign: torch.Tensor
    windowed: torch.Tensor
    window_left: torch.Tensor
    window_right: torch.Tensor
    transition: float
    length: float

    def __len__(self) -> int:
        return self.wavenumbers.shape[0]

    def __getitem__(self, index: slice | Sequence[int] | torch.Tensor) -> InitialConditions:
        """The initial conditions at ``index`` (a slice or indices along ``n``)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return dataclasses.replace(
            self, **{name: getattr(self, name)[index] for name in _PER_SAMPLE}
        )

    def to(self, device: str | torch.device) -> InitialConditions:
        return dataclasses.replace(
            self, **{name: getattr(self, name).to(device) for name in _PER_SAMPLE}
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Values at points ``x``: ``(P,)`` (the same points for every sample) or ``(n, P)``;
        returns ``(n, P)``, computed in float64 on ``x``'s device."""
        x = torch.as_tensor(x)
        device = x.device
        x = x.to(torch.float64)
        if x.ndim == 1:
            x = x[None, :]
        elif x.ndim != 2 or x.shape[0] != len(self):
            raise ValueError(
                f"points must be shaped (P,) or (n, P) with n = {len(self)}, got {tuple(x.shape)}"
            )
        p = self.to(device)
        k = (2 * math.pi / self.length) * p.wavenumbers.to(torch.float64)
        u = torch.zeros(len(self), x.shape[1], dtype=torch.float64, device=device)
        # One mode at a time: the (n, P) temporaries stay small for long point lists.
        for j in range(k.shape[1]):
            u += p.amplitudes[:, j, None] * torch.sin(k[:, j, None] * x + p.phases[:, j, None])
        u = torch.where(p.absolute[:, None], u.abs(), u)
        u *= p.sign[:, None]
        rows = p.windowed.nonzero().flatten()
        if rows.numel():
            xr = x if x.shape[0] == 1 else x[rows]
            w = self.transition
            window = 0.5 * (
                torch.tanh((xr - p.window_left[rows, None]) / w)
                - torch.tanh((xr - p.window_right[rows, None]) / w)
            )
            u[rows] *= window
        return u


_PER_SAMPLE = tuple(
    f.name for f in dataclasses.fields(InitialConditions) if f.name not in ("transition", "length")
)


def sample_initial_conditions(
    n: int, generator: torch.Generator, *, nx: int = NX, recipe: ICRecipe = PDEBENCH_RECIPE
) -> InitialConditions:
    """Draw ``n`` initial conditions with ``recipe`` (PDEBench's by default) from ``generator``.

    Every sample takes one row of ``n_modes + 2·k_max + 5`` uniforms, drawn as one ``(n, ·)``
    float64 tensor (on the CPU, so a seed gives the same samples on any device), and the same
    generator state gives the same first samples whatever ``n``: data sets of different sizes
    share their first trajectories. ``nx`` only sets the wavenumbers' length when
    ``recipe.pdebench_length``.
    """
    _check_count(n, "n")
    _check_count(nx, "nx")
    k_max, m = recipe.k_max, recipe.n_modes
    u = torch.rand((n, m + 2 * k_max + 5), generator=generator, dtype=torch.float64)
    picks = (u[:, :m] * k_max).long().clamp_(max=k_max - 1)
    counts = torch.nn.functional.one_hot(picks, k_max).sum(dim=1)
    wavenumbers = counts * torch.arange(1, k_max + 1)
    amplitudes = u[:, m : m + k_max].clone()
    phases = 2 * math.pi * u[:, m + k_max : m + 2 * k_max]
    rest = u[:, m + 2 * k_max :]
    absolute = rest[:, 0] < recipe.p_abs
    sign = torch.where(rest[:, 1] < 0.5, -1.0, 1.0).to(torch.float64)
    v = rest[:, 2]
    windowed = v < recipe.p_window
    (l0, l1), (r0, r1) = recipe.window_left, recipe.window_right
    if recipe.coupled_window:
        left, right = l0 + (l1 - l0) * v, r0 + (r1 - r0) * v
    else:
        left, right = l0 + (l1 - l0) * rest[:, 3], r0 + (r1 - r0) * rest[:, 4]
    return InitialConditions(
        wavenumbers=wavenumbers,
        amplitudes=amplitudes,
        phases=phases,
        absolute=absolute,
        sign=sign,
        windowed=windowed,
        window_left=left,
        window_right=right,
        transition=float(recipe.transition),
        length=recipe.length(nx),
    )


def exact_solution(
    ic: InitialConditions,
    beta: float,
    x: torch.Tensor,
    t: torch.Tensor,
    *,
    dtype: torch.dtype = torch.float64,
    chunk: int = 16,
) -> torch.Tensor:
    """``(n, T, P)``: ``u(x, t) = ic((x − βt) mod 1)`` at points ``x`` ``(P,)`` and times ``t``
    ``(T,)``, on ``x``'s device, computed in float64 and returned as ``dtype``. ``chunk``
    samples at a time bound the temporaries (a few ``chunk × T × P`` float64 arrays)."""
    beta = _checked_beta(beta)
    x = torch.as_tensor(x).to(torch.float64)
    t = torch.as_tensor(t).to(device=x.device, dtype=torch.float64)
    if x.ndim != 1 or t.ndim != 1:
        raise ValueError(f"x and t must be 1-D, got shapes {tuple(x.shape)} and {tuple(t.shape)}")
    # Float64 throughout: (x − βt) mod 1 loses nothing that matters at β t ≤ 14.
    points = torch.remainder(x[None, :] - beta * t[:, None], 1.0).reshape(-1)
    out = torch.empty(len(ic), t.shape[0], x.shape[0], dtype=dtype, device=x.device)
    for start in range(0, len(ic), chunk):
        part = ic[start : start + chunk]
        out[start : start + len(part)] = part(points).reshape(len(part), t.shape[0], -1)
    return out


# ---------------------------------------------------------------------- finite volumes


def _minmod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``min(a, b)`` where both are positive, ``max(a, b)`` where both are negative, else 0."""
    return torch.minimum(a, b).clamp_(min=0) + torch.maximum(a, b).clamp_(max=0)


def _half_slope(a: torch.Tensor, b: torch.Tensor, limiter: str) -> torch.Tensor:
    """Half the limited slope of each cell from its backward and forward differences ``a``,
    ``b``: the reconstruction's face values are ``u ± half``."""
    if limiter == "mc":
        # Half of minmod(2a, 2b, (a + b)/2) in one clamp: the bounds are 0 unless a and b have
        # the same sign, and then min(|a|, |b|) on that side. (PDEBench's VLlimiter, α = 2.)
        lo = torch.minimum(a, b).clamp_(min=0)
        hi = torch.maximum(a, b).clamp_(max=0)
        return torch.clamp((a + b).mul_(0.25), hi, lo)
    if limiter == "minmod":
        return _minmod(a, b).mul_(0.5)
    if limiter == "van_leer":
        ab = a * b
        return torch.where(ab > 0, ab / (a + b), torch.zeros_like(ab))
    if limiter == "superbee":
        s1, s2 = _minmod(2 * a, b), _minmod(a, 2 * b)
        return torch.where(s1.abs() > s2.abs(), s1, s2).mul_(0.5)
    if limiter == "none":
        return torch.zeros_like(a)
    raise ValueError(f"unknown limiter {limiter!r}; use one of {', '.join(LIMITERS)}")


def _face_difference(u: torch.Tensor, limiter: str) -> torch.Tensor:
    """``(N, nx)``: the upwind (β > 0) face value at ``i + ½`` minus that at ``i − ½``, the
    right-face value of cell ``i`` minus that of cell ``i − 1``; times ``β/dx`` this is
    ``∂ₓ(βu)`` of the finite-volume scheme."""
    # Two periodic ghost cells each side: a slope needs a neighbour on each side, and the face
    # values of the cells just outside the domain are needed for the boundary fluxes.
    ug = torch.cat((u[..., -2:], u, u[..., :2]), dim=-1)
    d = ug[..., 1:] - ug[..., :-1]
    face = _half_slope(d[..., :-1], d[..., 1:], limiter).add_(ug[..., 1:-1])  # cells -1 .. nx
    return face[..., 1:-1] - face[..., :-2]


def _make_step(limiter: str) -> Callable[..., torch.Tensor]:
    def step(u: torch.Tensor, c_half: torch.Tensor, c_full: torch.Tensor) -> torch.Tensor:
        # Predictor: half a step with the fluxes of u; corrector: the full step from u with
        # the fluxes of the half-step state (second order in time).
        half = u - c_half * _face_difference(u, limiter)
        return u - c_full * _face_difference(half, limiter)

    return step


_EAGER_STEPS: dict[str, Callable[..., torch.Tensor]] = {}
_COMPILED_STEPS: dict[str, Callable[..., torch.Tensor]] = {}
#: Set when torch.compile failed once in this process (no compiler): later calls do not retry.
_COMPILE_FAILED: list[str] = []


def _step_function(limiter: str, compile: bool) -> tuple[Callable, bool]:
    """The step for ``limiter``, compiled (with torch.compile) if asked and possible; returns
    it and whether it is compiled."""
    eager = _EAGER_STEPS.setdefault(limiter, _make_step(limiter))
    if not compile or _COMPILE_FAILED:
        return eager, False
    if limiter not in _COMPILED_STEPS:
        # dynamic=True: one compiled kernel for every batch size and grid. (torch recompiles
        # for a new dtype, a batch of 1 and a new thread count, at most 8 times per process.)
        _COMPILED_STEPS[limiter] = torch.compile(eager, dynamic=True)
    return _COMPILED_STEPS[limiter], True


def step_schedule(
    beta: float, times: Sequence[float], *, nx: int, cfl: float = CFL, length: float = 1.0
) -> list[list[float]]:
    """The time steps from 0 to each output time: ``steps[k]`` lists the steps (time units)
    from ``times[k-1]`` (0 for k = 0) to ``times[k]``: full steps ``cfl·dx/|β|`` and a last one
    shortened to land on ``times[k]`` (none when the two times are equal)."""
    beta = _checked_beta(beta)
    dt_max = math.inf if beta == 0 else cfl * (length / nx) / abs(beta)
    schedule, previous = [], 0.0
    for t in times:
        interval = t - previous
        if interval <= 0:
            schedule.append([])
        elif math.isinf(dt_max):
            schedule.append([interval])
        else:
            # The factor absorbs rounding: 25.6000000001 full steps are 26 steps, not 27.
            count = max(1, math.ceil(interval / dt_max * (1 - 1e-10)))
            schedule.append([dt_max] * (count - 1) + [interval - (count - 1) * dt_max])
        previous = t
    return schedule


def fv_solve(
    u0: torch.Tensor,
    beta: float,
    times: Sequence[float] | torch.Tensor,
    *,
    cfl: float = CFL,
    limiter: str = "mc",
    length: float = 1.0,
    chunk: int | None = None,
    compile: bool | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Solve ``∂ₜu + β∂ₓu = 0`` with periodic boundaries by finite volumes, recording at ``times``.

    The scheme of PDEBench's generator (module docstring): MUSCL reconstruction with a slope
    ``limiter`` (:data:`LIMITERS`; ``"mc"`` is PDEBench's, ``"none"`` is first-order upwind),
    upwind flux, a two-stage predictor–corrector, ``dt = cfl·dx/|β|``, the last step before
    each output time shortened to land on it.

    Args:
        u0: ``(N, nx)`` cell values at t = 0; their dtype and device are the solver's.
        beta: advection speed β (any sign).
        times: ``(T,)`` non-decreasing output times ≥ 0 (time units); a time 0 records ``u0``.
        cfl: Courant number ``|β|·dt/dx``.
        length: domain length (``dx = length/nx``).
        chunk: samples integrated together through all time steps (cache blocking on the CPU);
            default :data:`CPU_CHUNK` on the CPU, all on other devices.
        compile: compile the step with ``torch.compile`` (its fused kernel is several times
            faster); None: only when the work reaches :data:`COMPILE_THRESHOLD` cell updates.
            If compiling fails (no compiler), the step runs uncompiled, with a warning.
        progress: a progress display over samples.

    Returns:
        ``(N, T, nx)`` cell values at ``times``, ``u0``'s dtype and device.
    """
    u0 = torch.as_tensor(u0)
    if u0.ndim != 2 or 0 in u0.shape or not u0.dtype.is_floating_point:
        raise ValueError(
            f"u0 must be a float tensor shaped (N, nx), got {tuple(u0.shape)} {u0.dtype}"
        )
    if limiter not in LIMITERS:
        raise ValueError(f"unknown limiter {limiter!r}; use one of {', '.join(LIMITERS)}")
    if not _finite_number(cfl) or cfl <= 0:
        raise ValueError(f"cfl must be a number > 0, got {cfl!r}")
    out_times = _checked_times(times)
    n, nx = u0.shape
    beta = _checked_beta(beta)
    schedule = step_schedule(beta, out_times, nx=nx, cfl=cfl, length=length)
    steps = sum(len(s) for s in schedule)
    if compile is None:
        compile = n * nx * steps >= COMPILE_THRESHOLD
    out = torch.empty((n, len(out_times), nx), dtype=u0.dtype, device=u0.device)
    if beta == 0 or steps == 0:
        out[:] = u0[:, None, :]
        return out
    step, compiled = _step_function(limiter, compile)
    dx = length / nx
    # β < 0 is the mirror image of |β| > 0: the scheme (upwind side, symmetric limiters) maps
    # onto itself under x -> -x, so one code path serves both signs.
    mirror = beta < 0
    # Courant factors |β|·dt/dx of each step's two stages, as 0-d tensors (compiled code takes
    # them as inputs, so a shortened step does not recompile).
    factors = {
        dt: (
            torch.tensor(0.5 * abs(beta) * dt / dx, dtype=u0.dtype, device=u0.device),
            torch.tensor(abs(beta) * dt / dx, dtype=u0.dtype, device=u0.device),
        )
        for dt in {dt for s in schedule for dt in s}
    }
    if chunk is None:
        chunk = CPU_CHUNK if u0.device.type == "cpu" else n
    _check_count(chunk, "chunk")
    bar = progress_bar(n, desc=f"advection fv β={beta:g}", unit="samples", enabled=progress,
                       min_interval=10.0)  # fmt: skip
    try:
        for start in range(0, n, chunk):
            u = u0[start : start + chunk]
            u = u.flip(-1) if mirror else u
            for k, dts in enumerate(schedule):
                for dt in dts:
                    try:
                        u = step(u, *factors[dt])
                    except Exception as e:  # any compiler failure: run uncompiled
                        if not compiled:
                            raise
                        warnings.warn(
                            f"torch.compile failed ({type(e).__name__}: {e}); "
                            "the finite-volume step runs uncompiled",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                        _COMPILE_FAILED.append(f"{type(e).__name__}: {e}")
                        step, compiled = _step_function(limiter, False)
                        u = step(u, *factors[dt])
                out[start : start + u.shape[0], k] = u.flip(-1) if mirror else u
            if bar is not None:
                bar.update(u.shape[0])
    finally:
        if bar is not None:
            bar.close()
    return out


# ---------------------------------------------------------------------- data sets


def advection_blocks(
    beta: float,
    n: int,
    *,
    kind: str = "fv",
    nx: int = NX,
    frames: int = FRAMES,
    dt: float = DT,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    recipe: ICRecipe = PDEBENCH_RECIPE,
    limiter: str = "mc",
    cfl: float = CFL,
    block: int | None = None,
    compile: bool | None = None,
    progress: bool = False,
) -> Iterator[tuple[int, torch.Tensor]]:
    """The data of :func:`simulate_advection` as ``(start, (b, frames, nx))`` blocks of
    samples ``start .. start + b − 1``, so that a writer can stream a data set larger than
    memory. ``block`` samples each (default :data:`CPU_CHUNK` on the CPU, 4096 elsewhere)."""
    kind = _checked_kind(kind)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    device = torch.device(device)
    ic = sample_initial_conditions(n, torch.Generator().manual_seed(seed), nx=nx, recipe=recipe)
    x = cell_centres(nx, device=device)
    t = frame_times(frames, dt)
    beta = _checked_beta(beta)
    if block is None:
        block = CPU_CHUNK if device.type == "cpu" else 4096
    _check_count(block, "block")
    if compile is None and kind == "fv":
        steps = sum(len(s) for s in step_schedule(beta, t.tolist(), nx=nx, cfl=cfl))
        compile = n * nx * steps >= COMPILE_THRESHOLD
    bar = progress_bar(n, desc=f"advection {kind} β={beta:g}", unit="samples",
                       enabled=progress, min_interval=10.0)  # fmt: skip
    try:
        for start in range(0, n, block):
            part = ic[start : start + block]
            if kind == "exact":
                u = exact_solution(part, beta, x, t.to(device), dtype=dtype)
            else:
                u0 = part(x).to(dtype)
                u = fv_solve(u0, beta, t.tolist(), cfl=cfl, limiter=limiter, compile=compile)
            yield start, u
            if bar is not None:
                bar.update(u.shape[0])
    finally:
        if bar is not None:
            bar.close()


def simulate_advection(
    beta: float,
    n: int,
    *,
    kind: str = "fv",
    nx: int = NX,
    frames: int = FRAMES,
    dt: float = DT,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    recipe: ICRecipe = PDEBENCH_RECIPE,
    limiter: str = "mc",
    cfl: float = CFL,
    compile: bool | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """``n`` advection trajectories on PDEBench's grid (by default 201 frames × 1024 cells).

    The initial conditions are ``sample_initial_conditions(n, torch.Generator().manual_seed(
    seed), nx=nx, recipe=recipe)``; ``kind="exact"`` shifts them exactly, ``kind="fv"`` solves
    with :func:`fv_solve` from their cell-centre values (PDEBench's data are of this kind).

    Returns:
        ``u`` ``(n, frames, nx)`` (``dtype``: PDEBench's float32 by default; on ``device``),
        ``x`` ``(nx,)`` cell centres and ``t`` ``(frames,)`` times ``k·dt`` (float64, on the
        CPU), and a JSON-ready ``info`` dict (kind, β, grid, seed, solver, recipe, seconds ...).
    """
    t0 = time.perf_counter()
    kind = _checked_kind(kind)
    beta = _checked_beta(beta)
    _check_count(n, "n")
    blocks = advection_blocks(beta, n, kind=kind, nx=nx, frames=frames, dt=dt, seed=seed,
                              device=device, dtype=dtype, recipe=recipe, limiter=limiter,
                              cfl=cfl, compile=compile, progress=progress)  # fmt: skip
    u = torch.empty((n, frames, nx), dtype=dtype, device=device)
    for start, part in blocks:
        u[start : start + part.shape[0]] = part
    t = frame_times(frames, dt)
    info = advection_info(beta, n, kind=kind, nx=nx, frames=frames, dt=dt, seed=seed,
                          dtype=dtype, recipe=recipe, limiter=limiter, cfl=cfl)  # fmt: skip
    info["seconds"] = round(time.perf_counter() - t0, 3)
    info["device"] = str(torch.device(device))
    return u, cell_centres(nx), t, info


def save_advection_pdebench(
    path: str | Any,
    beta: float,
    n: int,
    *,
    kind: str = "fv",
    nx: int = NX,
    frames: int = FRAMES,
    dt: float = DT,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Simulate as :func:`simulate_advection` does (float32, PDEBench's recipe and scheme) and
    stream the data, block by block, into a PDEBench-layout file at ``path``
    (:class:`~dynaforge.data.pdebench.PDEBenchWriter`: atomic, the folder checked first);
    memory holds one block, not the data set. Returns the ``info`` written into the file."""
    import dynaforge
    from dynaforge.data.pdebench import PDEBenchWriter

    kind, beta = _checked_kind(kind), _checked_beta(beta)
    _check_count(n, "n")
    x, t = cell_centres(nx), frame_times(frames, dt)
    info = advection_info(beta, n, kind=kind, nx=nx, frames=frames, dt=dt, seed=seed)
    info["dynaforge_version"] = dynaforge.__version__
    blocks = advection_blocks(beta, n, kind=kind, nx=nx, frames=frames, dt=dt, seed=seed,
                              device=device, progress=progress)  # fmt: skip
    with PDEBenchWriter(path, n, x, t, beta, metadata=info) as writer:
        for start, block in blocks:
            writer.write(start, block)
    return info


def advection_info(
    beta: float,
    n: int,
    *,
    kind: str,
    nx: int,
    frames: int,
    dt: float,
    seed: int,
    dtype: torch.dtype = torch.float32,
    recipe: ICRecipe = PDEBENCH_RECIPE,
    limiter: str = "mc",
    cfl: float = CFL,
) -> dict[str, Any]:
    """The JSON-ready description of a simulated data set (what :func:`simulate_advection`
    returns as ``info`` and the CLI writes into the file)."""
    info: dict[str, Any] = {
        "system": "advection",
        "pde": "u_t + beta u_x = 0 on (0, 1), periodic",
        "kind": kind,
        "beta": float(beta),
        "n": int(n),
        "nx": int(nx),
        "frames": int(frames),
        "dt": float(dt),
        "seed": int(seed),
        "dtype": str(dtype).removeprefix("torch."),
        "initial_conditions": {
            "recipe": "pdebench" if recipe == PDEBENCH_RECIPE else "custom",
            **recipe.as_dict(),
        },
    }
    if kind == "fv":
        t = frame_times(frames, dt).tolist()
        info["solver"] = {
            "scheme": "finite volumes: MUSCL reconstruction, upwind flux, "
            "two-stage predictor-corrector, periodic ghost cells",
            "limiter": limiter,
            "cfl": float(cfl),
            "steps": sum(len(s) for s in step_schedule(beta, t, nx=nx, cfl=cfl)),
        }
    else:
        info["solver"] = {"scheme": "exact: u(x, t) = u0((x - beta t) mod 1)"}
    return info
