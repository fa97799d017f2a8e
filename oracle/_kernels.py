"""Vectorised NumPy kernels that the lowered expressions call (class axis last).

Each is the float64 evaluation of one node of :mod:`oracle._stable`; ``tests/test_stable.py`` checks
them against the node's elementary form at high precision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def take(a: Array, idx: Array) -> Array:
    """``a[..., idx]`` for a class index per sample; ``idx`` has shape ``(..., 1)``.

    Indices are clipped into range: ignored samples carry ``ignore_index`` (often -100), and their
    value is masked afterwards.
    """
    a = np.asarray(a)
    c = a.shape[-1]
    safe = np.clip(idx, 0, c - 1)
    if a.ndim == 1:
        return a[safe]
    shape = np.broadcast_shapes(a.shape[:-1], safe.shape[:-1])
    return np.take_along_axis(np.broadcast_to(a, (*shape, c)), np.broadcast_to(safe, (*shape, 1)), axis=-1)


def onehot(idx: Array, c: int) -> Array:
    return (np.arange(c) == idx).astype(np.float64)


def flip(flips: Mapping[int, Array], n: int, cond: Array) -> Array:
    f = flips.get(n)
    return cond if f is None else np.logical_xor(cond, f)


def sigmoid(z: Array) -> Array:
    """1 / (1 + exp(-z)) without overflow: exp of a non-positive number only."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logsumexp(x: Array) -> Array:
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def softmax(x: Array) -> Array:
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=-1, keepdims=True)


def _others(x: Array) -> tuple[Array, Array, Array]:
    """max m, the index of the (first) max, and Σ_{i ≠ argmax} exp(x_i - m), each ``(..., 1)``."""
    m = np.max(x, axis=-1, keepdims=True)
    am = np.argmax(x, axis=-1)[..., None]
    e = np.exp(x - m)
    np.put_along_axis(e, am, 0.0, axis=-1)
    return m, am, np.sum(e, axis=-1, keepdims=True)


def neg_log_softmax(x: Array, xa: Array) -> Array:
    """``logsumexp(x) - xa`` as ``(m - xa) + log1p(Σ_{i≠argmax} exp(x_i - m))``.

    Both terms are non-negative, so there is no cancellation; where ``xa`` is the max the result is
    the log1p of a small sum, exact to a few ulp even when it is 1e-44.
    """
    m, _, s = _others(x)
    return (m - xa) + np.log1p(s)


def softmax_minus_onehot(x: Array, idx: Array) -> Array:
    """``softmax(x) - onehot(idx)``, with the ``idx`` component as ``-Σ_{i≠idx} softmax_i``."""
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    total = np.sum(e, axis=-1, keepdims=True)
    at = np.arange(x.shape[-1]) == idx
    others = np.sum(np.where(at, 0.0, e), axis=-1, keepdims=True)  # not total - e[idx]: exact when tiny
    return np.where(at, -others / total, e / total)
