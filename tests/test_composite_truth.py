"""Ground truth for the composite oracles: ``oracle.composite.linear_cross_entropy`` and
``oracle.adaptive.adaptive_log_softmax_with_loss`` against the RAW spec of cross_entropy evaluated in
mpmath, composed with their linear maps in exact arithmetic.

Nothing here uses the oracle's NumPy code: the logits are computed in mpmath at a working precision
that resolves them (products of floats, summed), each sample's loss and its gradient w.r.t. the
logits are the raw closed forms of ``cross_entropy[class_index]`` / ``cross_entropy[probabilities]``
(``tests._mp``, the spec's expression as SymPy derives it), and the chain rule through the linear
maps is done in mpmath. AdaptiveLogSoftmaxWithLoss is its definition (torch's module): the head's
log-softmax at the target's head entry (the class, or its cluster), plus, in a cluster, the tail's
log-softmax at the class within it; a log-softmax at a class is minus the spec's cross entropy there.
Each result is computed at two precisions that must agree to 1e-30 before it is rounded to float64;
the oracle must then be within 2 ulp where well conditioned, else within the error model's bound
(``tests._groundtruth.Record``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.adaptive import adaptive_log_softmax_with_loss, parameter_shapes
from oracle.composite import linear_cross_entropy
from tests import _mp
from tests._groundtruth import Record

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_VALUES = st.one_of(
    st.floats(-4, 4, allow_subnormal=False),
    st.sampled_from([0.0, 1.0, -1.0, 1e-30, -1e-300, 12.0, 0.5]),
)

MP = list[Any]  # mpmath numbers


def _ce(
    c: int, t: int | None, probs: bool
) -> tuple[Callable[..., Any], list[Callable[..., Any]], tuple[str, ...]]:
    """The raw cross entropy of one sample over ``c`` classes (class index ``t``, or probability
    targets): its value, its gradient w.r.t. each logit, and the names of their arguments."""
    key = "cross_entropy[probabilities]" if probs else "cross_entropy[class_index]"
    names, value = _mp._compiled(key, "value", c, t, None)
    grads = []
    for j in range(c):
        gnames, g = _mp._compiled(key, "input", c, t, j)
        grads.append(lambda vals, g=g, gnames=gnames: g(*(vals[n] for n in gnames)))
    return (lambda vals: value(*(vals[n] for n in names))), grads, names


def _ce_at(z: MP, target: Any, weight: Sequence[float] | None, ls: float) -> tuple[Any, MP]:
    """One sample's spec cross entropy at logits ``z`` and its gradient w.r.t. them."""
    c = len(z)
    probs = not isinstance(target, (int, np.integer))
    value, grads, _ = _ce(c, None if probs else int(target), probs)
    vals: dict[str, Any] = {f"input_{k}": z[k] for k in range(c)}
    vals.update({f"weight_{k}": mpmath.mpf(1 if weight is None else weight[k]) for k in range(c)})
    if probs:
        vals.update({f"target_{k}": mpmath.mpf(float(target[k])) for k in range(c)})
    vals["label_smoothing"] = mpmath.mpf(ls)
    return value(vals), [g(vals) for g in grads]


def _settled(fn: Callable[[], list[Any]], dps: int) -> list[Any]:
    """``fn()`` at ``dps`` and ``dps + 60`` digits, which must agree (``tests._mp``'s criterion)."""
    with mpmath.workdps(dps):
        a = [+v for v in fn()]
    with mpmath.workdps(dps + 60):
        b = [+v for v in fn()]
    for u, v in zip(a, b, strict=True):
        if not _mp._agree(u, v, atol=mpmath.mpf(10) ** (30 - dps)):
            raise _mp.Unstable(f"{u} and {v} at {dps} and {dps + 60} digits")
    return b


def _dps(*arrays: Any) -> int:
    """Digits that resolve the logits' spread through exp and the smallest input beside the largest."""
    vals = [abs(float(v)) for a in arrays if a is not None for v in np.ravel(a)]
    nz = [v for v in vals if v > 0]
    big = max(vals, default=0.0)
    spread = 2 * (4 * big * big + big)  # a logit: a sum of up to 4 products of two inputs, and a bias
    digits = (max(abs(math.log10(v)) for v in nz) * 2 if nz else 0) + spread / math.log(10)
    return 60 + math.ceil(digits)


def _matvec(w: np.ndarray[Any, Any], x: MP, b: Sequence[Any] | None = None) -> MP:
    return [
        mpmath.fsum(mpmath.mpf(float(w[r, h])) * x[h] for h in range(w.shape[1]))
        + (mpmath.mpf(float(b[r])) if b is not None else 0)
        for r in range(w.shape[0])
    ]


def _records(form: str, got: Any, exact: MP, scale: Any) -> list[Record]:
    g, s = np.ravel(np.asarray(got, np.float64)), np.ravel(np.asarray(scale, np.float64))
    return [
        Record("composite", form, i, None, {}, float(g[i]), _mp.to_float(e), float(s[i]))
        for i, e in enumerate(exact)
    ]


