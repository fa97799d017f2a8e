"""The NumPy network reference (``oracle/networks.py``) against exact arithmetic.

Small networks built from the same layer records as the seeds' (conv with padding, max-pool,
flatten, linear with per-unit and shared 0-d bias, sigmoid; cross entropy and MSE) are evaluated
by a plain mpmath forward pass written here with loops (nothing vectorised, nothing shared with the
reference but the layer records and the raw spec loss from ``tests._mp``), and each parameter's
exact gradient is a central difference of that forward at 60 digits with step 1e-30. The
reference's float64 gradients must lie within its own float64 error scale of them
(``K · eps(float64) · scale``, the network error model of docs/error-model.md), and its loss too.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest

from conformance.errormodel import K, eps
from oracle import networks as nets
from tests import _mp

CONV = nets.Network(
    "tiny_cnn",
    (
        nets.Conv2d("c1", 2, 3, 3, padding=1), nets.MaxPool2d(2),
        nets.Conv2d("c2", 3, 2, 3, padding=1), nets.MaxPool2d(2),
        nets.Flatten(), nets.Linear("fc", 2, 3),
    ),
    "cross_entropy", (2, 4, 4), 0.1, 1, "test",
)  # fmt: skip
MLP = nets.Network(
    "tiny_mlp",
    (
        nets.Linear("l1", 3, 2, bias="shared"), nets.Sigmoid(),
        nets.Linear("l2", 2, 2), nets.Sigmoid(),
        nets.Linear("l3", 2, 1, bias="shared"), nets.Sigmoid(),
    ),
    "mse_loss", (3,), 0.1, 1, "test",
)  # fmt: skip

DPS = 60


def _mp_forward(net: nets.Network, p: dict[str, Any], x: Any) -> list[Any]:
    """The network's output per sample, in mpmath, by loops over every index."""
    out = []
    for sample in x:
        a: Any = sample
        for layer in net.layers:
            a = _mp_layer(layer, p, a)
        out.append(a)
    return out


