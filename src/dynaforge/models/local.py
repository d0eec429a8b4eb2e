"""Local next-generation reservoir computing: one NG-RC shared by every site of a periodic
1-D lattice, so the model is translation-equivariant (Pathak et al., PRL 120, 024102 (2018)
for the locality and weight sharing; Gauthier et al., Nat. Commun. 12, 5564 (2021) and Barbosa
& Gauthier, Chaos 32, 093137 (2022) for NG-RC and its local form).

The state is one periodic lattice of ``n`` sites, ``x`` ``(n,)``. Site ``i``'s features are a
constant, the values at the sites ``i - radius + shift .. i + radius + shift`` (periodic) at
``delays`` time lags ``skip`` steps apart (the linear part), and every unique monomial of
degree 2..``degree`` of the linear part. One weight vector, shared by all sites, maps a site's
features to its increment ``x_i(t + dt) - x_i(t)``; it is fitted in closed form by ridge
regression over all sites × all training times, the normal equations accumulated in chunks.
States are z-scored with one mean and one standard deviation for all sites (per-site statistics
would break the symmetry). A forecast iterates the one-step map on all sites at once (the
stencil is one gather), so a forecast of a shifted context is exactly the shifted forecast.

Beyond NG-RC, three knobs were needed:

- ``shift`` moves the stencil off centre: Lorenz-96's right-hand side at site ``i`` reads
  ``i - 2 .. i + 1``, so a one-step map reaches further left than right. ``radius = 3,
  shift = -1`` (``i - 4 .. i + 2``) does as well as ``radius = 4`` at half the features.
- ``noise``: Gaussian noise (std in z-score units, drawn from ``seed``) is added to the
  training inputs, the target staying the clean next state. Without it every model with two
  delays, and every Kuramoto–Sivashinsky model tried, diverged within a few Lyapunov times (KS:
  within 4 steps): directions the attractor never explores (two-delay "parasitic" modes, as
  Zhang & Cornelius, arXiv:2407.08641 (2024) found for NG-RC; KS's high wavenumbers, whose
  amplitudes are below 1e-6) are left undetermined by the data, and a ridge penalty shrinks
  their weights towards persistence (neutral), not towards damping. Noisy inputs teach the
  map to damp them (Wikner et al., Neural Networks 170, 94 (2024)). Long free runs need
  enough of it: Lorenz-96, radius 3 / shift -1 / degree 3, 30 runs of 100 Lyapunov times:
  noise 1e-2 let 5 diverge, 3e-2 none (same VPT, 2.69); degree 4 at 3e-3 or 1e-2: none.
- ``stride`` fits on every ``stride``-th time window of each trajectory (speed). On clean
  data stride 4 lost nothing; with noise, stride 1 is a little better (more noise draws):
  3.02 against 2.86 below, at 4x the fit time.

Measured (quick-preset data: 20 × 2000 training steps, 200 context steps, 30 test forecasts,
median VPT [IQR] in Lyapunov times at ε = 0.4, 1-step nMSE, fit time on one thread of a
shared 2-core machine; RK4 on the
true equations at the data dt: Lorenz-96 3.78 [3.19, 4.66] with 1-step nMSE 2.3e-5;
KS: ETDRK4 at dt = 0.25, 6.62 [4.94, 7.96], 1-step nMSE 1.2e-9):

Lorenz-96 (n = 40, F = 8, dt = 0.1), ``ridge = 1e-8``, no noise and stride 1 unless given:

=====================================  ========  ===================  =========  =======
radius / shift / delays / degree        features  VPT                  1-step     fit (s)
=====================================  ========  ===================  =========  =======
2 / 0 / 1 / 2                           21        0.42 [0.34, 0.50]    2.1e-2     0.5
3 / 0 / 1 / 3                           120       1.18 [1.01, 1.47]    4.0e-3     4
4 / 0 / 1 / 3                           220       1.51 [1.34, 1.68]    1.7e-3     11
4 / -1 / 1 / 3                          220       1.51 [1.34, 1.81]    1.6e-3     10
3 / -1 / 2 / 3                          680       0.34 (diverges)      1.4e-4     53
3 / -1 / 2 / 3, ridge 1e-4              680       2.69 [2.18, 3.15]    2.6e-4     50
3 / 0 / 2 / 3, ridge 1e-4, stride 4     680       1.85 [1.55, 2.52]    7.7e-4     20
3 / -1 / 2 / 3, noise 1e-2, stride 4    680       2.86 [2.39, 3.32]    2.1e-4     11
3 / -1 / 2 / 3, noise 1e-2              680       3.02 [2.39, 3.32]    2.1e-4     43
4 / 0 / 2 / 3, noise 1e-2, stride 4     1330      2.86 [2.35, 3.32]    2.0e-4     36
3 / -1 / 3 / 3, noise 1e-2, stride 8    2024      3.11 [2.69, 3.70]    1.0e-4     40
4 / -1 / 1 / 4, stride 4                715       2.69 [2.18, 3.19]    2.0e-4     17
4 / -1 / 1 / 5, stride 8                2002      3.28 [2.90, 3.99]    5.6e-5     43
3 / -1 / 2 / 4, noise 1e-2, stride 8    3060      3.78 [3.36, 4.03]    3.9e-5     85
=====================================  ========  ===================  =========  =======

At dt = 0.15 (RK4 2.27 [2.02, 2.71]) the best was 4 / -1 / 1 / 4 with 1.51 [1.26, 1.76], at
dt = 0.2 (RK4 1.01 [0.67, 1.34]) 0.84 [0.67, 1.01]: a polynomial one-step map of degree <= 4
on a stencil does not beat RK4 on the true equations at any of these steps (RK4's step is a
polynomial of degree 16 on 13 sites); the degree-4, two-delay model ties it at dt = 0.1
(3.86 against 3.70 on the 100 quick-benchmark forecasts below: one sample step).

Kuramoto–Sivashinsky (L = 22, 64 points, dt = 0.25), ``ridge = 1e-8``, ``stride = 4``:

=====================================  ========  ===================  =========  =======
radius / delays / degree, noise         features  VPT                  1-step     fit (s)
=====================================  ========  ===================  =========  =======
3 / 1 / 2, 0                            36        0.04 (diverges)      9.5e-6     0.4
10 / 1 / 2, 0                           253       0.06 (diverges)      5.7e-6     9
10 / 1 / 2, 1e-2                        253       1.01 [0.81, 1.44]    1.5e-5     3
8 / 1 / 3, 1e-2                         1140      0.98 [0.84, 1.26]    5.2e-6     41
6 / 2 / 2, 1e-2                         378       1.12 [0.88, 1.42]    4.3e-6     7
8 / 2 / 2, 1e-2                         630       2.30 [1.77, 3.08]    8.3e-7     14
8 / 2 / 2, 3e-3                         630       3.21 [2.50, 4.03]    2.2e-7     16
8 / 2 / 2, 1e-3                         630       2.98 [2.47, 3.87]    1.4e-7     15
10 / 2 / 2, 3e-3                        946       2.84 [2.08, 3.71]    1.7e-7     31
8 / 3 / 2, 1e-2                         1378      2.48 [1.80, 3.77]    9.3e-7     61
=====================================  ========  ===================  =========  =======

The quick benchmark (100 test forecasts, ``dynaforge benchmark TASK --models ... --threads 1``;
RK4 / ETDRK4 on the true equations at the data dt for reference):

============================================================  =================  =======  =================
task, local-ngrc hyperparameters                              VPT                fit (s)  climate
============================================================  =================  =======  =================
lorenz96: rk4                                                 3.70 [3.19, 4.54]  0        0.035
lorenz96: defaults                                            2.86 [2.35, 3.36]  32       inf (3% diverged)
lorenz96: radius 3, shift -1, degree 4, noise 3e-3, stride 8  3.86 [3.02, 4.41]  82       0.035
ks: etdrk4                                                    6.29 [4.93, 7.67]  0        0.023
ks: defaults                                                  0.32 [0.25, 0.40]  58       0.144
ks: radius 8, degree 2, noise 3e-3                            2.92 [2.30, 3.87]  15       0.041
============================================================  =================  =======  =================

The defaults (radius 4, delays 2, degree 3, noise 1e-2, stride 4) are the Lorenz-96 degree-3
choice with a centred stencil: a start for a lattice one knows nothing about. Each task wants
its own: Lorenz-96 its off-centre stencil and degree 4 (the only setting that reaches RK4),
KS a wide stencil (its one-step kernel spans about 8 grid points each side) at degree 2.
``val`` is not used (nothing to stop early).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from dynaforge.data import Normalizer, Trajectories
from dynaforge.models.base import AbstractForecaster

#: Feature-matrix entries per chunk (fitting and forecasting): bounds memory to about 32 MB
#: for the features plus as much again for the monomials being formed.
_CHUNK_VALUES = 4_000_000


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class LocalNGRC(AbstractForecaster):
    """NG-RC on a stencil of neighbouring sites, one weight vector for all sites.

    Args:
        radius: sites on each side of the stencil (``2 radius + 1`` sites per delay).
        shift: moves the stencil to ``i - radius + shift .. i + radius + shift``
            (``|shift| <= radius``, so the site itself stays in it).
        delays: delayed states in the linear part (``k``; 1 = the current state only).
        skip: steps between delayed states.
        degree: highest monomial degree of the nonlinear part (>= 1; 1 = linear model).
        ridge: Tikhonov weight on the mean-squared loss (over all sites and times).
        noise: std of the Gaussian noise added to the z-scored training inputs (0: none).
        seed: seed of that noise.
        stride: fit on every ``stride``-th window of each training trajectory.
    """

    name = "local-ngrc"
    # One periodic 1-D lattice: a vector state (the base refuses states with more axes).
    capabilities = frozenset()

    def __init__(
        self,
        *,
        radius: int = 4,
        shift: int = 0,
        delays: int = 2,
        skip: int = 1,
        degree: int = 3,
        ridge: float = 1e-8,
        noise: float = 1e-2,
        seed: int = 0,
        stride: int = 4,
    ) -> None:
        self.radius = radius
        self.shift = shift
        self.delays = delays
        self.skip = skip
        self.degree = degree
        self.ridge = ridge
        self.noise = noise
        self.seed = seed
        self.stride = stride

    @property
    def min_context(self) -> int:
        return (self.delays - 1) * self.skip + 1

    @property
    def stencil(self) -> int:
        """Sites per delay in a site's features."""
        return 2 * self.radius + 1

    def _check_hyperparameters(self) -> None:
        for name in ("radius", "delays", "skip", "degree", "stride"):
            value, low = getattr(self, name), 0 if name == "radius" else 1
            if not _is_int(value) or value < low:
                raise ValueError(f"{self.name}: {name} must be an integer >= {low}, got {value!r}")
        if not _is_int(self.shift) or abs(self.shift) > self.radius:
            raise ValueError(
                f"{self.name}: shift must be an integer with |shift| <= radius = {self.radius}, "
                f"got {self.shift!r}"
            )
        if not _is_int(self.seed):
            raise ValueError(f"{self.name}: seed must be an integer, got {self.seed!r}")
        for name in ("ridge", "noise"):
            value = getattr(self, name)
            if not _is_number(value) or not value >= 0 or value == float("inf"):
                raise ValueError(f"{self.name}: {name} must be a number >= 0, got {value!r}")

    def _check_sites(self, n_sites: int) -> None:
        if n_sites < self.stencil:
            raise ValueError(
                f"{self.name}: radius {self.radius} needs a lattice of at least {self.stencil} "
                f"sites (2 radius + 1), the states have {n_sites}; lower radius"
            )

    def _setup(self, n_sites: int) -> None:
        """Index tensors: each site's stencil, and each monomial of degree ``d >= 2`` as a
        monomial of degree ``d - 1`` times one linear feature (one product per feature)."""
        offsets = torch.arange(-self.radius, self.radius + 1) + self.shift
        self.neighbours_ = (torch.arange(n_sites)[:, None] + offsets[None, :]) % n_sites
        n_linear = self.delays * self.stencil
        previous = {(j,): j for j in range(n_linear)}
        self.monomials_ = []
        for d in range(2, self.degree + 1):
            combos = list(itertools.combinations_with_replacement(range(n_linear), d))
            parent = torch.tensor([previous[c[:-1]] for c in combos])
            factor = torch.tensor([c[-1] for c in combos])
            self.monomials_.append((parent, factor))
            previous = {c: i for i, c in enumerate(combos)}

    @property
    def n_features(self) -> int:
        n_linear = self.delays * self.stencil
        return 1 + n_linear + sum(int(parent.numel()) for parent, _ in self.monomials_)

    def _z(self, x: torch.Tensor) -> torch.Tensor:
        """z-scores of states ``(..., n)`` (one mean and std for every site)."""
        return self.normalizer_.transform(x.reshape(-1, 1)).reshape(x.shape)

    def _features(self, window: torch.Tensor) -> torch.Tensor:
        """Features ``(M, n, F)`` of every site from windows ``(M, min_context, n)`` of
        z-scored states."""
        last = window.shape[1] - 1
        newest_first = [last - i * self.skip for i in range(self.delays)]
        states = window[:, newest_first]  # (M, delays, n)
        lin = states[..., self.neighbours_]  # (M, delays, n, stencil)
        lin = lin.permute(0, 2, 1, 3).reshape(window.shape[0], window.shape[2], -1)
        parts = [torch.ones_like(lin[..., :1]), lin]
        monomial = lin
        for parent, factor in self.monomials_:
            monomial = monomial[..., parent] * lin[..., factor]
            parts.append(monomial)
        return torch.cat(parts, dim=-1)

    def _per_chunk(self, n_sites: int) -> int:
        return max(1, _CHUNK_VALUES // (self.n_features * n_sites))

    def _fit(self, train: Trajectories, val: Trajectories | None = None) -> None:
        self._check_hyperparameters()
        n_sites = train.dim
        self._check_sites(n_sites)
        k = self.min_context
        if train.n_steps < k + 1:
            raise ValueError(
                f"too few points: {self.name} needs more than {k} steps per trajectory, have "
                f"{train.n_steps}"
            )
        # One mean and one std for all sites: per-site z-scores would break the symmetry.
        self.normalizer_ = Normalizer.fit(train.x.reshape(-1, 1))
        self._setup(n_sites)
        n_feat = self.n_features
        u = self._z(train.x.to(torch.float64))  # (N, T, n)
        gen = torch.Generator().manual_seed(self.seed)
        per_chunk = self._per_chunk(n_sites)
        gram = torch.zeros(n_feat, n_feat, dtype=torch.float64)
        rhs = torch.zeros(n_feat, dtype=torch.float64)
        rows = 0
        for traj in u:
            windows = traj.unfold(0, k + 1, 1).permute(0, 2, 1)[:: self.stride]  # (W, k+1, n)
            for start in range(0, windows.shape[0], per_chunk):
                chunk = windows[start : start + per_chunk]
                inputs = chunk[:, :k]
                if self.noise > 0:
                    inputs = inputs + self.noise * torch.randn(
                        inputs.shape, generator=gen, dtype=torch.float64
                    )
                feats = self._features(inputs).reshape(-1, n_feat)
                # The increment from the (noisy) input to the clean next state.
                target = (chunk[:, k] - inputs[:, k - 1]).reshape(-1)
                gram += feats.T @ feats
                rhs += feats.T @ target
                rows += feats.shape[0]
        if rows < n_feat:
            raise ValueError(
                f"too few points: {rows} training rows (sites x windows) cannot determine "
                f"{n_feat} {self.name} features"
            )
        gram.diagonal().add_(self.ridge * rows)
        self.w_out_ = torch.linalg.solve(gram, rhs)

    @property
    def n_parameters(self) -> int:
        return int(self.w_out_.numel()) if self.is_fitted else 0

    def _forecast(
        self, context: torch.Tensor, horizon: int, static: torch.Tensor | None
    ) -> torch.Tensor:
        k = self.min_context
        out = torch.empty(context.shape[0], horizon, self.dim_, dtype=torch.float64)
        per_chunk = self._per_chunk(self.dim_)
        for start in range(0, context.shape[0], per_chunk):
            rows = slice(start, start + per_chunk)
            window = self._z(context[rows, -k:])
            for step in range(horizon):
                nxt = window[:, -1] + self._features(window) @ self.w_out_
                out[rows, step] = nxt
                window = torch.cat([window[:, 1:], nxt[:, None]], dim=1)
        return self.normalizer_.inverse(out.reshape(-1, 1)).reshape(out.shape)

    def _state(self) -> dict[str, Any]:
        return {
            "dim": self.dim_,
            "normalizer": self.normalizer_.state_dict(),
            "w_out": self.w_out_,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._check_hyperparameters()
        self.dim_ = state["dim"]
        self._check_sites(self.dim_)
        self.normalizer_ = Normalizer.from_state_dict(state["normalizer"])
        if self.normalizer_.dim != 1:
            raise ValueError(f"the normalizer has {self.normalizer_.dim} dimensions, not 1")
        self._setup(self.dim_)
        self.w_out_ = state["w_out"]
        if not isinstance(self.w_out_, torch.Tensor) or tuple(self.w_out_.shape) != (
            self.n_features,
        ):
            got = tuple(self.w_out_.shape) if isinstance(self.w_out_, torch.Tensor) else None
            raise ValueError(
                f"w_out has shape {got}, the hyperparameters give {self.n_features} features"
            )