def _assert_ok(records: list[Record], where: str) -> None:
    bad = [r.describe() for r in records if not r.ok]
    assert not bad, where + "\n" + "\n".join(bad)


# ---------------------------------------------------------------------------------------------
# linear_cross_entropy


def _lce_exact(
    x: np.ndarray[Any, Any], w: np.ndarray[Any, Any], b: Any, t: np.ndarray[Any, Any],
    weight: Any, ignore: int, ls: float, reduction: str,
) -> dict[str, MP]:  # fmt: skip
    n, h = x.shape
    c = w.shape[0]
    probs = t.dtype.kind == "f"
    vals: MP = []
    gz: list[MP] = []
    denom = mpmath.mpf(0)
    for i in range(n):
        xi = [mpmath.mpf(float(v)) for v in x[i]]
        z = _matvec(w, xi, b)
        if not probs and int(t[i]) == ignore:
            vals.append(mpmath.mpf(0))
            gz.append([mpmath.mpf(0)] * c)
            continue
        v, g = _ce_at(z, t[i] if probs else int(t[i]), weight, ls)
        vals.append(v)
        gz.append(g)
        denom += 1 if probs else mpmath.mpf(1 if weight is None else float(weight[int(t[i])]))
    if reduction == "none":
        value, scale_by = vals, [mpmath.mpf(1)] * n
    elif reduction == "sum":
        value, scale_by = [mpmath.fsum(vals)], [mpmath.mpf(1)] * n
    else:
        d = mpmath.mpf(n) if probs else denom
        value, scale_by = [mpmath.fsum(vals) / d], [1 / d] * n
    g_in = [
        [mpmath.fsum(scale_by[i] * gz[i][k] * float(w[k, hh]) for k in range(c)) for hh in range(h)]
        for i in range(n)
    ]
    g_w = [
        [mpmath.fsum(scale_by[i] * gz[i][k] * float(x[i, hh]) for i in range(n)) for hh in range(h)]
        for k in range(c)
    ]
    g_b = [mpmath.fsum(scale_by[i] * gz[i][k] for i in range(n)) for k in range(c)]
    return {
        "value": value,
        "input": [v for row in g_in for v in row],
        "linear_weight": [v for row in g_w for v in row],
        "linear_bias": g_b,
    }


@st.composite
def _lce_cases(draw: st.DrawFn) -> dict[str, Any]:
    n, h, c = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))

    def arr(*shape: int) -> np.ndarray[Any, Any]:
        size = int(np.prod(shape))
        return np.array(draw(st.lists(_VALUES, min_size=size, max_size=size)), np.float64).reshape(shape)

    probs = draw(st.booleans())
    if probs:
        t = np.abs(arr(n, c))
        t = np.where(t > 1, 1.0 / np.maximum(t, 1.0), t)
    else:
        t = np.array(draw(st.lists(st.integers(-100, c - 1).filter(lambda v: v == -100 or v >= 0),
                                   min_size=n, max_size=n)), np.int64)  # fmt: skip
    return {
        "input": arr(n, h),
        "linear_weight": arr(c, h),
        "linear_bias": arr(c) if draw(st.booleans()) else None,
        "target": t,
        "weight": np.abs(arr(c)) if draw(st.booleans()) else None,
        "label_smoothing": draw(st.sampled_from([0.0, 0.25, 1.0])),
        "reduction": draw(st.sampled_from(["none", "sum", "mean"])),
    }


@SETTINGS
@given(_lce_cases())
def test_linear_cross_entropy_against_mpmath(case: dict[str, Any]) -> None:
    x, w, b, t = case["input"], case["linear_weight"], case["linear_bias"], case["target"]
    weight, ls, red = case["weight"], case["label_smoothing"], case["reduction"]
    got = linear_cross_entropy(
        x,
        w,
        t,
        linear_bias=b,
        weight=weight,
        label_smoothing=ls,
        reduction=red,
        underflow=2.0**-1022,
        bounds=True,
    )
    if red == "mean" and t.dtype.kind != "f" and all(int(v) == -100 for v in t):
        assert np.isnan(got.value)  # a mean over no sample: NaN, as torch
        return
    names = ("value", "input", "linear_weight", "linear_bias")
    flat: list[Any] = []
    sizes: list[int] = []

    def fn() -> list[Any]:
        ex = _lce_exact(x, w, b, t, weight, -100, ls, red)
        return [v for k in names for v in ex[k]]

    exact = _settled(fn, _dps(x, w, b))
    flat = list(exact)
    sizes = [np.size(got.value), x.size, w.size, w.shape[0]]
    where = f"linear_cross_entropy at {case}"
    at = 0
    for name, size in zip(names, sizes, strict=True):
        part = flat[at : at + size]
        at += size
        if name == "value":
            _assert_ok(_records(name, got.value, part, got.value_scale), where)
        elif name != "linear_bias" or b is not None:
            _assert_ok(_records(name, got.grads[name], part, got.grad_scale[name]), where)


