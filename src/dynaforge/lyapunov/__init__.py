"""Lyapunov exponents: computed from a system's equations (:mod:`.equations`), estimated from
data alone (:mod:`.data`).

**From the equations** (:func:`lyapunov_spectrum`): ``k`` tangent vectors are carried along
the system's own fixed-step map (``system.integrate_fixed_step``: RK4 for an ODE, ETDRK4 for a
stiff PDE) by forward-mode autodiff (``torch.func.jvp``), re-orthonormalised by a QR
decomposition every few steps, and the logs of ``R``'s diagonal are accumulated (Benettin et
al. 1980; Shimada & Nagashima 1979). Several runs from independent initial conditions on the
attractor are integrated as one batch; their spread gives the standard error. The tangent
vectors of all runs are folded into the batch axis (the state repeated ``k`` times, each copy
with its own tangent) rather than ``vmap``-ed over: the same numbers, 1.5x faster on small
systems (measured on Lorenz-63, 8 runs x 3 vectors, one thread), and it asks nothing of a
system beyond the batched ``(N, dim)`` map every system already has. A linear system's exact
exponents (real parts of its eigenvalues) are reproduced to 4e-8 (``tests/test_lyapunov.py``).

Cost: in torch 2.13 an elementwise operation between a tangent-carrying tensor and a plain
one (a Python scalar included: ``sigma * x``) goes through a Python decomposition, 150-300 µs
instead of ~5 µs, so a Lorenz-63 RK4 step with tangents costs ~2 ms against 0.1 ms without,
whatever the batch. Hence the defaults: many short runs in one batch (128 runs of 10 Lyapunov
times after 5) rather than a few long ones, the same precision for a fraction of the time.
A system whose finite-time exponents converge slowly (sticky Hamiltonian chaos: Hénon–Heiles
gives 0.052 over 333 time units, 0.049 over 3000, against the cited long-time 0.045) needs
``time`` far beyond the default.

**From data** (:func:`estimate_from_data`), two methods, one a cross-check of the other:

- ``"model"``: SINDy (weak form, :class:`~dynaforge.models.sindy.SINDy`) is fitted to the
  data, checked (simulated from data states it must stay bounded and reproduce the data's mean
  and spread), and the tangent routine above is run on the fitted equations. Uncertainty: the
  spread of the exponent over models fitted to disjoint time segments of the data (so it
  includes the model's own error), and the tangent runs' standard error. Exact when the
  dynamics lie in the library (Lorenz-63 and Rössler are quadratic); robust to observation
  noise, because the weak form is.
- ``"neighbours"``: model-free nearest-neighbour divergence on the state vectors (Rosenstein,
  Collins & De Luca, Physica D 65, 117 (1993)): each reference point's nearest neighbour
  outside a temporal exclusion window (one mean period), the median over pairs of the log
  separation as a function of time, a line fitted to its initial rise. One change for flows:
  the separation is measured *transverse to the flow*, from the reference point to the
  neighbour's orbit (the neighbour's phase re-aligned at every step by a Newton step on a
  cubic interpolation of its samples). Without it the along-flow part of the separation, which
  never grows (the zero exponent), hides the growth for tens of time units on a slow system;
  the plain method gives 0.058 instead of 0.071 on the acceptance Rössler data. Uncertainty:
  a block bootstrap over reference points plus the spread over three fit windows. This is the
  fallback when no model passes its check, and always reported as the cross-check.

``nolds.lyap_r`` (the maintained implementation of Rosenstein's method) was considered and not
used: it takes one-dimensional series only (a delay embedding of one component) and builds the
full ``T x T`` distance matrix, 13 GB for the 40 000 points of the acceptance data.

Measured (seed 0, defaults; data from DOP853 at 1e-10, noise in units of each component's
std). From the equations: Lorenz-63 0.902 ± 0.011, -0.001, -14.568 (sum -13.6666, exact
-13.6667; Kaplan–Yorke 2.062); Rössler 0.0695 ± 0.0013; Lorenz-96 1.668 ± 0.026; KS (L = 22)
0.0481 ± 0.0012; linear systems to 4e-8. From data, Rössler (dt = 0.1, 40 000 points):
model 0.0709 ± 0.0023, neighbours 0.068 ± 0.0045 (cited 0.0714); with 1 / 3 / 5 % noise the
model gives 0.066 / 0.074 / 0.072 and the neighbours 0.043 / 0.033 / 0.034. Lorenz-63
(dt = 0.01 and 0.04, 40 000 and 20 000 points): model within 2 % of 0.906 at 0-5 % noise,
neighbours +2 % / -4 % clean and 22-36 % low with noise. The model's uncertainty counts the
spread between segments, not a bias that noise gives every segment alike (Rössler at 1 %:
0.066 ± 0.002); the neighbour method is biased low by any noise that fills the small
separations it needs, which is why the model is preferred when it passes its check, and a
disagreement of more than 35 % is reported as a warning.
"""

from __future__ import annotations

from dynaforge.lyapunov.data import (
    DATA_METHODS,
    MIN_POINTS,
    DataLyapunovEstimate,
    estimate_from_data,
)
from dynaforge.lyapunov.equations import (
    LyapunovSpectrum,
    default_settings,
    kaplan_yorke_dimension,
    leading_exponent,
    lyapunov_spectrum,
)

__all__ = [
    "DATA_METHODS",
    "MIN_POINTS",
    "DataLyapunovEstimate",
    "LyapunovSpectrum",
    "default_settings",
    "estimate_from_data",
    "kaplan_yorke_dimension",
    "leading_exponent",
    "lyapunov_spectrum",
]
