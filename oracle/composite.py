"""linear_cross_entropy: cross_entropy of ``input @ linear_weight.T + linear_bias`` (``spec.composite``).

The logits are formed in float64 (a dot product over H: error at most about H·u·Σ_h|x_h W_kh|),
cross_entropy's oracle takes them from there, and the chain rule maps its logit gradient g back:
``∂/∂input = g W``, ``∂/∂linear_weight = gᵀ input``, ``∂/∂linear_bias = Σ_n g``.

Error scales: cross_entropy's own (for exact logits), plus the logits' rounding carried through:
to the value by ``Σ_k |g_k| S_k`` (``S_k = (H + 1)(Σ_h |x_h W_kh| + |b_k|)``, the dot product's
bound), to g by ``2 max_k S_k (|g| + Σ_k |g_k|)`` (a softmax moves by at most twice its
probabilities times the largest logit change), then through the products that form each gradient
(their own roundings: H, N terms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from oracle.api import OracleInputError

Array = np.ndarray[Any, Any]

#: the logits a block of the batch holds at a time (without bounds): 128 MB of float64, where the
#: whole batch's (an LLM's 4096 × 32000: 1 GB) would be more than three times the inputs' bytes. A
#: block's logits and their gradient are most of the peak; fewer, larger blocks make the matrix
#: products faster (and fewer passes accumulating ∂/∂linear_weight)
BLOCK_ELEMENTS = 2 << 23
#: the rows of ∂/∂linear_weight one product adds at a time (a temporary of this many elements)
ACCUMULATE_ELEMENTS = 1 << 23


@dataclass(frozen=True)
class LinearCEResult:
    value: Array
    value_scale: Array | None
    grads: dict[str, Array]
    grad_scale: dict[str, Array]


def _fail(arg: str, expected: str, got: object) -> OracleInputError:
    from oracle.api import OracleInputError

    return OracleInputError(f"{arg}: expected {expected}, got {got}")


def linear_cross_entropy(
    input: Any,
    linear_weight: Any,
    target: Any,
    *,
    linear_bias: Any = None,
    weight: Any = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: Any = None,
    upstream: Any = None,
    underflow: float = 0.0,
    bounds: bool = False,
) -> LinearCEResult:
    """Value and gradients (w.r.t. input, linear_weight and, if given, linear_bias) in float64;
    ``options`` (torch's chunked path) does not change the function and is not looked at;
    ``underflow`` is the error-scale allowance for one rounded operation's underflow (as for
    :func:`oracle.evaluate`), added once per rounding of each product and sum; the error scales are
    computed only with ``bounds`` (else ``value_scale`` is None and ``grad_scale`` empty)."""
    from oracle.api import _float_array, evaluate

    x = _float_array("input", input)
    w_lin = _float_array("linear_weight", linear_weight)
    if x.ndim not in (1, 2):
        raise _fail("input", "shape (H) or (N, H)", f"shape {x.shape}")
    h = x.shape[-1]
    if w_lin.ndim != 2 or w_lin.shape[1] != h:
        raise _fail(
            "linear_weight", f"shape (C, {h}) (K-dim weights are not spec'd yet)", f"shape {w_lin.shape}"
        )
    c = w_lin.shape[0]
    b = np.zeros(c) if linear_bias is None else _float_array("linear_bias", linear_bias)
    if b.shape != (c,):
        raise _fail("linear_bias", f"shape ({c},)", f"shape {b.shape}")
    t = np.asarray(target)
    probs = t.dtype.kind == "f"
    if probs and ignore_index is not None:
        raise _fail(
            "ignore_index", "None with probability targets (any explicit value raises)", repr(ignore_index)
        )
    kwargs: dict[str, Any] = {"reduction": reduction, "label_smoothing": label_smoothing}
    if weight is not None:
        kwargs["weight"] = weight
    if not probs:
        kwargs["ignore_index"] = -100 if ignore_index is None else ignore_index
    rows = max(1, BLOCK_ELEMENTS // c)
    if not bounds and x.ndim == 2 and x.shape[0] > rows:
        got = _in_blocks(x, w_lin, b, t, rows, upstream, underflow, linear_bias is not None, kwargs)
        if got is not None:
            return got
    with np.errstate(all="ignore"):
        z = x @ w_lin.T + b  # (C) or (N, C)
    r = evaluate(
        "cross_entropy", z, t, wrt=("input",), upstream=upstream, underflow=underflow, bounds=bounds, **kwargs
    )
    del z
    g = np.asarray(r.grads["input"])
    if not bounds:
        with np.errstate(all="ignore"):
            g2, x2 = np.atleast_2d(g), np.atleast_2d(x)
            grads = {"input": (g2 @ w_lin).reshape(x.shape), "linear_weight": g2.T @ x2}
            if linear_bias is not None:
                grads["linear_bias"] = g2.sum(axis=0)
        return LinearCEResult(np.asarray(r.value), None, grads, {})
    sg = np.asarray(r.grad_scale["input"])
    with np.errstate(all="ignore"):
        s_z = (h + 1) * (np.abs(x) @ np.abs(w_lin).T + np.abs(b))
        zmax = np.max(s_z, axis=-1, keepdims=True)
        value_scale = np.asarray(r.value_scale) + np.sum(np.abs(g) * s_z)  # g already carries the reduction
        sg = sg + 2 * zmax * (np.abs(g) + np.sum(np.abs(g), axis=-1, keepdims=True))
        g2, sg2 = np.atleast_2d(g), np.atleast_2d(sg)
        x2 = np.atleast_2d(x)
        n = x2.shape[0]
        grads = {"input": (g2 @ w_lin).reshape(x.shape), "linear_weight": g2.T @ x2}
        scales = {
            "input": (sg2 @ np.abs(w_lin) + c * (np.abs(g2) @ np.abs(w_lin)) + 2 * c * underflow).reshape(
                x.shape
            ),
            "linear_weight": sg2.T @ np.abs(x2) + n * (np.abs(g2).T @ np.abs(x2)) + 2 * n * underflow,
        }
        if linear_bias is not None:
            grads["linear_bias"] = g2.sum(axis=0)
            scales["linear_bias"] = sg2.sum(axis=0) + n * np.abs(g2).sum(axis=0) + n * underflow
    return LinearCEResult(np.asarray(r.value), np.asarray(value_scale, np.float64), grads, scales)


def _in_blocks(
    x: Array,
    w_lin: Array,
    b: Array,
    t: Array,
    rows: int,
    upstream: Any,
    underflow: float,
    with_bias: bool,
    kwargs: dict[str, Any],
) -> LinearCEResult | None:
    """:func:`linear_cross_entropy` without bounds, over blocks of ``rows`` samples: each block's
    logits formed, its cross_entropy evaluated ('sum', or 'none'), and its logit gradient mapped
    back at once. A mean's denominator comes first (``oracle.api.denominator``: from the targets
    and weights alone), and each block's gradient is divided by it as the whole evaluation does
    (times the upstream, then over the denominator); the value is the exactly rounded sum of the
    blocks' sums (``math.fsum``) over it. None (evaluate the whole at once) for a mean over zero
    total weight: undefined, NaN, with its own rules for the gradients."""
    import math

    from oracle.api import denominator, evaluate

    n, c = x.shape[0], w_lin.shape[0]
    reduction = kwargs["reduction"]
    per_sample = reduction == "none"
    denom = denominator("cross_entropy", np.broadcast_to(0.0, (n, c)), t, **kwargs)
    if denom == 0:
        return None
    u = None if upstream is None else np.asarray(upstream, np.float64)
    block_kw = {**kwargs, "reduction": "none" if per_sample else "sum"}
    values: list[Any] = []
    gx = np.empty_like(x)
    gw = np.empty_like(w_lin)
    gb = np.zeros(c)
    step = max(1, ACCUMULATE_ELEMENTS // x.shape[1])
    tmp = np.empty((min(step, c), x.shape[1]))
    for i in range(0, n, rows):
        s = slice(i, min(i + rows, n))
        with np.errstate(all="ignore"):
            z = x[s] @ w_lin.T + b
        up = u[s] if per_sample and u is not None and u.ndim else u
        r = evaluate("cross_entropy", z, t[s], wrt=("input",), upstream=up, underflow=underflow, **block_kw)
        del z
        g = np.asarray(r.grads["input"])
        with np.errstate(all="ignore"):
            if denom is not None:
                g /= denom  # (the block's own array)
            np.matmul(g, w_lin, out=gx[s])
            if i == 0:
                np.matmul(g.T, x[s], out=gw)
            else:  # added a slice of the classes at a time (no temporary of gw's size)
                for k in range(0, c, step):
                    part = tmp[: min(step, c - k)]
                    np.matmul(g[:, k : k + step].T, x[s], out=part)
                    gw[k : k + step] += part
            if with_bias:
                gb += g.sum(axis=0)
        values.append(np.asarray(r.value))
    if per_sample:
        value = np.concatenate(values)
    else:
        total = math.fsum(float(v) for v in values)
        value = np.asarray(total if denom is None else total / denom)
    grads = {"input": gx, "linear_weight": gw}
    if with_bias:
        grads["linear_bias"] = gb
    return LinearCEResult(np.asarray(value, np.float64), None, grads, {})
