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
    """``a[..., idx]``: the component of the last dim (the class axis) at a class index per sample;
    ``idx`` has the batch shape ``(...)``, and so has the result.

    Indices are clipped into range: ignored samples carry ``ignore_index`` (often -100), and their
    value is masked afterwards.
    """
    a = np.asarray(a)
    idx = np.asarray(idx)
    c = a.shape[-1]
    safe = np.clip(idx, 0, c - 1)
    if a.ndim == 1:
        return a[safe]
    shape = np.broadcast_shapes(a.shape[:-1], safe.shape)
    picked = np.take_along_axis(
        np.broadcast_to(a, (*shape, c)), np.broadcast_to(safe, shape)[..., None], axis=-1
    )
    return picked[..., 0]


def onehot(idx: Array, c: int) -> Array:
    """``(..., C)``: 1 at the class index of each sample."""
    return (np.arange(c) == np.asarray(idx)[..., None]).astype(np.float64)


def eye(c: int) -> Array:
    """``δ(a, b)`` of two dummies along one axis: the ``(C, C)`` identity."""
    return np.eye(int(c))


def xlogy(x: Array, y: Array) -> Array:
    """``x·log(y)``, 0 where ``x = 0`` (``spec.xlogy``; torch.xlogy)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(x) == 0, 0.0, x * np.log(y))


def log_add(a: Array, b: Array) -> Array:
    """``log(a + b)`` as ``log(s) + e/s``, ``s + e = a + b`` exactly (Knuth's TwoSum)."""
    a, b = np.asarray(a), np.asarray(b)
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):  # (overflow: the caller's)
        s = a + b
        bb = s - a
        e = (a - (s - bb)) + (b - bb)
        return np.where(np.isfinite(s) & (s != 0), np.log(s) + e / s, np.log(s))


def add(*terms: Array) -> Array:
    """A sum of several terms, compensated (TwoSum on each partial sum, the errors summed apart):
    ``(eps + a) - b`` with a = b = 3.5e13 is eps, not 0 (a p-norm's difference a - b + eps,
    whose sign is the gradient's). Where the sum is not finite, the plain sum."""
    with np.errstate(divide="ignore", invalid="ignore", under="ignore"):  # (overflow: the caller's)
        s = np.asarray(terms[0])
        err: Array | float = 0.0
        for t in terms[1:]:
            t = np.asarray(t)
            new = s + t
            bb = new - s
            err = err + ((s - (new - bb)) + (t - bb))
            s = new
        return np.where(np.isfinite(s), s + err, s)


def exact_sum(a: Array, b: Array) -> Array:
    """Where ``a + b`` is exact in float64 (its TwoSum error is 0): a decision on a difference of
    two inputs, computed exactly, is the exact decision."""
    with np.errstate(all="ignore"):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        s = a + b
        bb = s - a
        return np.isfinite(s) & (((a - (s - bb)) + (b - bb)) == 0)


def softplus(z: Array) -> Array:
    """log(1 + exp(z)) without overflow."""
    return np.logaddexp(0.0, z)


def flip(flips: Mapping[int, Array], n: int, cond: Array) -> Array:
    f = flips.get(n)
    return cond if f is None else np.logical_xor(cond, f)


def sigmoid(z: Array) -> Array:
    """1 / (1 + exp(-z)) without overflow: exp of a non-positive number only."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logsumexp(x: Array) -> Array:
    """``log Σ exp(x)`` over the last dim: ``(...)``."""
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return (m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True)))[..., 0]


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


def neg_log_softmax_all(x: Array) -> Array:
    """``logsumexp(x) - x`` at every component, ``(..., C)``, as
    ``(m - x) + log1p(Σ_{i≠argmax} exp(x_i - m))``.

    Both terms are non-negative, so there is no cancellation; where ``x_a`` is the max the result
    is the log1p of a small sum, exact to a few ulp even when it is 1e-44.
    """
    m, _, s = _others(x)
    return (m - x) + np.log1p(s)


def neg_log_softmax_at(x: Array, idx: Array) -> Array:
    """``neg_log_softmax_all(x)`` at one class index per sample, ``(...)``, without forming the rest."""
    m, _, s = _others(x)
    return (m[..., 0] - take(x, idx)) + np.log1p(s[..., 0])


def softmax_minus_onehot(x: Array, idx: Array) -> Array:
    """``softmax(x) - onehot(idx)``, ``(..., C)``, with the ``idx`` component as
    ``-Σ_{i≠idx} softmax_i``; ``idx`` has the batch shape."""
    m = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - m)
    total = np.sum(e, axis=-1, keepdims=True)
    at = np.arange(x.shape[-1]) == np.asarray(idx)[..., None]
    others = np.sum(np.where(at, 0.0, e), axis=-1, keepdims=True)  # not total - e[idx]: exact when tiny
    return np.where(at, -others / total, e / total)