def _mp_layer(layer: Any, p: dict[str, Any], a: Any) -> Any:
    if isinstance(layer, nets.Linear):
        w, b = p[f"{layer.name}.weight"], p[f"{layer.name}.bias"]
        return [
            mpmath.fsum(w[o][i] * a[i] for i in range(layer.in_features))
            + (b if layer.bias == "shared" else b[o])
            for o in range(layer.out_features)
        ]
    if isinstance(layer, nets.Sigmoid):
        return [1 / (1 + mpmath.exp(-v)) for v in a]
    if isinstance(layer, nets.Conv2d):
        w, b = p[f"{layer.name}.weight"], p[f"{layer.name}.bias"]
        c, h, wd = len(a), len(a[0]), len(a[0][0])
        k, pad = layer.kernel_size, layer.padding

        def at(ch: int, i: int, j: int) -> Any:
            return a[ch][i][j] if 0 <= i < h and 0 <= j < wd else 0

        return [
            [
                [
                    b[o] + mpmath.fsum(
                        w[o][ch][di][dj] * at(ch, i + di - pad, j + dj - pad)
                        for ch in range(c) for di in range(k) for dj in range(k)
                    )
                    for j in range(wd + 2 * pad - k + 1)
                ]
                for i in range(h + 2 * pad - k + 1)
            ]
            for o in range(layer.out_channels)
        ]  # fmt: skip
    if isinstance(layer, nets.MaxPool2d):
        k = layer.kernel_size
        return [
            [
                [
                    max(ch[i * k + di][j * k + dj] for di in range(k) for dj in range(k))
                    for j in range(len(ch[0]) // k)
                ]
                for i in range(len(ch) // k)
            ]
            for ch in a
        ]
    if isinstance(layer, nets.Flatten):
        return [v for ch in a for row in ch for v in row]
    raise TypeError(layer)


def _mp_loss(net: nets.Network, p: dict[str, Any], x: Any, target: Any) -> Any:
    """The mean loss of the raw spec (``tests._mp``) over the batch."""
    outs = _mp_forward(net, p, x)
    if net.loss == "cross_entropy":
        terms = []
        for z, t in zip(outs, target, strict=True):
            names, f = _mp._compiled("cross_entropy[class_index]", "value", len(z), int(t), None)
            vals = {f"input_{j}": z[j] for j in range(len(z))}
            vals.update({f"weight_{j}": mpmath.mpf(1) for j in range(len(z))}, label_smoothing=mpmath.mpf(0))
            terms.append(f(*(vals[n] for n in names)))
        return mpmath.fsum(terms) / len(terms)
    names, f = _mp._compiled("mse_loss", "value", None, None, None)
    terms = [
        f(*({"input": z[0], "target": mpmath.mpf(float(t[0])), "weight": mpmath.mpf(1)}[n] for n in names))
        for z, t in zip(outs, target, strict=True)
    ]
    return mpmath.fsum(terms) / len(terms)


def _to_mp(a: Any) -> Any:
    a = np.asarray(a, dtype=np.float64)
    return mpmath.mpf(float(a)) if a.ndim == 0 else [_to_mp(v) for v in a]


def _exact(net: nets.Network, params: dict[str, Any], x: Any, target: Any) -> tuple[Any, dict[str, Any]]:
    """The exact loss and, by central differences at 60 digits, each parameter's exact gradient."""
    with mpmath.workdps(DPS):
        xm = _to_mp(x)
        base = {k: _to_mp(v) for k, v in params.items()}
        value = _mp_loss(net, base, xm, target)
        h = mpmath.mpf(10) ** -30
        grads: dict[str, Any] = {}
        for k, v in params.items():
            g = np.zeros(np.shape(v))
            for idx in np.ndindex(*np.shape(v)):
                hi, lo = (
                    {kk: _to_mp(vv) for kk, vv in params.items()},
                    {kk: _to_mp(vv) for kk, vv in params.items()},
                )
                if idx:
                    _bump(hi[k], idx, h)
                    _bump(lo[k], idx, -h)
                else:
                    hi[k], lo[k] = hi[k] + h, lo[k] - h
                diff = (_mp_loss(net, hi, xm, target) - _mp_loss(net, lo, xm, target)) / (2 * h)
                g[idx] = _mp.to_float(diff)
            grads[k] = g
    return value, grads


def _bump(a: Any, idx: tuple[int, ...], h: Any) -> None:
    for i in idx[:-1]:
        a = a[i]
    a[idx[-1]] += h


def _data(net: nets.Network, seed: int) -> tuple[dict[str, Any], Any, Any]:
    rng = np.random.default_rng(seed)
    params = nets.default_init(net, rng)
    for k in params:
        if params[k].ndim == 0:
            params[k] = np.asarray(rng.uniform(-1, 1))
    n = 2 if net.loss == "cross_entropy" else 4
    x = rng.normal(size=(n, *net.input_shape))
    target = rng.integers(0, 3, n) if net.loss == "cross_entropy" else rng.uniform(0, 1, (n, 1))
    return params, x, target


@pytest.mark.parametrize("net", [CONV, MLP], ids=lambda n: n.name)
@pytest.mark.parametrize("seed", [0, 1])
def test_reference_backprop_is_exact_within_its_float64_scale(net: nets.Network, seed: int) -> None:
    params, x, target = _data(net, seed)
    value, scale, grads, scales = nets.loss_and_grads(net, params, x, target, tol=K * eps("float64"))
    exact_value, exact_grads = _exact(net, params, x, target)
    bound = K * eps("float64")
    assert abs(value - _mp.to_float(exact_value)) <= bound * scale
    for k, g in grads.items():
        err = np.abs(g - exact_grads[k])
        assert (err <= bound * scales[k]).all(), (k, g, exact_grads[k], err / (bound * scales[k]))
    # and the gradients are not trivially small: the check has something to compare
    assert max(np.abs(g).max() for g in exact_grads.values()) > 1e-3


def test_trajectory_is_repeated_loss_and_grads_with_sgd() -> None:
    """``train`` is ``loss_and_grads`` then ``p ← p − lr · g``, step after step, exactly."""
    params, x, target = _data(MLP, 0)
    traj = nets.train(MLP, params, x, target, lr=0.5, steps=3)
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    for step in traj.steps:
        value, _, g, _ = nets.loss_and_grads(MLP, p, x, target)
        assert step.loss == value
        p = {k: p[k] - 0.5 * g[k] for k in p}
        for k in p:
            np.testing.assert_array_equal(step.params[k], p[k])


def test_bad_parameters_are_refused_with_their_name() -> None:
    params, x, target = _data(MLP, 0)
    with pytest.raises(ValueError, match=r"params\['l2.weight'\]: expected shape \(2, 2\), got \(2, 3\)"):
        nets.loss_and_grads(MLP, {**params, "l2.weight": np.zeros((2, 3))}, x, target)
    with pytest.raises(ValueError, match=r"missing \['l3.bias'\]"):
        nets.loss_and_grads(MLP, {k: v for k, v in params.items() if k != "l3.bias"}, x, target)


def test_maxpool_routes_to_the_first_maximum_in_row_major_order() -> None:
    """At an exact tie the gradient goes to the first maximum of the window (torch's CPU kernel)."""
    net = nets.Network(
        "pool",
        (nets.MaxPool2d(2), nets.Flatten(), nets.Linear("fc", 1, 1)),
        "mse_loss",
        (1, 2, 2),
        0.1,
        1,
        "t",
    )
    x = np.array([[[[0.0, 3.0], [3.0, 1.0]]]])
    layer = net.layers[0]
    ctx = nets._Ctx(tol=K * eps("float64"))
    y, _, cache = nets._forward(layer, {}, {}, x, np.zeros(x.shape), ctx)
    dx, _, _, _ = nets._backward(layer, {}, {}, cache, np.ones(y.shape), np.zeros(y.shape), ctx)
    np.testing.assert_array_equal(dx, [[[[0.0, 1.0], [0.0, 0.0]]]])