# ---------------------------------------------------------------------------------------------
# AdaptiveLogSoftmaxWithLoss


def _asm_exact(
    x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], params: dict[str, np.ndarray[Any, Any]],
    n_classes: int, cutoffs: list[int], div_value: float, head_bias: bool,
) -> dict[str, MP]:  # fmt: skip
    """output_n = log p(y_n | x_n) and loss = -mean(output), and the loss's gradients."""
    n, h_in = x.shape
    edges = [*cutoffs, n_classes]
    c0 = cutoffs[0]
    wh = params["head.weight"]
    bh = params.get("head.bias")
    grads = {k: np.full(v.shape, None, dtype=object) for k, v in params.items()}
    for k in grads:
        grads[k][...] = mpmath.mpf(0)
    g_x = [[mpmath.mpf(0)] * h_in for _ in range(n)]
    outputs: MP = []
    for i in range(n):
        xi = [mpmath.mpf(float(v)) for v in x[i]]
        yi = int(y[i])
        cluster = next((k for k in range(len(cutoffs)) if edges[k] <= yi < edges[k + 1]), None)
        head_t = yi if cluster is None else c0 + cluster
        zh = _matvec(wh, xi, bh)
        ce_h, dzh = _ce_at(zh, head_t, None, 0.0)
        out = -ce_h
        # d(loss)/d(output_i) = -1/n; d(output)/dz = -d(ce)/dz
        dh = [g / n for g in dzh]  # d loss / d zh
        for r in range(wh.shape[0]):
            for hh in range(h_in):
                grads["head.weight"][r, hh] += dh[r] * xi[hh]
                g_x[i][hh] += dh[r] * float(wh[r, hh])
            if bh is not None:
                grads["head.bias"][r] += dh[r]
        if cluster is not None:
            w0, w1 = params[f"tail.{cluster}.0.weight"], params[f"tail.{cluster}.1.weight"]
            hid = _matvec(w0, xi)
            zt = _matvec(w1, hid)
            ce_t, dzt = _ce_at(zt, yi - edges[cluster], None, 0.0)
            out -= ce_t
            dt = [g / n for g in dzt]
            d_hid = [
                mpmath.fsum(dt[r] * float(w1[r, q]) for r in range(w1.shape[0])) for q in range(w1.shape[1])
            ]
            for r in range(w1.shape[0]):
                for q in range(w1.shape[1]):
                    grads[f"tail.{cluster}.1.weight"][r, q] += dt[r] * hid[q]
            for q in range(w0.shape[0]):
                for hh in range(h_in):
                    grads[f"tail.{cluster}.0.weight"][q, hh] += d_hid[q] * xi[hh]
                    g_x[i][hh] += d_hid[q] * float(w0[q, hh])
        outputs.append(out)
    out_d = {"output": outputs, "loss": [-mpmath.fsum(outputs) / n], "input": [v for r in g_x for v in r]}
    out_d.update({k: list(g.ravel()) for k, g in grads.items()})
    return out_d


@st.composite
def _asm_cases(draw: st.DrawFn) -> dict[str, Any]:
    h = draw(st.integers(1, 4))
    n_classes = draw(st.integers(2, 6))
    k = draw(st.integers(1, min(2, n_classes - 1)))
    cutoffs = sorted(draw(st.sets(st.integers(1, n_classes - 1), min_size=k, max_size=k)))
    div_value = draw(st.sampled_from([1.0, 2.0, 4.0]))
    head_bias = draw(st.booleans())
    shapes = parameter_shapes(h, n_classes, cutoffs, div_value, head_bias)

    def arr(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
        size = int(np.prod(shape))
        return np.array(draw(st.lists(_VALUES, min_size=size, max_size=size)), np.float64).reshape(shape)

    n = draw(st.integers(1, 3))
    return {
        "input": arr((n, h)),
        "target": np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)), np.int64),
        "params": {name: arr(shape) for name, shape in shapes.items()},
        "options": {
            "n_classes": n_classes,
            "cutoffs": cutoffs,
            "div_value": div_value,
            "head_bias": head_bias,
        },
    }


@SETTINGS
@given(_asm_cases())
def test_adaptive_log_softmax_against_mpmath(case: dict[str, Any]) -> None:
    x, y, params, opts = case["input"], case["target"], case["params"], case["options"]
    got = adaptive_log_softmax_with_loss(x, y, params, **opts, underflow=2.0**-1022)
    names = ["output", "loss", "input", *params]

    def fn() -> list[Any]:
        ex = _asm_exact(x, y, params, **opts)
        return [v for k in names for v in ex[k]]

    exact = _settled(fn, _dps(x, *params.values()))
    where = f"AdaptiveLogSoftmaxWithLoss at {case}"
    at = 0
    for name in names:
        g, s = (
            (got.output, got.output_scale) if name == "output"
            else (got.loss, got.loss_scale) if name == "loss"
            else (got.grads[name], got.grad_scale[name])
        )  # fmt: skip
        size = int(np.size(g))
        _assert_ok(_records(name, g, exact[at : at + size], s), where)
        at += size
