"""Vectorised NumPy kernels that the lowered expressions call (class axis last).

Each is the float64 evaluation of one node of :mod:`oracle._stable`; ``tests/test_stable.py`` checks
them against the node's elementary form at high precision.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

_memo = threading.local()


@contextmanager
def shared() -> Iterator[None]:
    """Within it, the softmax kernels called on one array share their passes over it (its max, and
    ``exp(x - max)``; the value's and the gradients' forms of one chunk each call them): what they
    share they never write to (or restore exactly). Per thread; the memo ends with the block."""
    prev = getattr(_memo, "d", None)
    _memo.d = {}
    try:
        yield
    finally:
        _memo.d = prev


def _remembered(what: str, x: Array, compute: Any) -> Any:
    d = getattr(_memo, "d", None)
    if d is None:
        return compute()
    key = (what, id(x))
    hit = d.get(key)
    if hit is not None and hit[0] is x:
        return hit[1]
    got = compute()
    d[key] = (x, got)  # (x kept: its id is not reused while the memo lives)
    return got


def _shifted_exp(x: Array) -> tuple[Array, Array]:
    """``m = max(x)`` over the last dim (kept) and ``exp(x - m)``."""

    def compute() -> tuple[Array, Array]:
        m = np.max(x, axis=-1, keepdims=True)
        return m, np.exp(x - m)

    return _remembered("shifted_exp", x, compute)  # type: ignore[no-any-return]


def _sum_without(e: Array, idx: Array) -> Array:
    """``Σ_{i ≠ idx} e_i`` over the last dim, ``(..., 1)``, summed as ``e`` with its ``idx``
    component set to 0 (then restored: ``e`` may be shared), not as a difference: exact when tiny."""
    at = np.broadcast_to(np.asarray(idx), e.shape[:-1])[..., None]
    old = np.take_along_axis(e, at, axis=-1)
    np.put_along_axis(e, at, 0.0, axis=-1)
    try:
        return np.sum(e, axis=-1, keepdims=True)
    finally:
        np.put_along_axis(e, at, old, axis=-1)


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


#: the most terms :func:`add` sums with one compiled ufunc (NumPy's ufuncs take at most 64 arguments;
#: wider sums, a few in a thousand, take the NumPy loop)
FUSED_TERMS = 16
_FUSED: dict[int, Any] = {}


def _fused_add(k: int) -> Any:
    """The ufunc of :func:`add` for ``k`` float64 terms, compiled by Numba on first use (about 0.1 s):
    the same operations in the same order, per element (bit-identical; ``tests/test_stable.py``), one
    pass over the arrays where the NumPy loop makes 7 per term, each a call costing more than the
    arithmetic on a test's small arrays (a triplet loss's Hessian-vector product: 21.6 → 10 ms)."""
    f = _FUSED.get(k)
    if f is None:
        import numba

        built = numba.vectorize([f"float64({', '.join(['float64'] * k)})"], nopython=True, cache=True)(
            _module_function(f"fused_add_{k}", add_source(k), "add")
        )
        f = _FUSED[k] = getattr(built, "ufunc", built)  # NumPy's ufunc, without Numba's wrapper
    return f


def add_source(k: int, name: str = "add") -> str:
    """The source of :func:`add`'s steps for ``k`` float64 scalars, a function ``name(t0, ...)``
    (compiled by :func:`_fused_add` as a ufunc, and inlined by ``oracle._fused``)."""
    names = [f"t{i}" for i in range(k)]
    lines = [f"def {name}({', '.join(names)}):", "    s = t0", "    err = 0.0"]
    for t in names[1:]:
        lines += [
            f"    new = s + {t}",
            "    bb = new - s",
            f"    err = err + ((s - (new - bb)) + ({t} - bb))",
            "    s = new",
        ]
    lines += ["    if s - s == 0.0:  # finite", "        return s + err", "    return s"]
    return "\n".join(lines) + "\n"


def _module_function(name: str, source: str, attr: str) -> Any:
    """``attr`` of ``source`` written as a module file in the project's cache directory (and
    imported from there), so that Numba keeps what it compiles beside it (``cache=True``: 1.8 s
    of compiling in every process, 15 arities, then about 0.1 s)."""
    import hashlib
    import importlib.util

    from oracle._cachedir import cache_root

    folder = cache_root() / "kernels"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{hashlib.sha256(source.encode()).hexdigest()[:12]}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        tmp.replace(path)  # atomic: concurrent processes (xdist workers) write the same file
    spec = importlib.util.spec_from_file_location(f"_loss_conformance_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (Numba's cache imports it by name)
    spec.loader.exec_module(module)
    return getattr(module, attr)


def _have_numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a dependency; the NumPy loop is the same sum
        return False
    return True


USE_NUMBA = _have_numba()


def add(*terms: Array) -> Array:
    """A sum of several terms, compensated (TwoSum on each partial sum, the errors summed apart):
    ``(eps + a) - b`` with a = b = 3.5e13 is eps, not 0 (a p-norm's difference a - b + eps,
    whose sign is the gradient's). Where the sum is not finite, the plain sum.

    float64 sums of up to :data:`FUSED_TERMS` terms run as one compiled ufunc (:func:`_fused_add`);
    others (extended precision, wider sums) as the NumPy loop below, the same operations.

    Called by lowered code alone, under its floating-point settings (``oracle._lower.Lowered``:
    everything ignored but overflow, which is the caller's): no ``errstate`` of its own, whose
    entry and exit cost as much as the arithmetic on a test's small arrays."""
    if USE_NUMBA and 2 <= len(terms) <= FUSED_TERMS and np.result_type(*terms) == np.float64:
        return _fused_add(len(terms))(*terms)  # type: ignore[no-any-return]
    return add_loop(*terms)


def add_loop(*terms: Array) -> Array:
    """:func:`add` as a loop of NumPy operations, a pass over the arrays for each."""
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
    _, e = _shifted_exp(x)
    return e / np.sum(e, axis=-1, keepdims=True)


def _others(x: Array) -> tuple[Array, Array, Array]:
    """max m, the index of the (first) max, and Σ_{i ≠ argmax} exp(x_i - m), each ``(..., 1)``."""

    def compute() -> tuple[Array, Array, Array]:
        m, e = _shifted_exp(x)
        am = np.argmax(x, axis=-1)[..., None]
        return m, am, _sum_without(e, am[..., 0])

    return _remembered("others", x, compute)  # type: ignore[no-any-return]


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
    _, e = _shifted_exp(x)
    total = np.sum(e, axis=-1, keepdims=True)
    idx = np.asarray(idx)
    valid = (idx >= 0) & (idx < x.shape[-1])  # (an ignored sample's index: no component is its own)
    safe = np.where(valid, idx, 0)
    others = np.where(valid[..., None], _sum_without(e, safe), total)  # not total - e[idx]: exact when tiny
    out = e / total
    at = np.broadcast_to(safe, out.shape[:-1])[..., None]
    here = np.take_along_axis(out, at, axis=-1)
    np.put_along_axis(out, at, np.where(valid[..., None], -others / total, here), axis=-1)
    return out


class OracleRangeError(ArithmeticError):
    """The input lies outside the range in which the oracle's float64 forms are exact enough: it
    refuses rather than answer wrongly (see :data:`POWER_SUM_RANGE`)."""


#: log2 of the largest float64 power of 2 a refused range keeps clear of (1021: a margin of 2 below
#: the overflow threshold's 1024, for the factors the forms multiply it by)
_RANGE_LOG2 = 1021.0


def power_sum_range(p: float) -> tuple[float, float]:
    """Where a sum of powers ``s = Σ_k |b_k|^p`` (a p-norm's) of bases not all 0 may lie: the forms
    raise it to powers down to ``1/p - 2`` (a second derivative's ``s^(1/p - 2)``), which float64
    holds, overflowing neither way, only for ``|log2 s| <= 1021 / (2 - 1/p)``: p = 1, s down to
    2^-1021; p = 2, 2^-680.7 (differences of about 1e-103); large p, 2^-510.5. Outside it
    (``pairwise_distance`` of differences whose squares' sum underflows), the float64 forms give 0
    or NaN where the spec's gradient is ``u / ||u||``."""
    e = _RANGE_LOG2 / (2.0 - 1.0 / max(float(p), 1.0))
    return 2.0**-e, 2.0**e


def power_sum(terms: Array, base: Array, p: Any, axis: int) -> Array:
    """``Σ terms`` along ``axis``, ``terms = |base|^p``: raises :class:`OracleRangeError` where the
    sum leaves :func:`power_sum_range` while its bases are finite and not all 0."""
    s = np.add.reduce(terms, axis=axis)
    lo, hi = power_sum_range(p)
    with np.errstate(invalid="ignore"):
        out = (s < lo) | (s > hi)
    if np.any(out):
        m = np.max(np.abs(np.broadcast_to(base, np.shape(terms))), axis=axis)
        bad = out & (m > 0) & np.isfinite(m)
        if np.any(bad):
            at = tuple(int(i) for i in np.argwhere(bad)[0]) if np.ndim(bad) else ()
            raise OracleRangeError(
                f"a sum of powers Σ|b|^p (a p-norm's, p = {float(p)!r}) is {float(s[at])!r} at {at}, "
                f"with max |b| = {float(m[at])!r}: outside [{lo!r}, {hi!r}], where the oracle's "
                "float64 forms (its powers down to s^(1/p - 2)) are not exact; the oracle refuses "
                "this input rather than answer wrongly"
            )
    return s
