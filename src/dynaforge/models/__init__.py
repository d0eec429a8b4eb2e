"""The model zoo, looked up by name through :data:`MODELS`."""

from __future__ import annotations

from dynaforge.models.base import (
    AbstractEstimator,
    AbstractForecaster,
    AbstractModel,
    NotFittedError,
)
from dynaforge.models.baselines import Persistence, RK4Baseline
from dynaforge.models.charges import ChargeLeastSquares, FieldLeastSquares
from dynaforge.models.continuation import LastStep, PhysicsContinuation
from dynaforge.models.egnn import EGNN2Forecaster, EGNNForecaster
from dynaforge.models.ensembles import (
    AbstractMemberEnsemble,
    Climatology,
    ESNEnsemble,
    MLPEnsemble,
    PerfectModelEnKF,
    PerfectModelEnsemble,
)
from dynaforge.models.esn import EchoStateNetwork
from dynaforge.models.estimators import MeanEstimator, RecurrentEstimator
from dynaforge.models.fno import FNOForecaster, PeriodicFNOForecaster
from dynaforge.models.gnn import GNNForecaster
from dynaforge.models.learned_field import FieldContinuation
from dynaforge.models.local import LocalNGRC
from dynaforge.models.mlp import MLPForecaster
from dynaforge.models.neural import AbstractNeuralForecaster
from dynaforge.models.ngrc import NGRC
from dynaforge.models.particle_baselines import (
    ChargedPhysics,
    ConstantVelocity,
    LinearDynamics,
)
from dynaforge.models.particle_mlp import SeedMLP
from dynaforge.models.pde_baselines import CoarseFiniteVolume, ExactShift
from dynaforge.models.pinn import PINN
from dynaforge.models.probabilistic import AbstractProbabilisticForecaster, forecast_samples
from dynaforge.models.rnn import GRUForecaster, LSTMForecaster
from dynaforge.models.sindy import SINDy
from dynaforge.models.spectral import LinearSpectral
from dynaforge.models.svae import SequentialVAE
from dynaforge.models.transformer import TransformerForecaster
from dynaforge.models.unet import UNetForecaster

#: name → model class (forecasters and estimators; tell them apart with ``issubclass``); the
#: one place a model name becomes an object.
MODELS: dict[str, type[AbstractModel]] = {
    cls.name: cls
    for cls in (
        EchoStateNetwork,
        NGRC,
        LocalNGRC,
        LSTMForecaster,
        GRUForecaster,
        TransformerForecaster,
        MLPForecaster,
        RK4Baseline,
        Persistence,
        SINDy,
        FNOForecaster,
        PeriodicFNOForecaster,
        UNetForecaster,
        LinearSpectral,
        PINN,
        ExactShift,
        CoarseFiniteVolume,
        GNNForecaster,
        EGNNForecaster,
        EGNN2Forecaster,
        RecurrentEstimator,
        MeanEstimator,
        ChargeLeastSquares,
        FieldLeastSquares,
        PhysicsContinuation,
        LastStep,
        ConstantVelocity,
        LinearDynamics,
        ChargedPhysics,
        SeedMLP,
        FieldContinuation,
        # Probabilistic forecasters (forecast_samples): ensembles and reference distributions.
        ESNEnsemble,
        MLPEnsemble,
        PerfectModelEnsemble,
        PerfectModelEnKF,
        Climatology,
        SequentialVAE,
    )
}


def get_model_class(name: str) -> type[AbstractModel]:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise ValueError(f"unknown model {name!r}; known models: {known}") from None


def create_model(name: str, **params) -> AbstractModel:
    """The model registered as ``name`` with hyperparameters ``params``."""
    cls = get_model_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad hyperparameters for model {name!r}: {exc}") from None


__all__ = [
    "MODELS",
    "NGRC",
    "PINN",
    "AbstractEstimator",
    "AbstractForecaster",
    "AbstractMemberEnsemble",
    "AbstractModel",
    "AbstractNeuralForecaster",
    "AbstractProbabilisticForecaster",
    "ChargeLeastSquares",
    "ChargedPhysics",
    "Climatology",
    "CoarseFiniteVolume",
    "ConstantVelocity",
    "EGNN2Forecaster",
    "EGNNForecaster",
    "ESNEnsemble",
    "EchoStateNetwork",
    "ExactShift",
    "FNOForecaster",
    "FieldContinuation",
    "FieldLeastSquares",
    "GNNForecaster",
    "GRUForecaster",
    "LSTMForecaster",
    "LastStep",
    "LinearDynamics",
    "LinearSpectral",
    "LocalNGRC",
    "MLPEnsemble",
    "MLPForecaster",
    "MeanEstimator",
    "NotFittedError",
    "PerfectModelEnKF",
    "PerfectModelEnsemble",
    "PeriodicFNOForecaster",
    "Persistence",
    "PhysicsContinuation",
    "RK4Baseline",
    "RecurrentEstimator",
    "SINDy",
    "SeedMLP",
    "SequentialVAE",
    "TransformerForecaster",
    "UNetForecaster",
    "create_model",
    "forecast_samples",
    "get_model_class",
]
