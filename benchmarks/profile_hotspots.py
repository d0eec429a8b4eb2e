"""Where dynaforge's benchmarked code paths spend their time, and what faster variants measure.

Not part of ``run_all.py``: a diagnostic for whoever optimises ``integrate.py``,
``systems/lorenz.py``, ``models/esn.py`` and ``train.py``. Each section times the current code
path against prototype variants written here (nothing in ``src/`` is changed) and checks that
every variant computes the same numbers.

    .venv/bin/python benchmarks/profile_hotspots.py [--quick] [--only rk4,esn,lstm]

RK4 variants: the current ``integrate_rk4``; the same call on cache-sized chunks of the batch;
a component-major ``(dim, N)`` state with in-place arithmetic; and the whole RK4 step fused by
``torch.compile`` (when a C++ compiler is available).

ESN variants: the current ``fit`` / ``forecast``; a driver that computes the input drive with one
``matmul``, calls SciPy's CSR mat-vec kernel directly and writes ``tanh`` into the state array in
place; a Gram matrix from BLAS ``syrk`` and a Cholesky solve.

LSTM: the cost of the AdamW step (for-loop vs ``foreach`` vs ``fused``) on the benchmark's
LSTM, and one training step's profile at the default batch size.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _common import fmt_rate, print_table, setup_threads

DT = 0.04


def _best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ---------------------------------------------------------------------------------------------
# RK4
# ---------------------------------------------------------------------------------------------
def _rk4_chunked(rhs, x0, dt, steps, chunk=8192):
    from dynaforge.integrate import integrate_rk4

    out = torch.empty((x0.shape[0], steps + 1, x0.shape[1]), dtype=x0.dtype)
    for s in range(0, x0.shape[0], chunk):
        out[s : s + chunk] = integrate_rk4(rhs, x0[s : s + chunk], dt=dt, steps=steps)
    return out


def _lorenz_rhs_cm(x, sigma=10.0, rho=28.0, beta=8.0 / 3.0):
    """Lorenz-63 on a component-major state ``(3, N)``: contiguous rows, in-place ops."""
    a, b, c = x[0], x[1], x[2]
    out = torch.empty_like(x)
    torch.sub(b, a, out=out[0]).mul_(sigma)
    torch.mul(a, c, out=out[1])
    out[1].neg_().add_(a, alpha=rho).sub_(b)  # a*(rho - c) - b
    torch.mul(a, b, out=out[2]).sub_(c, alpha=beta)
    return out


def _rk4_component_major(x0, dt, steps):
    x = x0.T.contiguous()
    out = torch.empty((steps + 1, *x.shape), dtype=x.dtype)
    out[0] = x
    tmp = torch.empty_like(x)
    for k in range(1, steps + 1):
        k1 = _lorenz_rhs_cm(x)
        k2 = _lorenz_rhs_cm(torch.add(x, k1, alpha=0.5 * dt, out=tmp))
        k3 = _lorenz_rhs_cm(torch.add(x, k2, alpha=0.5 * dt, out=tmp))
        k4 = _lorenz_rhs_cm(torch.add(x, k3, alpha=dt, out=tmp))
        k1.add_(k2, alpha=2.0).add_(k3, alpha=2.0).add_(k4)
        x = torch.add(x, k1, alpha=dt / 6.0, out=out[k])
    return out.permute(2, 0, 1)


def _compiled_step():
    sigma, rho, beta = 10.0, 28.0, 8.0 / 3.0

    def f(x):
        a, b, c = x[0], x[1], x[2]
        return torch.stack((sigma * (b - a), a * (rho - c) - b, a * b - beta * c))

    def step(x, h: float):
        k1 = f(x)
        k2 = f(x + 0.5 * h * k1)
        k3 = f(x + 0.5 * h * k2)
        k4 = f(x + h * k3)
        return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

    return torch.compile(step, dynamic=False)


def _rk4_compiled(step, x0, dt, steps):
    x = x0.T.contiguous()
    out = torch.empty((steps + 1, *x.shape), dtype=x.dtype)
    out[0] = x
    for k in range(1, steps + 1):
        x = step(x, dt)
        out[k] = x
    return out.permute(2, 0, 1)


def profile_rk4(quick: bool) -> None:
    from dynaforge.integrate import integrate_rk4
    from dynaforge.systems import Lorenz63

    system = Lorenz63()
    pool = system.sample_initial_conditions(1000, torch.Generator().manual_seed(0))
    try:
        step = _compiled_step()
        step(pool.T.contiguous(), DT)  # compile once
    except Exception as exc:  # no compiler, unsupported platform ...
        step = None
        print(f"torch.compile unavailable here: {type(exc).__name__}: {exc}")
    rows = []
    for n in ((1, 1_000, 10_000) if quick else (1, 10_000, 100_000)):
        x0 = pool.repeat(max(1, n // 1000), 1)[:n].contiguous()
        steps = max(5, int((2e5 if quick else 2e6) // n))
        steps = min(steps, 2000)
        ref = integrate_rk4(system.rhs, x0, dt=DT, steps=steps)
        variants = {
            "current integrate_rk4": lambda: integrate_rk4(system.rhs, x0, dt=DT, steps=steps),
            "same, chunks of 8192": lambda: _rk4_chunked(system.rhs, x0, DT, steps),
            "(3, N) layout, in-place": lambda: _rk4_component_major(x0, DT, steps),
        }
        if step is not None:
            variants["torch.compile'd step"] = lambda: _rk4_compiled(step, x0, DT, steps)
        for name, fn in variants.items():
            diff = float((fn()[:, :26] - ref[:, :26]).abs().max())  # first time unit
            seconds = _best_of(fn, 1 if quick else 3)
            rows.append([name, f"{n:,}", steps, fmt_rate(n * steps / seconds), f"{diff:.1e}"])
    print_table("RK4 variants (Lorenz-63, float64, dt = 0.04)",
                ["variant", "batch", "steps", "points/s", "max |diff| vs current, t <= 1"], rows,
                [f"torch {torch.__version__}, {torch.get_num_threads()} threads; differences are "
                 "rounding (a different operation order)."])


# ---------------------------------------------------------------------------------------------
# ESN
# ---------------------------------------------------------------------------------------------
def _fast_drive(esn, u):
    """Open-loop reservoir states ``(T, N)`` for one normalised trajectory ``u`` ``(T, D)``."""
    from scipy.sparse import _sparsetools

    w = esn.w_
    n = w.shape[0]
    states = u @ esn.w_in_.T  # (T, N): the input drive, one matmul
    states += esn.b_
    r = np.zeros(n)
    for t in range(states.shape[0]):
        row = states[t]
        _sparsetools.csr_matvec(n, n, w.indptr, w.indices, w.data, r, row)  # row += W r
        np.tanh(row, out=row)
        r = row
    return states


def _fast_ridge(esn, states, targets):
    """Linear readout ``[r, 1]`` without building the feature matrix: one ``states.T @ states``
    (BLAS) plus column sums for the bias row and column, then the same LU solve.

    (Tried here too: ``dsyrk`` and a Cholesky solve; with this OpenBLAS they were no faster.)
    """
    m, n = states.shape
    gram = np.empty((n + 1, n + 1))
    gram[:n, :n] = states.T @ states
    gram[:n, n] = gram[n, :n] = states.sum(axis=0)
    gram[n, n] = m
    cross = np.empty((n + 1, targets.shape[1]))
    cross[:n] = states.T @ targets
    cross[n] = targets.sum(axis=0)
    gram[np.arange(n), np.arange(n)] += esn.ridge * m
    return np.linalg.solve(gram, cross)


def _fast_forecast(esn, u_context, horizon):
    from scipy.sparse import _sparsetools

    w = esn.w_
    n = w.shape[0]
    w_r, bias = esn.w_out_[:n], esn.w_out_[n]
    r = _fast_drive(esn, u_context)[-1].copy()
    out = np.empty((horizon, esn.w_out_.shape[1]))
    pre = np.empty(n)
    for k in range(horizon):
        pred = r @ w_r + bias
        out[k] = pred
        np.dot(esn.w_in_, pred, out=pre)
        pre += esn.b_
        _sparsetools.csr_matvec(n, n, w.indptr, w.indices, w.data, r, pre)
        np.tanh(pre, out=r)
    return out


def profile_esn(quick: bool) -> None:
    from dynaforge.models import EchoStateNetwork
    from dynaforge.simulate import simulate
    from dynaforge.systems import Lorenz63

    steps = 2_000 if quick else 20_000
    horizon = 300 if quick else 2_000
    train = simulate(Lorenz63(), n_traj=1, steps=steps, dt=DT, seed=1)
    esn = EchoStateNetwork(reservoir_size=1000, ridge=1e-12, washout=100,
                           quadratic_features=False)
    t_fit = _best_of(lambda: esn.fit(train), 1 if quick else 2)
    u = esn.normalizer_.transform(train.x).numpy()[0]
    t_drive_cur = _best_of(lambda: esn._drive(u[None, :-1], np.zeros((1000, 1))), 1)
    t_drive_new = _best_of(lambda: _fast_drive(esn, u[:-1]), 1)
    states_cur, _ = esn._drive(u[None, :-1], np.zeros((1000, 1)))
    states_new = _fast_drive(esn, u[:-1])
    drive_diff = float(np.abs(states_cur[:, :, 0] - states_new).max())
    x, y = states_new[esn.washout :], u[esn.washout + 1 :]
    t_ridge_cur = _best_of(lambda: esn._ridge_solve(x, y), 1)
    t_ridge_new = _best_of(lambda: _fast_ridge(esn, x, y), 1)
    w_cur, w_new = esn._ridge_solve(x, y), _fast_ridge(esn, x, y)
    # Compare what matters: one-step predictions over the training states.
    pred_diff = float(np.abs(x @ w_cur[:-1] + w_cur[-1] - (x @ w_new[:-1] + w_new[-1])).max())
    context = train.x[:, -200:]
    t_fc_cur = _best_of(lambda: esn.forecast(context, horizon), 1 if quick else 3)
    u_ctx = esn.normalizer_.transform(context).numpy()[0]
    t_fc_new = _best_of(lambda: _fast_forecast(esn, u_ctx, horizon), 1 if quick else 3)
    fc_cur = esn.forecast(context, horizon).numpy()[0]
    fc_new = esn.normalizer_.inverse(torch.from_numpy(_fast_forecast(esn, u_ctx, horizon))).numpy()
    fc_diff = float(np.abs(fc_cur[:27] - fc_new[:27]).max())
    rows = [
        ["fit (whole)", f"{t_fit:.3f}", "", ""],
        [f"reservoir drive, {steps:,} steps", f"{t_drive_cur:.3f}", f"{t_drive_new:.3f}",
         f"{drive_diff:.1e} (states)"],
        ["ridge readout (Gram + solve)", f"{t_ridge_cur:.3f}", f"{t_ridge_new:.3f}",
         f"{pred_diff:.1e} (one-step fit)"],
        [f"forecast, B = 1, 200 + {horizon:,} steps", f"{t_fc_cur:.3f}", f"{t_fc_new:.3f}",
         f"{fc_diff:.1e} (first Lyapunov time)"],
    ]
    print_table("ESN (N = 1000, r readout): current vs prototype (seconds)",
                ["stage", "current", "prototype", "max |diff|"], rows,
                ["Prototype: input drive by one matmul, scipy's csr_matvec called directly "
                 "(no sparse-matrix dispatch per step), tanh written in place; Gram without the "
                 "feature-matrix copies."])


# ---------------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------------
def profile_lstm(quick: bool) -> None:
    from torch import nn

    from dynaforge.train import TrainConfig

    batch = TrainConfig().batch_size
    lstm, head = nn.LSTM(3, 32, 1, batch_first=True), nn.Linear(32, 3)
    params = list(lstm.parameters()) + list(head.parameters())
    x = torch.randn(batch, 9, 3)
    y = torch.randn(batch, 3)

    def step_time(opt, n=50 if quick else 200):
        def one():
            out, _ = lstm(x)
            loss = torch.mean((head(out[:, -1]) - y) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(5):
            one()
        t_all = _best_of(lambda: [one() for _ in range(n)], 1) / n
        t_opt = _best_of(lambda: [opt.step() for _ in range(n)], 1) / n
        return t_all, t_opt

    rows = []
    for name, kwargs in (("AdamW (for-loop, current)", {"foreach": False}),
                         ("AdamW foreach=True", {"foreach": True}),
                         ("AdamW fused=True", {"fused": True})):
        try:
            opt = torch.optim.AdamW(params, lr=1e-3, **kwargs)
            t_all, t_opt = step_time(opt)
            rows.append([name, f"{t_all * 1e3:.2f}", f"{t_opt * 1e3:.3f}",
                         fmt_rate(batch / t_all)])
        except (RuntimeError, TypeError) as exc:
            rows.append([name, "n/a", str(exc)[:40], ""])
    print_table(f"LSTM training step at batch {batch} (ms), by optimiser implementation",
                ["optimizer", "step ms", "optimizer.step ms", "samples/s"], rows,
                [f"torch {torch.__version__}, {torch.get_num_threads()} threads."])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="rk4,esn,lstm")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: all cores)")
    args = parser.parse_args()
    setup_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = {"rk4": profile_rk4, "esn": profile_esn, "lstm": profile_lstm}
    for name in args.only.split(","):
        sections[name.strip()](args.quick)


if __name__ == "__main__":
    main()
