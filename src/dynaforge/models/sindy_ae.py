"""The SINDy autoencoder (Champion, Lusch, Kutz & Brunton, PNAS 116, 22445, 2019).

An encoder ``φ`` maps a high-dimensional snapshot ``x`` to a few latent coordinates
``z = φ(x)``, a decoder ``ψ`` maps them back, and a sparse linear combination of candidate
terms, ``dz/dt ≈ Θ(z) Ξ``, is learned together with the networks. With ``Ξ`` stored ``(P, d)``
as in the paper (public functions return ``(d, P)``), the loss on a batch is

    λ_dec  mean‖x − ψ(z)‖²
  + λ_x    mean‖ẋ − J_ψ(z) Θ(z) Ξ‖²
  + λ_z    mean‖J_φ(x) ẋ − Θ(z) Ξ‖²
  + λ_reg  mean|Ξ|

where every mean runs over all elements (batch × components), as in the reference code
(``tf.reduce_mean``), so the paper's weights keep their meaning. Both Jacobian–vector products
come from forward-mode automatic differentiation (:func:`torch.func.jvp`): no hand-written chain
rules. When ``λ_z = 0`` (the paper's Lorenz setting) the encoder JVP does not enter the
objective, so the training step skips it; it is still evaluated on validation data.

Training (:func:`train_sindy_autoencoder`) follows the paper: Adam; every
``threshold_every`` epochs of the main phase the coefficients with ``|Ξ| < threshold`` are
masked out for good (sequential thresholding); then ``refinement_epochs`` with the mask frozen
and no L1 term, with a fresh Adam. The whole loop lives on the device: data moved once,
batches by an on-device permutation, thresholding on the device, losses accumulated there and
read once per logging interval. Several seeds train side by side in one stacked network
(:func:`train_seeds`), each exactly as it would alone. Opt-in departures from the paper's
schedule (learning-rate decay, a rising cut, equal-share coefficient steps, centred initial
latent states, ...) are :class:`SindyAEConfig` options; the "quick" preset uses some of
them, the "paper" preset none.

Differences from the reference code, none of which changes the objective: batches are drawn
by a seeded permutation each epoch (the reference walks the snapshots in order); the L1 term
is the mean of ``|Ξ ⊙ mask|`` (the reference takes ``|Ξ|`` of the raw, partly masked
parameter: the same gradient on every active coefficient); a masked coefficient stays masked
(the reference recomputes ``|Ξ| > threshold`` from the raw parameter, which the L1 term keeps
below the threshold anyway).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dynaforge import tensorfile
from dynaforge.models.base import atomic_directory
from dynaforge.systems.embeddings import EmbeddedLorenzData, embedded_lorenz_data
from dynaforge.train import resolve_device

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
}
DTYPES = {"float32": torch.float32, "float64": torch.float64}
LOSS_NAMES = ("total", "decoder", "sindy_x", "sindy_z", "regularization")
CONFIG_FILE, STATE_FILE = "result.json", "net.pt"


@dataclasses.dataclass(frozen=True)
class SindyAEConfig:
    """Network, loss, training and data hyperparameters (defaults = the paper's Lorenz run).

    Attributes:
        widths: hidden layer widths of the encoder (the decoder mirrors them).
        activation: ``"sigmoid"`` (paper), ``"relu"``, ``"elu"`` or ``"tanh"``.
        latent_dim: number of latent coordinates ``d``.
        poly_order: degree of the polynomial library in the latent space.
        include_constant: include the constant term in the library.
        loss_decoder, loss_sindy_z, loss_sindy_x, loss_regularization: the loss weights
            ``λ_dec, λ_z, λ_x, λ_reg``.
        loss_regularization_final: None (the paper: constant ``λ_reg``) or the L1 weight
            reached at the end of the main phase by a geometric decay from ``λ_reg`` (per
            epoch, like ``lr_final``; refinement has no L1 term): strong early to prune, weak
            late so that the smallest true term (Lorenz's ``-y``) is shrunk less once the
            structure has formed.
        threshold: sequential-thresholding cut on ``|Ξ|`` (on the normalised magnitude
            when ``normalized_sparsity``).
        threshold_every: threshold after main-phase epoch ``i`` (0-based) when
            ``i >= threshold_start`` and ``(i - threshold_start) % threshold_every == 0``.
        threshold_start: the first such epoch; None = ``threshold_every``, which is the
            reference code's rule (``i > 0 and i % threshold_every == 0``).
        epochs: main-phase epochs (with L1 and thresholding).
        refinement_epochs: epochs with the mask frozen and no L1 term.
        batch_size: snapshots per Adam step (an epoch is ``n // batch_size`` steps).
        lr: Adam learning rate (constant, as in the paper, unless ``lr_final`` is set).
        lr_final: None (the paper: constant ``lr``) or the rate reached at the end of the main
            phase by a geometric decay from ``lr`` (per epoch); refinement then runs at it.
        dtype: ``"float32"`` or ``"float64"`` for the networks and the data on the device.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
        n_ics: training trajectories of the data recipe.
        n_val_ics: validation trajectories of the data recipe.
        n_seeds: how many training seeds a run of this preset uses.
        noise: std of the noise added to ``x`` and ``dx`` by the data recipe.
        log_every: epochs between reads of the losses from the device (progress bar, NaN
            check, validation history).
        compile: run the loss through :func:`torch.compile` (falls back to eager, with a
            warning, where compilation fails).
        coefficient_init: how ``Ξ`` starts: ``"constant"`` (1.0 everywhere, the paper's
            Lorenz setting), ``"normal"`` (standard normal from each model's generator, the
            reference code's other option) or ``"zeros"``. A constant +1 fixes the sign every
            coefficient starts from: traced quick-preset runs lost Lorenz's ``-y`` term as its
            coefficient, never negative, was shrunk through zero and cut.
        normalized_sparsity: False (the paper) penalises and thresholds the raw ``|Ξ_ij|``.
            True uses ``|Ξ_ij| rms(θ_i(z)) / rms((Θ(z)Ξ)_j)`` instead: the share of term ``i``
            in the model's ``dz_j/dt`` (dimensionless; the rms over the batch, detached, for
            the L1 term; over up to 8192 training snapshots for thresholding). The raw
            ``|Ξ_ij|`` depends on the arbitrary scale of the learned coordinates: scaling
            ``z_k`` up shrinks the coefficients of the nonlinear terms containing ``z_k`` but
            not the unit damping ``-y`` of Lorenz's ``y'``, so the L1 term favours trading
            ``-y`` for a ``y z`` term; the normalised magnitude is invariant under rescaling
            any latent coordinate (it does not by itself keep ``-y``: the L1 shrinkage is then
            about equal in share units for every term of an equation, and ``-y`` has the
            smallest share). rms rather than std, so that the constant term is measured too.
            In Lorenz's own coordinates the share of ``-y`` is ~0.1, all others >= 0.6, so a
            cut on shares must stay below ~0.1.
        threshold_initial: None (the paper) cuts at ``threshold`` at every event. A value
            makes the cut grow geometrically from it to ``threshold`` over the main phase:
            early, while the coordinates still form, a coefficient on its way through zero
            is less likely to be caught by a cut.
        precondition_coefficients: False (the paper) lets Adam step every coefficient by
            about ``lr`` in raw units. True rescales each step of ``Ξ_ij`` (after Adam, once
            per epoch from up to 8192 training snapshots) so that every term's share of its
            equation moves at the same pace (:meth:`SindyAutoencoderNet.step_scales`).
        center_latent_init: False (the paper) keeps the encoder's zero output bias, so the
            latent states start far from 0 (its sigmoid features average ~0.5). True sets that
            bias so that the latent states of up to 8192 training snapshots have zero mean at
            the start (a data-dependent initialisation). Why: with an offset latent ``z``, a
            ``y z`` term acts like ``y`` early on and takes over Lorenz's ``-y``.
    """

    widths: tuple[int, ...] = (64, 32)
    activation: str = "sigmoid"
    latent_dim: int = 3
    poly_order: int = 3
    include_constant: bool = True
    loss_decoder: float = 1.0
    loss_sindy_z: float = 0.0
    loss_sindy_x: float = 1e-4
    loss_regularization: float = 1e-5
    loss_regularization_final: float | None = None
    threshold: float = 0.1
    threshold_initial: float | None = None
    threshold_every: int = 500
    threshold_start: int | None = None
    epochs: int = 5001
    refinement_epochs: int = 1001
    batch_size: int = 1024
    lr: float = 1e-3
    lr_final: float | None = None
    dtype: str = "float32"
    device: str = "auto"
    n_ics: int = 1024
    n_val_ics: int = 20
    n_seeds: int = 10
    noise: float = 1e-6
    log_every: int = 10
    compile: bool = False
    coefficient_init: str = "constant"
    normalized_sparsity: bool = False
    precondition_coefficients: bool = False
    center_latent_init: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; use one of {', '.join(ACTIVATIONS)}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; use float32 or float64")
        for name in (
            "latent_dim",
            "poly_order",
            "threshold_every",
            "batch_size",
            "n_ics",
            "n_val_ics",
            "n_seeds",
            "log_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if min(self.epochs, self.refinement_epochs) < 0 or self.epochs + self.refinement_epochs < 1:
            raise ValueError(
                f"need epochs, refinement_epochs >= 0 with a positive sum, got "
                f"{self.epochs}, {self.refinement_epochs}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.coefficient_init not in ("constant", "normal", "zeros"):
            raise ValueError(
                f"coefficient_init must be constant, normal or zeros, got {self.coefficient_init!r}"
            )
        if self.threshold_initial is not None and not 0 < self.threshold_initial <= self.threshold:
            raise ValueError(
                f"threshold_initial must be in (0, threshold={self.threshold}] or "
                f"None, got {self.threshold_initial}"
            )
        if self.threshold_start is not None and self.threshold_start < 1:
            raise ValueError(f"threshold_start must be >= 1 or None, got {self.threshold_start}")
        if self.lr_final is not None and not self.lr_final > 0:
            raise ValueError(f"lr_final must be positive or None, got {self.lr_final}")
        if self.loss_regularization_final is not None and not (
            self.loss_regularization_final > 0 and self.loss_regularization > 0
        ):
            raise ValueError(
                "loss_regularization_final must be positive or None (and needs "
                f"loss_regularization > 0), got {self.loss_regularization_final}"
            )
        if any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive, got {self.widths}")
        for name in (
            "loss_decoder",
            "loss_sindy_z",
            "loss_sindy_x",
            "loss_regularization",
            "threshold",
            "noise",
        ):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def replace(self, **changes: Any) -> SindyAEConfig:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)


#: The two presets. "paper": Champion et al.'s Lorenz configuration, unchanged (1024 + 20
#: trajectories, 5001 + 1001 epochs of 250 steps, batch 1024, lr 1e-3, threshold 0.1 every 500
#: epochs, weights 1 / 0 / 1e-4 / 1e-5). "quick": the same network, library and loss terms,
#: sized so that its 10 seeds finish in about 16 minutes on 2 CPU cores (two processes, each
#: training a stack of 5 seeds). Chosen from a logged search (see the README): 128 trajectories
#: (32 000 snapshots) at batch 256; lr 3e-3 decaying to 3e-4 over 1301 epochs (the fits get
#: ~5x more precise, which the small -y term of Lorenz's y' needs); a cut growing from 0.1 to
#: 0.4 every 50 epochs with an L1 weight of 3e-5 (ratio 0.3 to λ_x; the paper's 0.1 cut and
#: weight prune too slowly for this budget); equal-share coefficient steps; latent states
#: centred at the start. Without the last two, the seeds that found Lorenz's structure
#: replaced -y by a y z term (z far from 0 makes y z act like y and cost less L1).
PRESETS: dict[str, SindyAEConfig] = {
    "paper": SindyAEConfig(),
    "quick": SindyAEConfig(
        epochs=1301,
        refinement_epochs=51,
        threshold=0.4,
        threshold_initial=0.1,
        threshold_every=50,
        batch_size=256,
        lr=3e-3,
        lr_final=3e-4,
        loss_regularization=3e-5,
        n_ics=128,
        n_val_ics=10,
        n_seeds=10,
        compile=True,
        precondition_coefficients=True,
        center_latent_init=True,
    ),
}


def get_preset(name: str) -> SindyAEConfig:
    """The preset called ``name`` (``"quick"`` or ``"paper"``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}") from None


def make_data(
    config: SindyAEConfig, *, seed: int = 0
) -> tuple[EmbeddedLorenzData, EmbeddedLorenzData]:
    """The preset's training and validation data (independent initial conditions)."""
    train = embedded_lorenz_data(config.n_ics, noise=config.noise, seed=seed)
    val = embedded_lorenz_data(config.n_val_ics, noise=config.noise, seed=seed + 1_000_003)
    return train, val


# -- the network --------------------------------------------------------------------------------
def polynomial_terms(
    dim: int, order: int, include_constant: bool = True, names: Sequence[str] | None = None
) -> tuple[list[tuple[int, ...]], list[str]]:
    """Index tuples and names of the polynomial library (the shared term convention).

    Degree-graded; within a degree ``itertools.combinations_with_replacement`` order; names
    ``"1"``, ``"z1"``, ``"z1^2"``, ``"z1 z2"`` ... (``names`` default ``z1 .. zd``).
    """
    names = [f"z{i + 1}" for i in range(dim)] if names is None else list(names)
    terms: list[tuple[int, ...]] = [()] if include_constant else []
    for degree in range(1, order + 1):
        terms.extend(itertools.combinations_with_replacement(range(dim), degree))
    labels = []
    for combo in terms:
        if not combo:
            labels.append("1")
            continue
        labels.append(
            " ".join(
                names[i] if combo.count(i) == 1 else f"{names[i]}^{combo.count(i)}"
                for i in sorted(set(combo))
            )
        )
    return terms, labels


class PolynomialFeatures(nn.Module):
    """``Θ(z)``: ``(B, d)`` → ``(B, P)`` polynomial terms, built degree by degree.

    Each degree-``k`` term is a degree-``k-1`` term times one coordinate (gather + multiply:
    cheap to differentiate, no ``prod`` and its zero checks).
    """

    def __init__(self, dim: int, order: int, include_constant: bool = True) -> None:
        super().__init__()
        terms, self.names = polynomial_terms(dim, order, include_constant)
        self.include_constant = include_constant
        self.order = order
        position = {t: i for i, t in enumerate(t for t in terms if t)}  # among non-constant
        for degree in range(2, order + 1):
            level = [t for t in terms if len(t) == degree]
            parent = torch.tensor([position[t[:-1]] for t in level])
            last = torch.tensor([t[-1] for t in level])
            self.register_buffer(f"parent{degree}", parent, persistent=False)
            self.register_buffer(f"last{degree}", last, persistent=False)
        self.n_terms = len(terms)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        columns = [z]
        allterms = z
        for degree in range(2, self.order + 1):
            parent = getattr(self, f"parent{degree}")
            last = getattr(self, f"last{degree}")
            level = allterms.index_select(-1, parent) * z.index_select(-1, last)
            columns.append(level)
            allterms = torch.cat((allterms, level), dim=-1)
        if self.include_constant:
            columns.insert(0, torch.ones_like(z[..., :1]))
        return torch.cat(columns, dim=-1)


def jvp_module(
    module: nn.Module, x: torch.Tensor, v: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``module(x)`` and the Jacobian–vector product ``J_module(x) v`` (:func:`torch.func.jvp`).

    Differentiable (reverse mode) in ``x``, ``v`` and the module's parameters. The parameters
    enter as primals with explicit zero tangents: left undefined, PyTorch's forward AD fills
    them with "efficient zero tensors", whose CPU kernels cost several times a real matrix
    product (measured: 5.8 vs 7.1 ms per training step at batch 1024, one thread) and which
    break ``torch.compile``'s backward ("ZeroTensors are immutable").
    """
    params = dict(module.named_parameters())
    zeros = {name: torch.zeros_like(p) for name, p in params.items()}

    def call(inp: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.func.functional_call(module, p, (inp,))

    return torch.func.jvp(call, (x, params), (v, zeros))


class StackedLinear(nn.Module):
    """``S`` independent affine maps at once: ``(S, B, n_in)`` → ``(S, B, n_out)``.

    ``weight`` is ``(S, n_in, n_out)``, ``bias`` ``(S, 1, n_out)``; one batched matrix product
    serves all ``S`` models (several training seeds share every kernel launch and Python
    step: about 1.7x more seed-steps per second on one CPU core at S = 3, measured).
    """

    def __init__(self, n_models: int, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_models, n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_models, 1, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


def _mlp(n_models: int, sizes: Sequence[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(StackedLinear(n_models, n_in, n_out))
        if i < len(sizes) - 2:  # no activation on the output layer (reference code)
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class SindyAutoencoderNet(nn.Module):
    """``S`` SINDy autoencoders side by side: encoders, decoders, ``Ξ`` ``(S, P, d)``, masks.

    Every tensor carries the model index first: snapshots ``(S, B, n)``, latent states
    ``(S, B, d)``. ``S = 1`` is one model; a trained stack is :meth:`split` into single models.
    Weights are Glorot-uniform and biases zero (the reference's ``xavier_initializer``),
    model ``s`` drawn from ``generators[s]`` (so a seed gives the same initial network alone
    or in a stack); ``Ξ`` starts at the constant 1.0 (the paper's
    ``coefficient_initialization = 'constant'``) unless ``config.coefficient_init`` says
    otherwise.

    Args:
        input_dim: snapshot length ``n``.
        config: architecture (widths, activation, latent_dim, poly_order, include_constant).
        generators: one ``torch.Generator`` per model (its length sets ``S``), or one
            generator / None for a single model.
    """

    def __init__(
        self,
        input_dim: int,
        config: SindyAEConfig,
        generators: Sequence[torch.Generator | None] | torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if generators is None or isinstance(generators, torch.Generator):
            generators = [generators]
        self.n_models = len(generators)
        if self.n_models < 1:
            raise ValueError("need at least one model (one generator)")
        d = config.latent_dim
        self.encoder = _mlp(self.n_models, [input_dim, *config.widths, d], config.activation)
        self.decoder = _mlp(
            self.n_models, [d, *reversed(config.widths), input_dim], config.activation
        )
        self.library = PolynomialFeatures(d, config.poly_order, config.include_constant)
        p = self.library.n_terms
        self.coefficients = nn.Parameter(torch.ones(self.n_models, p, d))
        self.normalized_sparsity = config.normalized_sparsity
        self.register_buffer("mask", torch.ones(self.n_models, p, d, dtype=torch.bool))
        layers = [m for m in (*self.encoder, *self.decoder) if isinstance(m, StackedLinear)]
        with torch.no_grad():
            for s, gen in enumerate(generators):
                for layer in layers:
                    w = torch.empty(layer.weight.shape[2], layer.weight.shape[1])  # (out, in)
                    nn.init.xavier_uniform_(w, generator=gen)
                    layer.weight[s] = w.T
                if config.coefficient_init == "normal":
                    self.coefficients[s] = torch.randn(p, d, generator=gen)
                elif config.coefficient_init == "zeros":
                    self.coefficients[s] = 0.0

    @property
    def feature_names(self) -> list[str]:
        return self.library.names

    @property
    def input_dim(self) -> int:
        return self.encoder[0].weight.shape[1]

    def masked_coefficients(self) -> torch.Tensor:
        """``Ξ ⊙ mask``, ``(S, P, d)``."""
        return self.coefficients * self.mask

    @staticmethod
    def term_scales(theta: torch.Tensor, dz_sindy: torch.Tensor) -> torch.Tensor:
        """``rms(θ_i) / rms(dz_j)`` over the batch, ``(S, P, d)``, detached (no gradient).

        ``theta`` ``(S, B, P)`` library terms, ``dz_sindy`` ``(S, B, d)`` the model's latent
        derivatives; ``|Ξ_ij|`` times this is the scale-free share of term ``i`` in
        equation ``j`` (see ``SindyAEConfig.normalized_sparsity``). An equation with no active
        term (rms 0) gets large, finite weights: its coefficients are all 0 anyway.
        """
        rms_theta = theta.detach().square().mean(dim=1).sqrt()  # (S, P)
        rms_dz = dz_sindy.detach().square().mean(dim=1).sqrt().clamp_min(1e-12)  # (S, d)
        return rms_theta[:, :, None] / rms_dz[:, None, :]

    @torch.no_grad()
    def sparsity_scales(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`term_scales` of snapshots ``x`` ``(S, B, n)``: ``(S, P, d)``."""
        theta = self.library(self.encoder(x))
        return self.term_scales(theta, torch.bmm(theta, self.masked_coefficients()))

    @torch.no_grad()
    def center_latents_(self, x: torch.Tensor) -> None:
        """Shift the encoder's output bias so that the latent states of ``x`` ``(S, B, n)``
        have zero mean (a data-dependent initialisation; see
        ``SindyAEConfig.center_latent_init``)."""
        self.encoder[-1].bias -= self.encoder(x).mean(dim=1, keepdim=True)

    @torch.no_grad()
    def step_scales(self, x: torch.Tensor) -> torch.Tensor:
        """Per-coefficient step factors ``(S, P, d)`` that equalise Adam's steps in share units.

        Adam moves every coefficient by about ``lr`` per step in raw units, so the term with
        the largest rms (e.g. ``y z`` when the latent ``z`` sits far from 0) changes the model
        fastest and wins the early race for a role. Multiplying each raw step by
        ``g / s_ij``, with ``s_ij`` = :meth:`sparsity_scales` and ``g`` their geometric mean
        over the model's coefficients, makes every term's share ``|Ξ_ij| s_ij`` move by the
        same ``lr g``. Clamped to [1e-2, 1e2].
        """
        log_scale = self.sparsity_scales(x).clamp(1e-6, 1e6).log()
        factor = (log_scale.mean(dim=(1, 2), keepdim=True) - log_scale).exp()
        return factor.clamp(1e-2, 1e2)

    def sindy_rhs(self, z: torch.Tensor) -> torch.Tensor:
        """The latent models ``Θ(z) Ξ``: ``(S, B, d)`` → ``(S, B, d)``."""
        return torch.bmm(self.library(z), self.masked_coefficients())

    def encode_with_derivative(
        self, x: torch.Tensor, dx: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``z = φ(x)`` and ``dz = J_φ(x) dx`` by forward-mode AD; ``(S, B, n)`` → ``(S, B, d)``."""
        return jvp_module(self.encoder, x, dx)

    def decode_with_derivative(
        self, z: torch.Tensor, dz: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x̂ = ψ(z)``, ``dx̂ = J_ψ(z) dz`` (forward-mode AD); ``(S, B, d)`` → ``(S, B, n)``."""
        return jvp_module(self.decoder, z, dz)

    def losses(
        self, x: torch.Tensor, dx: torch.Tensor, weights: torch.Tensor, *, need_sindy_z: bool = True
    ) -> torch.Tensor:
        """Loss terms of every model on its batch ``x, dx`` ``(S, B, n)``.

        Args:
            weights: ``(4,)`` = ``λ_dec, λ_x, λ_z, λ_reg`` on the device.
            need_sindy_z: compute the encoder JVP and the ``sindy_z`` term; when False the term
                is reported as 0 (use only when ``λ_z = 0``).

        Returns:
            ``(S, 5)``: total, decoder, sindy_x, sindy_z, regularization (unweighted terms,
            each a mean over all elements of that model's batch; regularization is the mean
            normalised magnitude when ``normalized_sparsity``).
        """
        xi = self.masked_coefficients()
        if need_sindy_z:
            z, dz = self.encode_with_derivative(x, dx)
        else:
            z = self.encoder(x)
        theta = self.library(z)
        dz_sindy = torch.bmm(theta, xi)
        x_hat, dx_hat = self.decode_with_derivative(z, dz_sindy)
        decoder = (x_hat - x).square().mean(dim=(1, 2))
        sindy_x = (dx_hat - dx).square().mean(dim=(1, 2))
        sindy_z = (
            (dz_sindy - dz).square().mean(dim=(1, 2)) if need_sindy_z else torch.zeros_like(decoder)
        )
        magnitude = xi.abs()
        if self.normalized_sparsity:  # scale-free shares (SindyAEConfig.normalized_sparsity)
            magnitude = magnitude * self.term_scales(theta, dz_sindy)
        regularization = magnitude.mean(dim=(1, 2))
        terms = torch.stack((decoder, sindy_x, sindy_z, regularization), dim=1)
        return torch.cat(((terms * weights).sum(dim=1, keepdim=True), terms), dim=1)

    @torch.no_grad()
    def threshold_(self, threshold: float, scales: torch.Tensor | None = None) -> None:
        """Sequential thresholding: mask out (for good) every ``|Ξ| < threshold``; on device.

        With ``scales`` ``(S, P, d)`` (:meth:`sparsity_scales`) the cut is on ``|Ξ| scales``.
        """
        magnitude = self.coefficients.abs()
        if scales is not None:
            magnitude = magnitude * scales
        self.mask &= magnitude >= threshold
        self.coefficients.mul_(self.mask)

    def split(self) -> list[SindyAutoencoderNet]:
        """The ``S`` models as separate single-model networks (copies, same device/dtype)."""
        if self.n_models == 1:
            return [self]
        out = []
        for s in range(self.n_models):
            single = copy.deepcopy(self)
            with torch.no_grad():
                for name, tensor in list(single.named_parameters()) + list(single.named_buffers()):
                    if tensor.ndim >= 1 and tensor.shape[0] == self.n_models:
                        module_name, _, attr = name.rpartition(".")
                        owner = single.get_submodule(module_name) if module_name else single
                        value = tensor[s : s + 1].clone()
                        if isinstance(tensor, nn.Parameter):
                            setattr(owner, attr, nn.Parameter(value))
                        else:
                            owner.register_buffer(attr, value)
            single.n_models = 1
            out.append(single)
        return out


# -- training -----------------------------------------------------------------------------------
@dataclasses.dataclass
class SindyAEResult:
    """One trained SINDy autoencoder.

    Attributes:
        net: the trained network (one model, on the CPU, eval mode).
        coefficients: ``(d, P)`` masked coefficients (row = equation of ``dz_i/dt``).
        feature_names: the ``P`` library term names.
        history: per epoch (main then refinement): ``epoch``, ``total``, ``decoder``,
            ``sindy_x``, ``sindy_z`` (NaN when ``λ_z = 0``: not computed in training),
            ``regularization``, ``active_terms``; training-batch means.
        val_history: every ``log_every`` epochs, the same losses on the validation data
            (``total`` without the L1 term; empty without validation data).
        val_losses: final losses on the validation data (``total`` = the refinement
            objective, without L1), or on the training data when no validation was given.
        fit_time_s: wall-clock time of the training run (s); seeds trained together in one
            stack (:func:`train_seeds`) share it, each reports the whole.
        seed: the training seed (initialisation and batch order).
        config: the hyperparameters.
    """

    net: SindyAutoencoderNet
    coefficients: np.ndarray
    feature_names: list[str]
    history: dict[str, list[float]]
    val_history: dict[str, list[float]]
    val_losses: dict[str, float]
    fit_time_s: float
    seed: int
    config: SindyAEConfig

    @property
    def n_terms(self) -> int:
        return int(np.count_nonzero(self.coefficients))

    @property
    def diverged(self) -> bool:
        """True when training left non-finite losses or coefficients."""
        return not (
            math.isfinite(self.val_losses["total"]) and np.isfinite(self.coefficients).all()
        )

    def equations(self, precision: int = 3) -> list[str]:
        """``"z1' = -10.000 z1 + 10.000 z2"`` per latent coordinate."""
        lines = []
        for i, row in enumerate(self.coefficients):
            terms = [(c, n) for c, n in zip(row, self.feature_names) if c != 0]
            text = ""
            for k, (c, n) in enumerate(terms):
                sign = "-" if c < 0 else "+"
                body = f"{abs(c):.{precision}f}" + ("" if n == "1" else f" {n}")
                text += (f"-{body}" if sign == "-" else body) if k == 0 else f" {sign} {body}"
            lines.append(f"z{i + 1}' = {text or '0'}")
        return lines

    def _run(self, fn: Callable[..., torch.Tensor], *arrays: np.ndarray) -> np.ndarray:
        param = next(self.net.parameters())
        tensors = [
            torch.as_tensor(np.asarray(a), dtype=param.dtype, device=param.device) for a in arrays
        ]
        lead = tensors[0].shape[:-1]
        flat = [t.reshape(1, -1, t.shape[-1]) for t in tensors]
        out = fn(*flat)
        return out.detach().reshape(*lead, out.shape[-1]).cpu().double().numpy()

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``(..., n)`` snapshots → ``(..., d)`` latent coordinates."""
        with torch.no_grad():
            return self._run(self.net.encoder, x)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """``(..., d)`` latent coordinates → ``(..., n)`` snapshots."""
        with torch.no_grad():
            return self._run(self.net.decoder, z)

    def latent_derivative(self, x: np.ndarray, dx: np.ndarray) -> np.ndarray:
        """``J_φ(x) dx``: the time derivative of the latent coordinates, ``(..., d)``."""
        return self._run(lambda a, b: self.net.encode_with_derivative(a, b)[1], x, dx)

    def latent_rhs(self, z: np.ndarray) -> np.ndarray:
        """The discovered model ``Θ(z) Ξ`` in float64: ``(..., d)`` → ``(..., d)``."""
        z = torch.as_tensor(np.asarray(z), dtype=torch.float64)
        lib = PolynomialFeatures(
            self.config.latent_dim, self.config.poly_order, self.config.include_constant
        )
        return (lib(z) @ torch.from_numpy(self.coefficients.T)).numpy()

    def latent_simulate(
        self, z0: np.ndarray, t: np.ndarray, *, rtol: float = 1e-10, atol: float = 1e-10
    ) -> np.ndarray:
        """Integrate the discovered model from ``z0`` ``(d,)`` or ``(B, d)`` at times ``t``.

        DOP853 in float64. A trajectory whose solution blows up (solver failure) is NaN from
        the first time it could not reach.

        Returns:
            ``(T, d)`` or ``(B, T, d)``.
        """
        from scipy.integrate import solve_ivp

        z0 = np.asarray(z0, dtype=np.float64)
        t = np.asarray(t, dtype=np.float64)
        single = z0.ndim == 1
        batch = np.atleast_2d(z0)
        out = np.full((batch.shape[0], t.size, batch.shape[1]), np.nan)
        for b, start in enumerate(batch):
            sol = solve_ivp(
                lambda _t, y: self.latent_rhs(y),
                (t[0], t[-1]),
                start,
                method="DOP853",
                t_eval=t,
                rtol=rtol,
                atol=atol,
            )
            out[b, : sol.y.shape[1]] = sol.y.T
        return out[0] if single else out


def is_threshold_epoch(config: SindyAEConfig, epoch: int) -> bool:
    """Whether sequential thresholding follows main-phase epoch ``epoch`` (0-based)."""
    start = config.threshold_every if config.threshold_start is None else config.threshold_start
    return epoch >= start and (epoch - start) % config.threshold_every == 0


def _geometric(config: SindyAEConfig, start: float, final: float | None, epoch: int) -> float:
    """``start`` decayed geometrically to ``final`` over the main phase (None: constant)."""
    if final is None:
        return start
    progress = min(epoch, max(config.epochs - 1, 1)) / max(config.epochs - 1, 1)
    return start * (final / start) ** progress


def threshold_at(config: SindyAEConfig, epoch: int) -> float:
    """The cut of a thresholding event after main-phase epoch ``epoch`` (0-based)."""
    if config.threshold_initial is None:
        return config.threshold
    return _geometric(config, config.threshold_initial, config.threshold, epoch)


def learning_rate_at(config: SindyAEConfig, epoch: int) -> float:
    """Adam's rate in main-phase epoch ``epoch`` (0-based; ``>= epochs`` = refinement)."""
    return _geometric(config, config.lr, config.lr_final, epoch)


def regularization_at(config: SindyAEConfig, epoch: int) -> float:
    """``λ_reg`` in main-phase epoch ``epoch`` (0-based; refinement has no L1 term)."""
    return _geometric(config, config.loss_regularization, config.loss_regularization_final, epoch)


def _loss_function(
    net: SindyAutoencoderNet, compile_: bool, x: torch.Tensor, dx: torch.Tensor, need_z: bool
) -> Callable[..., torch.Tensor]:
    """``net.losses``, compiled when asked and when a probe step (forward + backward on the
    given batch, gradients discarded) compiles and runs; else eager, with a warning."""
    if not compile_:
        return net.losses
    compiled = torch.compile(net.losses)
    weights = torch.ones(4, dtype=x.dtype, device=x.device)
    try:
        compiled(x, dx, weights, need_sindy_z=need_z)[:, 0].sum().backward()
    except Exception as exc:  # noqa: BLE001 - any compiler failure: eager still works
        warnings.warn(
            f"torch.compile failed ({type(exc).__name__}: {exc}); training in eager mode",
            RuntimeWarning,
            stacklevel=3,
        )
        return net.losses
    finally:
        net.zero_grad(set_to_none=True)
    return compiled


def _as_tensors(data: EmbeddedLorenzData, device: torch.device, dtype: torch.dtype):
    x, dx = data.flat()
    return (torch.as_tensor(x, dtype=dtype).to(device), torch.as_tensor(dx, dtype=dtype).to(device))


@torch.no_grad()
def evaluate_losses(
    net: SindyAutoencoderNet,
    x: torch.Tensor,
    dx: torch.Tensor,
    config: SindyAEConfig,
    *,
    chunk: int = 8192,
) -> torch.Tensor:
    """Mean loss terms of every model over all of ``x, dx`` ``(M, n)``.

    Returns:
        ``(S, 5)`` float64 on the device (``total`` = the refinement objective, without L1).
    """
    weights = torch.tensor(
        [config.loss_decoder, config.loss_sindy_x, config.loss_sindy_z, 0.0],
        dtype=x.dtype,
        device=x.device,
    )
    acc = torch.zeros(net.n_models, 5, dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], chunk):
        xb = x[start : start + chunk].expand(net.n_models, -1, -1)
        dxb = dx[start : start + chunk].expand(net.n_models, -1, -1)
        acc += net.losses(xb, dxb, weights).double() * xb.shape[1]
    return acc / x.shape[0]


def _train_stack(
    data: EmbeddedLorenzData,
    config: SindyAEConfig,
    seeds: Sequence[int],
    *,
    val: EmbeddedLorenzData | None,
    progress: bool,
    on_epoch_end: Callable[[int, list[dict[str, float]]], None] | None,
) -> list[SindyAEResult]:
    """Train one model per seed, all in one stacked network (see :func:`train_seeds`)."""
    device = resolve_device(config.device)
    dtype = DTYPES[config.dtype]
    x, dx = _as_tensors(data, device, dtype)
    xv, dxv = _as_tensors(val, device, dtype) if val is not None else (None, None)
    n = x.shape[0]
    batch = min(config.batch_size, n)
    steps_per_epoch = n // batch  # the last partial batch is dropped, as in the reference
    n_models = len(seeds)

    net = SindyAutoencoderNet(x.shape[1], config, [torch.Generator().manual_seed(s) for s in seeds])
    net.to(device=device, dtype=dtype)
    gens = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    need_z = config.loss_sindy_z > 0
    # snapshots for the normalised thresholding: up to 8192, spread over all trajectories
    x_probe = x[:: max(1, n // 8192)][:8192].expand(n_models, -1, -1)
    if config.center_latent_init:
        net.center_latents_(x_probe)
    total_epochs = config.epochs + config.refinement_epochs

    # Everything per epoch is written into device buffers and read back once per interval.
    losses_buf = torch.zeros(total_epochs, n_models, 5, dtype=torch.float64, device=device)
    active_buf = torch.zeros(total_epochs, n_models, dtype=torch.int64, device=device)
    names = (*LOSS_NAMES, "active_terms")
    history = [{k: [] for k in ("epoch", *names)} for _ in seeds]
    val_history = [{k: [] for k in ("epoch", *LOSS_NAMES)} for _ in seeds]
    diverged_at: list[int | None] = [None] * n_models
    bar = None
    if progress:
        from dynaforge.progress import progress_bar

        label = f"seed {seeds[0]}" if n_models == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
        bar = progress_bar(
            total_epochs, desc=f"sindy-ae {label}", unit="epoch", leave=False, min_interval=30.0
        )
    read_upto = 0

    def flush(upto: int) -> None:
        nonlocal read_upto
        if upto <= read_upto:
            return
        chunk = losses_buf[read_upto:upto].cpu().numpy()
        active = active_buf[read_upto:upto].cpu().numpy()
        for s in range(n_models):
            bad = ~np.isfinite(chunk[:, s, 0])
            if bad.any() and diverged_at[s] is None:
                diverged_at[s] = read_upto + int(np.argmax(bad)) + 1
            hist = history[s]
            hist["epoch"].extend(range(read_upto + 1, upto + 1))
            for j, name in enumerate(LOSS_NAMES):
                column = chunk[:, s, j].tolist()
                hist[name].extend(
                    [math.nan] * len(column) if name == "sindy_z" and not need_z else column
                )
            hist["active_terms"].extend(int(a) for a in active[:, s])
        if all(e is not None for e in diverged_at):
            raise FloatingPointError(
                f"SINDy autoencoder: training loss became non-finite for every seed (seed "
                f"{seeds[0]} in epoch {diverged_at[0]}); lower the learning rate (lr={config.lr})"
            )
        if xv is not None and (upto % config.log_every == 0 or upto == total_epochs):
            values = evaluate_losses(net, xv, dxv, config).cpu().numpy()
            for s in range(n_models):
                val_history[s]["epoch"].append(upto)
                for j, name in enumerate(LOSS_NAMES):
                    val_history[s][name].append(float(values[s, j]))
        if bar is not None:
            bar.set_postfix(
                loss=f"{np.nanmin(chunk[-1, :, 0]):.3e}",
                terms=",".join(str(int(a)) for a in active[-1]),
            )
            bar.update(upto - read_upto)
        read_upto = upto

    t0 = time.perf_counter()
    loss_fn = _loss_function(
        net,
        config.compile,
        x[:batch].expand(n_models, -1, -1),
        dx[:batch].expand(n_models, -1, -1),
        need_z,
    )
    epoch = 0
    for phase_epochs, regularize in ((config.epochs, True), (config.refinement_epochs, False)):
        if phase_epochs == 0:
            continue
        weights = torch.tensor(
            [
                config.loss_decoder,
                config.loss_sindy_x,
                config.loss_sindy_z,
                config.loss_regularization if regularize else 0.0,
            ],
            dtype=dtype,
            device=device,
        )
        # A fresh Adam per phase: the reference builds a separate optimiser for refinement.
        # Adam acts elementwise, so the stacked models train exactly as if alone.
        try:  # the fused kernel: one op for all parameters (much cheaper step on a CPU)
            optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, fused=True)
        except (RuntimeError, TypeError):  # pragma: no cover - devices/dtypes without it
            optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
        net.train()
        for i in range(phase_epochs):
            step_scale = net.step_scales(x_probe) if config.precondition_coefficients else None
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(config, i if regularize else config.epochs)
            if regularize and config.loss_regularization_final is not None:
                weights[3] = regularization_at(config, i)
            perm = torch.stack([torch.randperm(n, generator=g, device=device) for g in gens])
            running = torch.zeros(n_models, 5, dtype=dtype, device=device)
            for step in range(steps_per_epoch):
                idx = perm[:, step * batch : (step + 1) * batch]  # (S, B)
                terms = loss_fn(x[idx], dx[idx], weights, need_sindy_z=need_z)
                optimizer.zero_grad(set_to_none=True)
                terms[:, 0].sum().backward()  # the models share no parameter: sum = each alone
                if step_scale is not None:
                    before = net.coefficients.detach().clone()
                optimizer.step()
                if step_scale is not None:
                    with torch.no_grad():
                        net.coefficients.copy_(before + (net.coefficients - before) * step_scale)
                running += terms.detach()
            losses_buf[epoch] = running.double() / steps_per_epoch
            if regularize and is_threshold_epoch(config, i):
                scales = net.sparsity_scales(x_probe) if config.normalized_sparsity else None
                net.threshold_(threshold_at(config, i), scales)
            active_buf[epoch] = net.mask.sum(dim=(1, 2))
            epoch += 1
            if on_epoch_end is not None:
                flush(epoch)
                on_epoch_end(epoch, [{k: h[k][-1] for k in names} for h in history])
            elif epoch % config.log_every == 0:
                flush(epoch)
    flush(epoch)
    fit_time = time.perf_counter() - t0
    if bar is not None:
        bar.close()

    net.eval()
    final = evaluate_losses(net, *((xv, dxv) if xv is not None else (x, dx)), config)
    final = final.cpu().numpy()
    results = []
    for s, single in enumerate(net.split()):
        single.to("cpu").eval()
        results.append(
            SindyAEResult(
                net=single,
                coefficients=single.masked_coefficients()[0].detach().double().numpy().T.copy(),
                feature_names=list(single.feature_names),
                history=history[s],
                val_history=val_history[s],
                val_losses={name: float(v) for name, v in zip(LOSS_NAMES, final[s])},
                fit_time_s=fit_time,
                seed=seeds[s],
                config=config,
            )
        )
    return results


def train_sindy_autoencoder(
    data: EmbeddedLorenzData,
    config: SindyAEConfig,
    *,
    seed: int,
    val: EmbeddedLorenzData | None = None,
    progress: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> SindyAEResult:
    """Train one SINDy autoencoder on ``data`` (main phase, then refinement).

    Args:
        data: training snapshots (``x``, ``dx`` ``(N, T, n)``; every snapshot is one sample).
        config: hyperparameters.
        seed: seeds the initialisation (CPU ``torch.Generator``) and the batch order (a
            generator on the device).
        val: validation data for ``val_history`` and ``val_losses`` (model selection).
        progress: show a tqdm bar (one update per logging interval).
        on_epoch_end: called with ``(epoch, losses)`` after every epoch (1-based over both
            phases; ``losses`` holds the LOSS_NAMES and ``active_terms``); forces one read
            from the device per epoch.

    Raises:
        FloatingPointError: the training loss became non-finite.
    """
    callback = None
    if on_epoch_end is not None:

        def callback(epoch: int, per_model: list[dict[str, float]]) -> None:
            on_epoch_end(epoch, per_model[0])

    return _train_stack(data, config, [seed], val=val, progress=progress, on_epoch_end=callback)[0]


def train_seeds(
    data: EmbeddedLorenzData,
    config: SindyAEConfig,
    seeds: Sequence[int] | int,
    *,
    val: EmbeddedLorenzData | None = None,
    progress: bool = True,
    stack: int | None = None,
    on_epoch_end: Callable[[int, list[dict[str, float]]], None] | None = None,
) -> list[SindyAEResult]:
    """Train one model per seed (``seeds`` an int = ``range(seeds)``).

    The seeds train side by side in one stacked network (``stack`` seeds at a time; None =
    all at once): same initialisation, batch order and optimiser per seed as
    :func:`train_sindy_autoencoder`, but every kernel and Python step serves all of them.
    A seed whose loss turns non-finite is kept (``result.diverged``, non-finite
    ``val_losses``) while the others go on; only when all diverge is it an error.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("need at least one seed")
    if len(set(seed_list)) != len(seed_list):
        raise ValueError(f"seeds must be distinct, got {seed_list}")
    stack = len(seed_list) if stack is None else stack
    if stack < 1:
        raise ValueError(f"stack must be >= 1, got {stack}")
    results: list[SindyAEResult] = []
    for start in range(0, len(seed_list), stack):
        results += _train_stack(
            data,
            config,
            seed_list[start : start + stack],
            val=val,
            progress=progress,
            on_epoch_end=on_epoch_end,
        )
    return results


def select_best(results: Sequence[SindyAEResult], *, require_lorenz: bool = False) -> SindyAEResult:
    """The result with the lowest final validation loss ``val_losses["total"]``.

    The validation total is the refinement objective (decoder + λ_x sindy_x + λ_z sindy_z,
    no L1), the figure the reference code reports for a finished run. It measures fit, not
    structure: with ``require_lorenz=True`` only results
    whose model has 7-term Lorenz structure
    (:func:`dynaforge.discovery.structure.lorenz_structure`) compete, when there are any.
    Diverged results never win unless all diverged.
    """
    if not results:
        raise ValueError("no results to select from")
    pool = list(results)
    if require_lorenz:
        from dynaforge.discovery.structure import lorenz_structure

        lorenz = [
            r
            for r in pool
            if not r.diverged
            and (m := lorenz_structure(r.coefficients, r.feature_names)) is not None
            and m.n_terms == 7
        ]
        pool = lorenz or pool
    return min(pool, key=lambda r: (r.diverged, 0.0 if r.diverged else r.val_losses["total"]))


# -- persistence --------------------------------------------------------------------------------
def save_result(result: SindyAEResult, directory: str | os.PathLike) -> Path:
    """Write ``result.json`` and ``net.pt`` to ``directory`` (atomically: temp folder + rename)."""
    import dynaforge

    with atomic_directory(directory) as tmp:
        meta = {
            "config": dataclasses.asdict(result.config),
            "input_dim": result.net.input_dim,
            "feature_names": result.feature_names,
            "history": result.history,
            "val_history": result.val_history,
            "val_losses": result.val_losses,
            "fit_time_s": result.fit_time_s,
            "seed": result.seed,
            "dynaforge_version": dynaforge.__version__,
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
        tensorfile.save(result.net.state_dict(), tmp / STATE_FILE)
    return Path(directory)


def load_result(directory: str | os.PathLike) -> SindyAEResult:
    """Load what :func:`save_result` wrote (the network on the CPU, eval mode)."""
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"no saved SINDy autoencoder at {directory} (missing {CONFIG_FILE})"
        )
    meta = json.loads(path.read_text())
    config = SindyAEConfig(**meta["config"])
    net = SindyAutoencoderNet(meta["input_dim"], config)
    state = tensorfile.load(directory / STATE_FILE)  # tensors only: cannot run code
    net.to(dtype=state["coefficients"].dtype)
    net.load_state_dict(state)
    net.eval()
    return SindyAEResult(
        net=net,
        coefficients=net.masked_coefficients()[0].detach().double().numpy().T.copy(),
        feature_names=meta["feature_names"],
        history=meta["history"],
        val_history=meta["val_history"],
        val_losses=meta["val_losses"],
        fit_time_s=meta["fit_time_s"],
        seed=meta["seed"],
        config=config,
    )
