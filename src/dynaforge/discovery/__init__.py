"""Equation discovery: feature libraries, derivatives, sparse regression (SINDy's parts).

The SINDy forecaster itself is :class:`dynaforge.models.sindy.SINDy`; the task with known
truth and the noise sweep are in :mod:`dynaforge.tasks.discovery`.
"""

from dynaforge.discovery.differentiation import (
    auto_window,
    estimate_noise,
    finite_difference,
    smoothed_finite_difference,
)
from dynaforge.discovery.libraries import (
    AbstractLibrary,
    ConcatLibrary,
    CustomLibrary,
    FourierLibrary,
    PolynomialLibrary,
    TensoredLibrary,
    parse_library,
)
from dynaforge.discovery.regression import (
    EnsembleResult,
    SelectionResult,
    backward_elimination,
    complexity_weights,
    ensemble,
    select_threshold,
    stlsq,
    term_complexity,
)
from dynaforge.discovery.weak import WeakForm, WeakSystem

__all__ = [
    "AbstractLibrary",
    "ConcatLibrary",
    "CustomLibrary",
    "EnsembleResult",
    "FourierLibrary",
    "PolynomialLibrary",
    "SelectionResult",
    "TensoredLibrary",
    "WeakForm",
    "WeakSystem",
    "auto_window",
    "backward_elimination",
    "complexity_weights",
    "ensemble",
    "estimate_noise",
    "finite_difference",
    "parse_library",
    "select_threshold",
    "smoothed_finite_difference",
    "stlsq",
    "term_complexity",
]
