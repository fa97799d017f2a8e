"""The oracle's Python API: any loss's value and gradients on NumPy arrays, in float64.

Arguments and options use the torch.nn.functional names. Example::

    >>> import numpy as np, oracle
    >>> r = oracle.evaluate("cross_entropy", np.array([100.0, 0.0, 0.0]), np.array(0), reduction="none")
    >>> float(r.value)
    7.440151952041672e-44
    >>> r.grads["input"]
    array([-7.44015195e-44,  3.72007598e-44,  3.72007598e-44])

Gradients are of the *reduced* loss times ``upstream`` (the upstream gradient, shaped like the
value; 1 by default), as autograd computes them.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import re
import sys
import threading
import warnings
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oracle import _kernels as _k
from oracle._compile import Compiled, Form, compiled
from spec import REDUCTION_RULES, REGISTRY, Loss, ReductionRule, Variant

Array = np.ndarray[Any, Any]


class OracleInputError(ValueError):
    """An argument the loss does not accept: names the argument and what was expected."""


OracleRangeError = _k.OracleRangeError  # valid input outside the range where the oracle is exact


@dataclass(frozen=True)
class Evaluation:
    """The value of the reduced loss and the gradient w.r.t. each requested argument.

    ``lo``/``hi`` bound the values accepted when branch conditions lie within ``branch_tol`` of their
    boundary (equal to the value when no tolerance was given); ``scale`` is the error scale of
    ``oracle._errscale`` for each output, computed only when asked for (``bounds=True``, or a
    ``branch_tol``): else ``value_scale`` is None and ``grad_scale`` empty. Keys of
    ``grads``/``grad_lo``/... are argument names.
    """

    loss: str
    variant: str
    value: Array
    grads: Mapping[str, Array]
    value_lo: Array
    value_hi: Array
    value_scale: Array | None
    grad_lo: Mapping[str, Array] = field(default_factory=dict)
    grad_hi: Mapping[str, Array] = field(default_factory=dict)
    grad_scale: Mapping[str, Array] = field(default_factory=dict)
    denominator: float | None = None  # of reduction='mean': Σ of the variant's mean_weight
    #: where a gradient is undefined (NaN: a mean over zero total weight) but its element's own
    #: gradient is exactly 0, the value 0 is also accepted (else NaN: no alternative)
    grad_alt: Mapping[str, Array] = field(default_factory=dict)
    #: the UserWarnings torch's contract emits on this call (set by the conformance harness, which
    #: records the ones :func:`evaluate` emits)
    warnings: tuple[str, ...] = ()


def _fail(arg: str, expected: str, got: object) -> OracleInputError:
    return OracleInputError(f"{arg}: expected {expected}, got {got}")


def _loss(name: str) -> Loss:
    try:
        return REGISTRY[name]
    except KeyError:
        raise OracleInputError(f"loss: expected one of {sorted(REGISTRY)}, got {name!r}") from None


def _bind(loss: Loss, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    if len(args) > len(loss.signature):
        raise TypeError(f"{loss.name} takes at most {len(loss.signature)} positional arguments")
    bound = dict(zip(loss.signature, args, strict=False))
    for k, v in kwargs.items():
        if k in bound:
            raise TypeError(f"{loss.name} got multiple values for argument {k!r}")
        bound[k] = v
    known = set(loss.signature) | {"reduction", *(p.name for v in loss.variants for p in v.params)}
    unknown = set(bound) - known
    if unknown:
        raise TypeError(f"{loss.name} got unexpected argument(s) {sorted(unknown)}; it takes {sorted(known)}")
    for required in loss.tensors:
        if bound.get(required) is None:
            raise TypeError(f"{loss.name} missing required argument {required!r}")
    return bound


def select_variant(loss: Loss, bound: Mapping[str, Any]) -> Variant:
    """PyTorch's dispatch: the variant whose ``selects`` options have the given values (a function
    option by the name of a spec function; None: the variant that selects nothing), else
    cross_entropy's rule, ``input.shape == target.shape`` uses probabilities."""
    if len(loss.variants) == 1:
        return loss.variants[0]
    keys = sorted({k for v in loss.variants for k in v.selects})
    if keys:
        given = {k: bound[k] for k in keys if bound.get(k) is not None}
        for v in loss.variants:
            if dict(v.selects) == given:
                return v
        for k in keys:
            names = [v.selects[k] for v in loss.variants if k in v.selects]
            if k in given and given[k] not in names:
                expected = f"None or the name of a function the spec defines, one of {names}"
                raise _fail(k, expected, repr(given[k]))
        raise _fail(", ".join(keys), "a combination some variant takes", repr(given))  # pragma: no cover
    same = np.shape(bound["input"]) == np.shape(bound["target"])
    return loss.variant("probabilities" if same else "class_index")


def _float_array(name: str, a: Any) -> Array:
    arr = np.asarray(a)
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise _fail(name, "a real floating-point array", f"dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        raise _fail(name, "a floating-point array", f"dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)  # (never written to: the lowered code makes new arrays)


@dataclass
class _Prepared:
    """Arrays laid out for the lowered functions, and how to map results back."""

    env: dict[str, Any]
    out_shape: tuple[int, ...]
    mask: Array | None  # samples that count (not ignored)
    restore: dict[str, Any]  # per differentiable arg: callable mapping an element gradient back
    #: the env entries laid out along the result's dims first (sliced along dim 0 by a chunk)
    batched: frozenset[str] = frozenset()


def _prepare_elementwise(loss: Loss, v: Variant, bound: Mapping[str, Any]) -> _Prepared:
    """The tensors laid out by their shape roles (``spec.Arg.broadcast``) against the first one
    (``input``, or ``input1``): required tensors of the same shape, broadcast with it (with torch's
    warning, or silently), or gaussian_nll_loss's var rule; optional tensors broadcast to the
    result without enlarging it."""
    names = loss.tensors
    first = names[0]
    arrays = {n: _float_array(n, bound[n]) for n in names}
    x = arrays[first]
    shape = x.shape
    effective: dict[str, tuple[int, ...]] = {}  # var's shape as it broadcasts (unsqueezed)
    for n in names[1:]:
        y = arrays[n]
        role = v.arg(n).broadcast
        if y.shape == x.shape:
            continue
        if role == "var":
            y_eff = _var_shape(n, y.shape, x.shape)
            effective[n] = y_eff
            shape = np.broadcast_shapes(shape, y_eff)
            continue
        if role == "same":
            raise _fail(n, f"the same shape as {first} {x.shape}", f"shape {y.shape}")
        try:
            shape = np.broadcast_shapes(shape, y.shape)
        except ValueError:
            raise _fail(n, f"a shape broadcastable with {first} {x.shape}", f"shape {y.shape}") from None
        if role == "warn":
            warnings.warn(
                f"{n} shape {y.shape} differs from {first} shape {x.shape}; broadcast to {shape} "
                "(as torch does, with its own warning)",
                UserWarning,
                stacklevel=4,
            )
    for a in v.args:
        if a.checked and a.name in arrays:
            arr = arrays[a.name]
            bad = ~((arr >= 0) & (arr <= 1))
            if bad.any():
                pos = np.argwhere(bad)[0]
                raise _fail(
                    a.name,
                    "all elements in [0, 1]",
                    f"{arr[tuple(pos)]!r} at index {tuple(int(p) for p in pos)}",
                )
        if a.broadcast == "var" and a.name in arrays and (arrays[a.name] < 0).any():
            raise _fail(a.name, "no negative entries (a variance)", "a negative entry")
    env: dict[str, Any] = {
        n: np.broadcast_to(a.reshape(effective.get(n, a.shape)), shape) for n, a in arrays.items()
    }
    env["_C"] = 1
    restore = {n: _unbroadcaster(a.shape, effective.get(n)) for n, a in arrays.items()}
    for a in (a for a in v.args if a.name not in arrays):
        w = bound.get(a.name)
        if w is None:
            env[a.name] = 1.0
            continue
        w = _float_array(a.name, w)
        if a.broadcast == "var":  # a direction along gaussian_nll_loss's var: var's own shape
            w = w.reshape(_var_shape(a.name, w.shape, x.shape)) if w.shape != x.shape else w
        if a.broadcast == "same" and w.shape != x.shape:
            raise _fail(a.name, f"the same shape as input {x.shape}", f"shape {w.shape}")
        if a.broadcast == "last_dim" and w.ndim > 0 and shape and w.shape[-1] not in (1, shape[-1]):
            raise _fail(
                a.name,
                f"a size along the last dim of 1 or {shape[-1]} (broadcast against target)",
                f"shape {w.shape}",
            )
        try:
            if np.broadcast_shapes(w.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise _fail(
                a.name, f"a shape broadcastable to input {shape} without enlarging it", f"shape {w.shape}"
            ) from None
        env[a.name] = np.broadcast_to(w, shape)
        restore[a.name] = _unbroadcaster(w.shape)
    batched = frozenset(n for n, a in env.items() if isinstance(a, np.ndarray) and a.shape == shape)
    return _Prepared(env, shape, None, restore, batched)


def _var_shape(name: str, var: tuple[int, ...], input: tuple[int, ...]) -> tuple[int, ...]:
    """gaussian_nll_loss's rule for a var of another shape than input: one dim short (the last:
    one variance per sample, unsqueezed), or the same dims with exactly one of size 1 where input's
    differs (torch sums the var sizes at the differing dims and requires 1)."""
    if var == input[:-1]:
        return (*var, 1)
    if len(var) == len(input) and sum(b for a, b in zip(input, var, strict=True) if a != b) == 1:
        return var
    raise _fail(
        name,
        f"input's shape {input}, {input[:-1]} (one per sample), or {input} with one dim of size 1",
        f"shape {var}",
    )


def _unbroadcaster(shape: tuple[int, ...], effective: tuple[int, ...] | None = None) -> Any:
    """Map a gradient of the broadcast shape back to an argument of ``shape`` (summing over the
    dims it was broadcast along; ``effective`` is the shape it broadcast as, if reshaped)."""
    eff = shape if effective is None else effective

    def back(g: Array) -> Array:
        g = np.asarray(g)
        if g.shape == shape == eff and g.base is None:  # already its own array of the argument's shape
            return g
        while g.ndim > len(eff):
            g = g.sum(axis=0)
        for ax, n in enumerate(eff):
            if n == 1 and g.shape[ax] != 1:
                g = g.sum(axis=ax, keepdims=True)
        return np.broadcast_to(g, eff).reshape(shape).copy()

    return back


def _prepare_classes(loss: Loss, v: Variant, bound: Mapping[str, Any]) -> _Prepared:
    """The tensors of a variant that reduces over an axis in each sample (classes, or features),
    laid out by their roles (``Variant.roles``): the axis moved last; a class-index target one per
    sample; an index set (``index_set``) turned into the count of each class in it; a per-sample
    label (an ``element`` argument: cosine_embedding_loss's target) one per sample; class weights
    one per class."""
    first = loss.tensors[0]
    axis = v.sample_axis
    assert axis is not None
    x = _float_array(first, bound[first])
    if x.ndim == 0:
        shapes = "(C), (N, C) or (N, C, d1, ..., dk)" if axis.name == "class" else "(D) or (N, D)"
        raise _fail(first, f"{axis.name} vectors of shape {shapes}", "a 0-d array")
    if v.input_ndims and x.ndim not in v.input_ndims:
        want = " or ".join(f"{n}-d" for n in v.input_ndims)
        raise _fail(first, f"a {want} array ((C) or (N, C): no extra dims)", f"shape {x.shape}")
    cdim = x.ndim - 1 if v.class_dim == "last" or x.ndim == 1 else 1
    c = x.shape[cdim]
    xs = np.moveaxis(x, cdim, -1)
    sample_shape = xs.shape[:-1]
    env: dict[str, Any] = {first: xs, "_C": c}
    mask = None

    def back(g: Array) -> Array:
        return np.moveaxis(g, -1, cdim)

    def per_class(g: Array) -> Array:  # a weight (C,): summed over the samples
        g = np.asarray(g)
        return np.broadcast_to(g, (*sample_shape, c)).reshape(-1, c).sum(axis=0)

    def per_sample(g: Array) -> Array:
        return np.broadcast_to(np.asarray(g), sample_shape).copy()

    restore: dict[str, Any] = {first: back}
    for a in v.args:
        if a.name == first:
            continue
        role = v.roles[a.name].role
        t = bound.get(a.name)
        if a.optional:
            restore[a.name] = per_class
            if t is None:
                env[a.name] = np.ones(c)
                continue
            w = _float_array(a.name, t)
            if w.shape != (c,):
                raise _fail(a.name, f"one value per class, shape ({c},)", f"shape {w.shape}")
            env[a.name] = w
            continue
        t = np.asarray(t)
        if role == "index":
            if t.dtype.kind not in "iu":
                probs = any(u.roles.get(a.name) and u.roles[a.name].role == "axis" for u in loss.variants)
                also = f" (or probabilities of {first}'s shape)" if probs else ""
                raise _fail(a.name, f"integer class indices{also}", f"dtype {t.dtype}")
            want = sample_shape
            if x.ndim == 1 and t.shape == (1,):
                t = t.reshape(())
            if t.shape != want:
                raise _fail(a.name, f"shape {want} for {first} of shape {x.shape}", f"shape {t.shape}")
            ii = int(bound.get(v.ignore, -100)) if v.ignore else None
            mask = None if ii is None else t != ii
            out = ((t < 0) | (t >= c)) if mask is None else (mask & ((t < 0) | (t >= c)))
            if out.any():
                pos = tuple(int(q) for q in np.argwhere(out)[0])
                also = f" or {v.ignore}={ii}" if ii is not None else ""
                raise _fail(a.name, f"class indices in [0, {c}){also}", f"{int(t[pos])} at index {pos}")
            env[a.name] = t.astype(np.int64)  # one class index per sample: the batch shape
            if v.ignore:
                env[v.ignore] = ii
        elif role == "index_set":
            if t.dtype.kind not in "iu":
                raise _fail(a.name, "integer class indices, each set ended by -1", f"dtype {t.dtype}")
            if t.shape != x.shape:
                raise _fail(
                    a.name, f"{first}'s shape {x.shape} (class indices, ended by -1)", f"shape {t.shape}"
                )
            out = (t < -1) | (t >= c)
            if out.any():
                pos = tuple(int(q) for q in np.argwhere(out)[0])
                raise _fail(a.name, f"class indices in [0, {c}) or -1", f"{int(t[pos])} at index {pos}")
            env[a.name] = _index_counts(np.moveaxis(t, cdim, -1), c)
        elif role == "axis":
            if t.shape != x.shape:
                what = "probabilities per class" if axis.name == "class" else "a vector per sample"
                raise _fail(a.name, f"{first}'s shape {x.shape} ({what})", f"shape {t.shape}")
            env[a.name] = np.moveaxis(_float_array(a.name, t), cdim, -1)
            restore[a.name] = back
        else:  # one value per sample (cosine_embedding_loss's label)
            want = sample_shape
            if t.shape != want:
                raise _fail(
                    a.name,
                    f"shape {want} (one per sample) for {first} of shape {x.shape}",
                    f"shape {t.shape}",
                )
            env[a.name] = _float_array(a.name, t)
            restore[a.name] = per_sample
    ii = bound.get("ignore_index")
    if ii is not None and int(ii) >= 0 and not any(r.role == "index" for r in v.roles.values()):
        if any(u.ignore for u in loss.variants):
            raise _fail(
                "ignore_index",
                "a negative value (ignore_index is not supported with probability targets)",
                ii,
            )
    batched = frozenset(a.name for a in v.args if not a.optional and a.name in env)
    return _Prepared(env, sample_shape, mask, restore, batched)


def _index_counts(t: Array, c: int) -> Array:
    """How many times each class appears in each index set (the last dim of ``t``) before its first
    -1: the (…, C) counts multilabel_margin_loss's spec is written with."""
    valid = np.cumprod(t != -1, axis=-1).astype(bool)  # the prefix before the first -1
    hits = (t[..., :, None] == np.arange(c)) & valid[..., :, None]
    return hits.sum(axis=-2).astype(np.float64)


def _check_params(v: Variant, bound: dict[str, Any]) -> None:
    for p in v.params:
        val = bound.get(p.name, p.default)
        if p.kind == "flag":
            if not isinstance(val, (bool, np.bool_)):
                raise _fail(p.name, "a bool (True or False)", repr(val))
            bound[p.name] = bool(val)
            continue
        if p.kind == "choice":
            plain = val.item() if isinstance(val, np.generic) else val
            if isinstance(plain, bool) or plain not in p.choices:
                raise _fail(p.name, f"one of {list(p.choices)}", repr(val))
            bound[p.name] = plain
            continue
        if p.integer:
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
                raise _fail(p.name, "an integer", repr(val))
        else:
            if isinstance(val, bool) or not isinstance(val, (int, float, np.floating, np.integer)):
                raise _fail(p.name, "a real number", repr(val))
            if not np.isfinite(val) or not p.admits(float(val)):
                raise _fail(p.name, f"a value in {p.domain}", repr(val))
        bound[p.name] = val


#: NumPy's extended precision where it has a wider exponent range than float64 (x87 80-bit on
#: x86-64 Linux, binary128 on aarch64 Linux); None where it is float64 itself (Windows, macOS arm64)
_WIDE: Any = np.longdouble if float(np.log10(np.finfo(np.longdouble).max)) > 400 else None


def _widened(env: Mapping[str, Any]) -> dict[str, Any]:
    """``env`` with its floating-point arrays and scalars in :data:`_WIDE`."""
    out: dict[str, Any] = {}
    for k, v in env.items():
        if isinstance(v, np.ndarray) and v.dtype == np.float64:
            out[k] = v.astype(_WIDE)
        elif isinstance(v, (float, np.floating)) and not isinstance(v, bool):
            out[k] = _WIDE(v)
        else:
            out[k] = v
    return out


def _per_element(
    form: Form,
    env: Mapping[str, Any],
    branch_tol: float | None,
    dtype: Any = np.float64,
    bounds: bool = True,
    nears_of: dict[tuple[int, ...], tuple[Array, Array]] | None = None,
) -> tuple[Array, Array, Array, Array | None]:
    """value, lo, hi, scale of one form at every element (class-axis results are (..., 1) or (..., C));
    without ``bounds``, lo and hi are the value and the scale is None (neither is computed).

    Where an intermediate overflows float64 although the result may not (``w·δ(|d| - δ/2)`` with
    w = ½ and the product ~1e308; ``1 - y/(x + eps)`` at eps = 2^-1023 before the upstream ½), the
    form is evaluated again in extended precision and those elements are kept in it: the caller
    scales and reduces them there, and rounds the results to float64 once.

    ``nears_of`` keeps each switch's margin and near-boundary mask for the other forms evaluated at
    the same ``env`` (the value's and every gradient's forms test the same conditions: a triplet
    loss's 42 switches are 17 margins)."""
    overflowed = []  # an intermediate of fn overflowed float64: its finite results may be wrong
    with np.errstate(all="ignore"):
        val = np.asarray(form.fn(env, on_overflow=lambda *_: overflowed.append(True)), dtype=dtype)
    if not bounds:
        if dtype is np.float64 and _WIDE is not None and (overflowed or not np.isfinite(val).all()):
            wide = _per_element(form, _widened(env), None, _WIDE, bounds=False)[0]
            redo = np.full(val.shape, True) if overflowed else ~np.isfinite(val)
            val = np.where(redo, wide, val.astype(_WIDE))
        return val, val, val, None
    with np.errstate(all="ignore"):
        sc = np.abs(np.asarray(form.scale(env), dtype=dtype))
        lo, hi = val, val
        if branch_tol is not None:
            nears: dict[int, Array] = {}
            undefined: set[int] = set()  # the switches whose flip alone makes the form NaN somewhere
            for n, sw in enumerate(form.switches):
                key = (id(sw.margin), id(sw.scale), id(sw.exact))
                hit = None if nears_of is None else nears_of.get(key)
                if hit is None:
                    m = np.asarray(sw.margin(env))
                    ms = np.asarray(sw.scale(env))
                    near = (np.abs(m) <= branch_tol * ms) & (ms > 0)
                    if sw.exact is not None:  # exactly on the boundary, computed exactly: decided
                        near = near & ~((m == 0) & np.asarray(sw.exact(env), bool))
                    if nears_of is not None:
                        nears_of[key] = (m, near)
                else:
                    m, near = hit
                if near.any():
                    nears[n] = near
                    # all near elements flipped, and those above, below and on the boundary apart:
                    # in a sum, flips can cancel (Σ_k H(z_k) with z_0 > 0 and z_1 = 0)
                    sides = [g for g in (near & (m > 0), near & (m < 0), near & (m == 0)) if g.any()]
                    masks = [near] + (sides if len(sides) > 1 else [])
                    for mask in masks:
                        other = np.asarray(form.fn(env, {n: mask}), dtype=dtype)
                        nan = np.isnan(other) & ~np.isnan(val)
                        if mask is near and nan.any():
                            undefined.add(n)
                        other = np.where(nan, val, other)
                        lo, hi = np.fmin(lo, other), np.fmax(hi, other)
            # switches on one margin are one decision taken the other way together (a step's
            # halves, H(m) = (H(m > 0) + H(m >= 0))/2: one alone is the tie's 1/2, not the other
            # side); and every near decision at once
            groups: dict[str, dict[int, Array]] = {}
            for n, near in nears.items():
                groups.setdefault(form.switches[n].margin.source, {})[n] = near
            joint = [g for g in groups.values() if 1 < len(g) < len(nears)]
            # and every near decision whose flip alone is defined: a flip that is undefined alone
            # (a zero norm's branch, NaN) makes the whole combination NaN (triplet_margin_with_
            # distance_loss, cosine, swap: the hinge's flip and a tie of the swap's minimum, beside
            # a norm whose square underflows; --hypothesis-seed=2913129960)
            defined = {k: f for k, f in nears.items() if k not in undefined}
            every = [nears] if len(nears) > 1 else []
            every += [defined] if undefined and len(defined) > 1 else []
            for flips in [*joint, *every]:
                other = np.asarray(form.fn(env, flips), dtype=dtype)
                other = np.where(np.isnan(other) & ~np.isnan(val), val, other)
                lo, hi = np.fmin(lo, other), np.fmax(hi, other)
            # the error scale of the other side too, with the same condition flipped in it
            # wherever it occurs: each of fn's conditions alone (as the value's sides are), and all
            # of them together
            alts = [{k: nears[i] for k, j in enumerate(form.scale_map) if j == i} for i in nears]
            alts = [a for a in alts if a]
            alts += [
                alt
                for g in joint
                if len(alt := {k: g[j] for k, j in enumerate(form.scale_map) if j in g}) > 1
            ]
            if len(alts) > 1:
                alts.append({k: f for a in alts for k, f in a.items()})
            for alt in alts:  # (a side whose scale is not finite is undefined there: kept out,
                # as a NaN value of the other side is)
                other_sc = np.abs(np.asarray(form.scale(env, alt), dtype=dtype))
                sc = np.maximum(sc, np.where(np.isfinite(other_sc), other_sc, 0.0))
    shape = np.broadcast_shapes(val.shape, lo.shape, hi.shape, sc.shape)
    out = tuple(np.broadcast_to(a, shape) for a in (val, lo, hi, sc))
    if (
        dtype is np.float64
        and _WIDE is not None
        and (overflowed or not all(np.isfinite(a).all() for a in out))
    ):
        # (Σ n² = inf for n = 1e300 makes a cosine 0 where it is finite; (1e300)² - (1e300)² = NaN
        # decides a hinge: an overflow anywhere redoes every element)
        wider: tuple[Any, ...] = _per_element(form, _widened(env), branch_tol, _WIDE)
        redo = np.full(shape, True) if overflowed else ~(np.isfinite(out[0]) & np.isfinite(out[3]))
        out = tuple(np.where(redo, w, a.astype(_WIDE)) for a, w in zip(out, wider, strict=True))
    return out  # type: ignore[return-value]


def evaluate(
    loss: str,
    *args: Any,
    reduction: str = "mean",
    wrt: Collection[str] | None = None,
    upstream: Any = None,
    branch_tol: float | None = None,
    underflow: float = 0.0,
    bounds: bool | None = None,
    **kwargs: Any,
) -> Evaluation:
    """Evaluate ``loss`` (a torch.nn.functional name) and its gradients in float64.

    ``wrt`` names the arguments to differentiate (default: every differentiable one of the selected
    variant); ``upstream`` is the gradient flowing into the loss's output (shape of the value).
    ``branch_tol`` (used by the conformance error model) also evaluates the other side of each branch
    whose condition is within ``branch_tol × scale`` of its boundary and reports the range;
    ``underflow`` is the error-scale allowance for one rounded operation's underflow.
    ``bounds`` (default: whether a ``branch_tol`` is given) also computes the error scales and the
    branches' ranges; without them nothing of the input's size is kept but the gradients asked for.
    Raises :class:`OracleInputError` (a ValueError) naming the argument for invalid input.
    """
    spec_loss = _loss(loss)
    if reduction not in REDUCTION_RULES:
        raise _fail("reduction", f"one of {list(REDUCTION_RULES)}", repr(reduction))
    bound = _bind(spec_loss, args, kwargs)
    v = select_variant(spec_loss, bound)
    with_bounds = branch_tol is not None if bounds is None else bounds
    return _evaluate(spec_loss, v, bound, reduction, wrt, upstream, branch_tol, underflow, with_bounds)


def output_shape(loss: str, *args: Any, reduction: str = "mean", **kwargs: Any) -> tuple[int, ...]:
    """The shape of ``evaluate(loss, *args, reduction=reduction, **kwargs).value``, from the
    arguments' shapes alone (nothing is evaluated): () for a reduction, the per-sample shape for
    'none'. Raises :class:`OracleInputError` where ``evaluate`` would, for the same invalid input."""
    spec_loss = _loss(loss)
    rule = REDUCTION_RULES.get(reduction)
    if rule is None:
        raise _fail("reduction", f"one of {list(REDUCTION_RULES)}", repr(reduction))
    bound = _bind(spec_loss, args, kwargs)
    v = select_variant(spec_loss, bound)
    if reduction not in v.reductions:
        raise _fail("reduction", f"one of {list(v.reductions)} for {v.key}", repr(reduction))
    _check_params(v, bound)
    if rule.divides_by is not None:
        return ()
    with warnings.catch_warnings():  # (a broadcast's warning is evaluate's to give)
        warnings.simplefilter("ignore", UserWarning)
        prep = (_prepare_elementwise if v.sample_axis is None else _prepare_classes)(spec_loss, v, bound)
    return prep.out_shape


#: the elements of its widest argument a chunk of the batch spans: temporaries of a few MB, reused
#: from chunk to chunk, instead of full-size ones page-faulted in (an LLM's 4096 × 32000 logits:
#: 1 GB each, a dozen of them)
CHUNK_ELEMENTS = 1 << 17


def _threads() -> int:
    """Threads evaluating the chunks of one call (NumPy's loops release the GIL): the CPUs this
    process may use, or ``$LOSS_ORACLE_THREADS``."""
    env = os.environ.get("LOSS_ORACLE_THREADS")
    if env:
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _keep_freed_memory() -> None:
    """glibc's malloc hands a freed block of more than 128 KB (then more than 2× the largest freed
    one) back to the kernel, so each chunk's temporaries are page-faulted in anew: half the time of
    a large evaluation (measured: cross_entropy on 512 × 32000, 1.10 s → 0.51 s on one thread).
    Raised once, on the first chunked call: blocks up to 32 MB come from the heap, and up to 256 MB
    of freed heap is kept for reuse. Elsewhere than glibc, nothing."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 256 << 20)
    except (OSError, AttributeError):
        pass


def _chunks(prep: _Prepared) -> list[slice | None]:
    """Slices of the result's dim 0 covering it, each spanning about :data:`CHUNK_ELEMENTS` elements
    of the widest batched argument; ``[None]``: the whole at once (a small or unbatched call)."""
    shape = prep.out_shape
    widest = max((int(np.size(prep.env[n])) for n in prep.batched), default=0)
    if not shape or shape[0] < 2 or widest <= 2 * CHUNK_ELEMENTS:
        return [None]
    rows = max(1, CHUNK_ELEMENTS * shape[0] // widest)
    if sys.platform == "linux":
        _keep_freed_memory()
    return [slice(i, min(i + rows, shape[0])) for i in range(0, shape[0], rows)]


def _map(fn: Any, chunks: list[slice | None]) -> list[Any]:
    if len(chunks) < 2 or (n := _threads()) < 2:
        return [fn(s) for s in chunks]
    with ThreadPoolExecutor(min(n, len(chunks))) as pool:
        return list(pool.map(fn, chunks))


def _prepare(spec_loss: Loss, v: Variant, bound: dict[str, Any]) -> _Prepared:
    """The arguments laid out for the lowered forms, the options among them."""
    _check_params(v, bound)
    prep = (_prepare_elementwise if v.sample_axis is None else _prepare_classes)(spec_loss, v, bound)
    for p in v.params:  # NumPy scalars: IEEE semantics (x/0 = inf) in the lowered code
        val = bound[p.name]
        prep.env[p.name] = (
            np.bool_(val) if p.kind == "flag" else np.int64(val) if p.integer else np.float64(val)
        )
    return prep


def denominator(loss: str, *args: Any, reduction: str = "mean", **kwargs: Any) -> float | None:
    """What ``reduction`` divides the sum of the losses by for these arguments (None: it divides by
    nothing), from the targets, the weights and the shapes alone: the input is not read (a view
    ``numpy.broadcast_to(0.0, shape)`` will do). For a caller that evaluates a batch in parts (the
    denominator of the whole first: ``oracle.composite.linear_cross_entropy``)."""
    spec_loss = _loss(loss)
    if reduction not in REDUCTION_RULES:
        raise _fail("reduction", f"one of {list(REDUCTION_RULES)}", repr(reduction))
    bound = _bind(spec_loss, args, kwargs)
    v = select_variant(spec_loss, bound)
    rule = REDUCTION_RULES[reduction]
    if rule.divides_by in (None, "one"):
        return None
    prep = _prepare(spec_loss, v, bound)
    mw = np.asarray(compiled(v.key).mean_weight(prep.env), np.float64)
    if v.sample_axis is not None and mw.ndim:
        mw = mw[..., 0]
    mw = np.broadcast_to(mw, prep.out_shape)
    if prep.mask is not None:
        mw = np.where(prep.mask, mw, 0.0)
    return float(_denominator(rule, mw, np.shape(bound[spec_loss.tensors[0]])))


def _evaluate(
    spec_loss: Loss,
    v: Variant,
    bound: dict[str, Any],
    reduction: str,
    wrt: Collection[str] | None,
    upstream: Any,
    branch_tol: float | None,
    underflow: float,
    bounds: bool = True,
    fuse: bool = True,
) -> Evaluation:
    """The evaluation, over the batch in chunks (:func:`_chunks`), the value and the gradients of a
    chunk together (its kernels share their work: ``oracle._kernels.shared``): every element's
    value and gradients are those of the whole call (no element's arithmetic depends on the
    chunking), and the reductions run over the assembled per-sample values.

    Without ``bounds``, an element-wise variant's chunks are evaluated each in one compiled pass
    (:class:`_Fused`; where ``fuse``), its 'sum' and 'mean' summed in that pass (compensated per
    chunk, the chunks' sums added exactly: ``math.fsum``); wherever that pass meets an overflow or
    a result that is not finite, the whole call is evaluated again by NumPy."""
    if reduction not in v.reductions:
        raise _fail("reduction", f"one of {list(v.reductions)} for {v.key}", repr(reduction))
    rule = REDUCTION_RULES[reduction]
    prep = _prepare(spec_loss, v, bound)
    if reduction in v.reduction_warnings:  # as torch's contract does, on every valid such call
        warnings.warn(v.reduction_warnings[reduction], UserWarning, stacklevel=3)
    c = compiled(v.key)
    prep.env["_underflow"] = np.float64(underflow)
    env = prep.env
    squeeze = v.sample_axis is not None
    chunks = _chunks(prep)
    out_shape = prep.out_shape
    # (no array of the output's size where every element counts: a view of one True)
    keep = np.broadcast_to(np.True_, out_shape) if prep.mask is None else prep.mask

    def part(s: slice | None) -> Mapping[str, Any]:
        return env if s is None else {n: (a[s] if n in prep.batched else a) for n, a in env.items()}

    def rows(s: slice | None) -> tuple[int, ...]:
        return out_shape if s is None else (s.stop - s.start, *out_shape[1:])

    def per_sample(a: Any, shape: tuple[int, ...]) -> Array:
        a = np.asarray(a)
        if squeeze:
            a = np.broadcast_to(a, (*shape, 1))[..., 0]
        return np.broadcast_to(a, shape)

    def joined(parts: list[Any]) -> Any:
        return parts[0] if len(parts) == 1 else None if parts[0] is None else np.concatenate(parts)

    # the denominator of a mean first: the gradients of each chunk are scaled by it
    mw_raw = _map(lambda s: np.asarray(c.mean_weight(part(s)), np.float64), chunks)
    if prep.mask is None and all(a.ndim == 0 and a == 1.0 for a in mw_raw):
        mw = np.broadcast_to(np.float64(1.0), out_shape)  # each sample counts once (Σ m = n, exactly)
    else:
        mw_parts = [per_sample(a, rows(s)) for a, s in zip(mw_raw, chunks, strict=True)]
        mw = np.where(keep, joined(mw_parts), 0.0)
    n = int(np.prod(out_shape, dtype=np.int64))
    u = None if upstream is None else np.asarray(upstream, np.float64)
    rel_denom = 0.0
    denom_g = np.float64(1.0)
    if rule.divides_by is None:
        factor: Array = np.broadcast_to(np.float64(1.0) if u is None else u, out_shape)
    else:  # (a view of one number: no array of the output's size)
        factor = np.broadcast_to(np.float64(1.0 if u is None else float(u)), out_shape)
        if rule.divides_by != "one":
            denom_g = _denominator(rule, mw, np.shape(bound[spec_loss.tensors[0]]))
            if denom_g == 0:
                # a mean over zero total weight (empty batch, every sample ignored, or weight 0 on
                # every target) is undefined: NaN, as torch decided (PR #64572), with NaN gradients
                # for the samples that count (ignored ones still get 0)
                denom_g = np.float64(np.nan)
            # the denominator as a sum of n terms (n + 1 roundings); a size along dim 0 is exact
            rel_denom = float(n + 1) if rule.divides_by == "mean_weight" else 0.0
    divides = rule.divides_by not in (None, "one")  # 0 where the mean is NaN
    denominator = float(_denominator(rule, mw, np.shape(bound[spec_loss.tensors[0]]))) if divides else None
    undefined = bool(np.isnan(denom_g))  # a mean over zero total weight

    given = tuple(n for n in v.differentiable if bound.get(n) is not None)  # optional ones if passed
    names = given if wrt is None else tuple(wrt)
    for name in names:
        if name not in c.grads or name not in given:
            raise _fail("wrt", f"differentiable arguments of {v.key} given: {list(given)}", repr(name))
    # a weighted mean Σ ℓ / Σ m whose weights m depend on the argument: its gradient needs the mean
    quotient = {
        name: dm
        for name in names
        if rule.divides_by == "mean_weight" and (dm := c.mean_weight_grads.get(name)) is not None
    }
    mean: list[Any] = [None, None]  # the value and its scale, once reduced (for ``quotient``)

    def grad(name: str, e: Mapping[str, Any], s: slice | None, nears_of: dict[Any, Any]) -> list[Array]:
        g, gl, gh, gs = _per_element(c.grads[name], e, branch_tol, bounds=bounds, nears_of=nears_of)
        # a form free of the component (a second derivative that is 0 along the axis) has a
        # trailing dim of 1: the argument's own layout; a chunk's, led by the chunk's rows
        lead = () if s is None else (*rows(s), 1) if squeeze else rows(s)
        full = np.broadcast_shapes(np.shape(g), np.shape(e[name]), lead)
        g, gl, gh = (np.broadcast_to(a, full) for a in (g, gl, gh))
        dm = quotient.get(name)
        if dm is not None:
            # the quotient rule, ∂/∂a = (∂ℓ/∂a - mean · ∂m/∂a) / Σ m
            dmv = np.asarray(dm(e), dtype=np.float64)
            with np.errstate(all="ignore"):
                corr = mean[0] * dmv
                g, gl, gh = g - corr, gl - corr, gh - corr
                if gs is not None:
                    gs = np.broadcast_to(gs, full) + np.abs(corr) * (n + 2) + mean[1] * np.abs(dmv)
        f = factor if s is None else factor[s]
        kk = keep if s is None else keep[s]
        f, k = (f[..., None], kk[..., None]) if squeeze else (f, kk)
        # without bounds, a chunk's gradient is written in place into the whole's (no copy)
        dest = None if gs is not None or g.dtype != np.float64 else sinks.slot(name, s, full)
        with np.errstate(all="ignore"):
            gf = np.multiply(g, f, out=dest)
            gf /= denom_g
            if prep.mask is not None:
                np.copyto(gf, 0.0, where=~np.broadcast_to(k, gf.shape))
            out = [gf]
            if gs is not None:
                a, b = gl * f / denom_g, gh * f / denom_g
                bound_scale = np.maximum(gs * np.abs(f) / abs(denom_g), gs)
                out += [
                    np.where(k, np.fmin(a, b), 0.0),
                    np.where(k, np.fmax(a, b), 0.0),
                    np.where(k, bound_scale + np.abs(gf) * (1 + rel_denom) + underflow, 0.0),
                ]
            # (the upstream factor may be applied before any intermediate of g: its scale is not
            # shrunk by |f| < 1)
            if undefined:
                # The derivative of an undefined mean is undefined (NaN); an implementation that
                # only writes the components its formula touches (nll_loss scatters -w_y·u/Σw into
                # the target entries) leaves the others at 0: accepted there, where g is exactly 0.
                out.append(np.where(k & (np.broadcast_to(g, gf.shape) == 0), 0.0, np.nan))
        return out

    now = tuple(n for n in names if n not in quotient)
    sinks = _Sinks(chunks, out_shape)
    fused = None
    if (
        fuse
        and not bounds
        and not squeeze
        and prep.mask is None
        and not quotient
        and not undefined
        and len(chunks) > 1
    ):
        fused = _Fused.make(c, now, env, factor, out_shape, rule.divides_by is not None)

    def values_and_grads(s: slice | None) -> list[Array | None]:
        e, shape = part(s), rows(s)
        nears_of: dict[Any, Any] = {}  # the switches' margins at e, shared by the forms
        with _k.shared():
            outs = _per_element(c.value, e, branch_tol, bounds=bounds, nears_of=nears_of)
            for name in now:
                sinks.put(name, s, grad(name, e, s, nears_of))
        return [None if a is None else per_sample(a, shape) for a in outs]

    lo: Any
    hi: Any
    sc: Any = None
    fused_total = None
    if fused is not None:
        if not all(_map(lambda s: fused.run(part(s), s, denom_g, sinks), chunks)):
            # an overflow or a result not finite somewhere: all of it as the NumPy path does it
            return _evaluate(
                spec_loss, v, bound, reduction, wrt, upstream, branch_tol, underflow, bounds, False
            )
        if fused.summed:
            fused_total = math.fsum(fused.partials)
            if not np.isfinite(fused_total):  # Σ beyond float64
                return _evaluate(
                    spec_loss, v, bound, reduction, wrt, upstream, branch_tol, underflow, bounds, False
                )
        val = lo = hi = fused.values  # (unused where summed)
    else:
        parts = _map(values_and_grads, chunks)
        if prep.mask is None and rule.divides_by is not None:
            val = joined([p[0] for p in parts])  # reduced below: no masked copy
        else:
            val = np.where(keep, joined([p[0] for p in parts]), 0.0)
        if bounds:
            lo, hi, sc = (np.where(keep, joined([p[i] for p in parts]), 0.0) for i in (1, 2, 3))
        else:  # neither bounds nor scales: the value is its own range
            lo, hi = val, val
        del parts

    if rule.divides_by is None:
        with np.errstate(over="ignore"):
            value, vlo, vhi = (np.asarray(a, np.float64) for a in (val, lo, hi))
            vsc = None if sc is None else np.asarray(sc, np.float64)
    else:
        with np.errstate(all="ignore"):  # an element that overflows to inf is a valid answer
            total: Any = np.sum(val) if fused_total is None else np.float64(fused_total)
            if _WIDE is not None and not np.isfinite(total) and np.isfinite(val).all():
                val = np.asarray(val, _WIDE)  # Σ beyond float64
                lo, hi, sc = (val, val, None) if sc is None else (np.asarray(a, _WIDE) for a in (lo, hi, sc))
                total = np.sum(val)
            vlo, vhi, vsc = total, total, None
            if sc is not None:
                spread = (n - 1) * np.sum(np.abs(val)) if n > 1 else 0.0
                sum_scale = np.sum(sc) + spread + abs(total) + n * underflow
                vlo, vhi, vsc = np.sum(lo), np.sum(hi), sum_scale  # bounds of either sign's infinity
            value = total
            if divides:
                value = total / denom_g
                if vsc is not None:
                    vlo, vhi = vlo / denom_g, vhi / denom_g
                    vsc = vsc / abs(denom_g) + (n + 1) * abs(value)
                else:
                    vlo = vhi = value
        with np.errstate(over="ignore"):
            value, vlo, vhi = (np.asarray(a, np.float64) for a in (value, vlo, vhi))
            vsc = None if vsc is None else np.asarray(vsc, np.float64)
    del val, lo, hi, sc, mw

    if quotient:  # the gradients that need the mean, in a second pass
        mean[:] = [value, vsc]

        def late(s: slice | None) -> None:
            e = part(s)
            nears_of: dict[Any, Any] = {}
            with _k.shared():
                for name in quotient:
                    sinks.put(name, s, grad(name, e, s, nears_of))

        _map(late, chunks)

    grads: dict[str, Array] = {}
    glo: dict[str, Array] = {}
    ghi: dict[str, Array] = {}
    gsc: dict[str, Array] = {}
    galt: dict[str, Array] = {}
    for name in names:
        back = prep.restore[name]
        with np.errstate(over="ignore"):  # rounded to float64 once, here
            restored = [np.asarray(back(o), np.float64) for o in sinks.take(name)]
        grads[name] = restored[0]
        if bounds:
            glo[name], ghi[name], gsc[name] = restored[1:4]
        else:
            glo[name] = ghi[name] = restored[0]
        if undefined:
            galt[name] = restored[-1]
    return Evaluation(spec_loss.name, v.name, value, grads, vlo, vhi, vsc, glo, ghi, gsc, denominator, galt)


class _Fused:
    """An element-wise variant's value and gradients in one compiled pass per chunk
    (``oracle._fused``), where every argument is an array of the result's shape (contiguous float64)
    or a number: the values written into :attr:`values` (or, where :attr:`summed`, each chunk's
    compensated sum into :attr:`partials`), the gradients into their sinks."""

    def __init__(
        self,
        run: Any,
        arrays: tuple[str, ...],
        scalars: dict[str, Any],
        names: tuple[str, ...],
        factor: Array | None,
        f: Any,
        shape: tuple[int, ...],
        summed: bool,
    ) -> None:
        self.kernel, self.arrays, self.scalars, self.names = run, arrays, scalars, names
        self.factor, self.f, self.summed, self.shape = factor, f, summed, shape
        self.values = np.empty(0 if summed else shape, np.float64)
        self.partials: list[float] = []
        self.lock = threading.Lock()

    @classmethod
    def make(
        cls,
        c: Compiled,
        names: tuple[str, ...],
        env: Mapping[str, Any],
        factor: Array,
        shape: tuple[int, ...],
        summed: bool,
    ) -> _Fused | None:
        from oracle import _fused

        forms = (c.value.fn.source, *(c.grads[n].fn.source for n in names))
        used = sorted({m for src in forms for m in _ENV_NAME.findall(src)})
        arrays, scalars = [], {}
        for n in used:
            a = env[n]
            if isinstance(a, np.ndarray) and a.ndim > 0:
                if a.shape != shape or a.dtype != np.float64 or not a.flags.c_contiguous:
                    return None  # (broadcast or of another type: the NumPy path)
                arrays.append(n)
            else:
                scalars[n] = np.asarray(a)[()]
        if factor.shape == shape and factor.flags.c_contiguous and factor.dtype == np.float64:
            fac, f = factor, None
        elif not any(factor.strides):  # a view of one number
            fac, f = None, np.float64(factor.flat[0])
        else:
            return None
        run = _fused.kernel(forms, tuple(arrays), tuple(scalars), fac is not None, summed)
        if run is None:
            return None
        return cls(run, tuple(arrays), scalars, names, fac, f, shape, summed)

    def run(self, e: Mapping[str, Any], s: slice | None, denom: Any, sinks: _Sinks) -> bool:
        """The chunk ``s``'s values and gradients; False: left to the NumPy path (an overflow, or a
        result not finite)."""
        assert s is not None
        shape = (s.stop - s.start, *self.shape[1:])
        n = int(np.prod(shape, dtype=np.int64))
        vals = self.values if self.summed else self.values[s]
        outs = [sinks.slot(name, s, shape) for name in self.names]
        assert all(o is not None for o in outs)  # (chunked: each chunk written in place)
        f = self.f if self.factor is None else self.factor[s].reshape(-1)
        args = [e[a].reshape(-1) for a in self.arrays]
        ok, total, err = self.kernel(
            *args,
            *self.scalars.values(),
            f,
            np.float64(denom),
            n,
            vals.reshape(-1),
            *(o.reshape(-1) for o in outs if o is not None),
        )
        if not ok:
            return False
        for name, o in zip(self.names, outs, strict=True):
            sinks.put(name, s, [o] if o is not None else [])
        if self.summed:
            with self.lock:
                self.partials += [total, err]
        return True


_ENV_NAME = re.compile(r"env\['(\w+)'\]")


class _Sinks:
    """Each gradient's outputs over the whole batch: of the one call, or each chunk's rounded to
    float64 into an array of the whole (allocated by the first chunk that arrives, from its shapes)."""

    def __init__(self, chunks: list[slice | None], shape: tuple[int, ...]) -> None:
        self.whole = chunks == [None]
        self.rows = shape[0] if shape else 0
        self.got: dict[str, list[Array]] = {}
        self.lock = threading.Lock()

    def put(self, name: str, s: slice | None, outs: list[Array]) -> None:
        if self.whole:
            self.got[name] = outs
            return
        with self.lock:
            got = self.got.setdefault(name, [])
            got += [np.empty((self.rows, *np.shape(a)[1:]), np.float64) for a in outs[len(got) :]]
        with np.errstate(over="ignore"):
            for w, a in zip(self.got[name], outs, strict=True):
                if a.base is not w:  # (not written in place: :meth:`slot`)
                    w[s] = a

    def slot(self, name: str, s: slice | None, shape: tuple[int, ...]) -> Array | None:
        """Where the chunk ``s`` of ``name``'s first output goes (None: the whole at once)."""
        if self.whole:
            return None
        with self.lock:
            if name not in self.got:
                self.got[name] = [np.empty((self.rows, *shape[1:]), np.float64)]
        return self.got[name][0][s]

    def take(self, name: str) -> list[Array]:
        return self.got.pop(name)


def hvp(
    loss: str,
    *args: Any,
    directions: Mapping[str, Any],
    reduction: str = "mean",
    wrt: Collection[str] | None = None,
    upstream: Any = None,
    branch_tol: float | None = None,
    underflow: float = 0.0,
    bounds: bool | None = None,
    **kwargs: Any,
) -> Evaluation:
    """Second order: ``∂/∂b ⟨∇L·u, v⟩`` for each argument ``b`` of ``wrt`` (default: every
    differentiable one given), ``L`` the reduced loss, ``u`` the upstream gradient and ``v`` the
    ``directions`` (by argument name; an argument without one has direction 0): the Hessian-vector
    products ``Σ_a ∂²L/∂b∂a · v_a``, from the second derivatives SymPy derives
    (:func:`spec.derive.hvp_variant`). The result's ``value`` is ``⟨∇L·u, v⟩`` itself.

    For ``reduction='mean'`` over weights that depend on a differentiable argument (l1_loss's and
    mse_loss's ``weight``), the direction along that argument must be 0: the quotient's
    second-order term is not derived (the derivatives w.r.t. it are)."""
    spec_loss, hv, bound, _ = _bind_hvp(loss, args, kwargs, directions, reduction)
    with_bounds = branch_tol is not None if bounds is None else bounds
    return _evaluate(spec_loss, hv, bound, reduction, wrt, upstream, branch_tol, underflow, with_bounds)


def hvp_contributions(
    loss: str,
    *args: Any,
    directions: Mapping[str, Any],
    reduction: str = "mean",
    wrt: Collection[str] | None = None,
    upstream: Any = None,
    branch_tol: float | None = None,
    underflow: float = 0.0,
    bounds: bool | None = None,
    **kwargs: Any,
) -> dict[str, Evaluation]:
    """:func:`hvp` along each direction alone, by the argument it is along: ``Σ_a ∂²L/∂b∂a · v_a``
    split into its terms ``∂²L/∂b∂a · v_a`` (the same derived forms, the other directions 0), which
    sum to :func:`hvp`'s. Autograd accumulates the Hessian-vector product of each input from these
    terms, computed apart: the error model's bound of second order counts their magnitudes
    (``conformance.second_order``), which a form SymPy has simplified may not show (mse_loss:
    ``2w(v_x - v_y)``, where autograd sums ``2w·v_x`` and ``-2w·v_y``)."""
    spec_loss, hv, bound, directed = _bind_hvp(loss, args, kwargs, directions, reduction)
    with_bounds = branch_tol is not None if bounds is None else bounds
    from spec.derive import direction

    out = {}
    for a in directed:
        alone = dict(bound)
        for other in directed:
            if other != a:
                alone[direction(other)] = np.zeros(np.shape(bound[direction(other)]))
        out[a] = _evaluate(spec_loss, hv, alone, reduction, wrt, upstream, branch_tol, underflow, with_bounds)
    return out


def _bind_hvp(
    loss: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], directions: Mapping[str, Any], reduction: str
) -> tuple[Loss, Variant, dict[str, Any], tuple[str, ...]]:
    """:func:`hvp`'s arguments bound: the loss, its Hessian-vector-product variant (over the
    arguments with a nonzero direction), the bound arguments with every direction, and those
    arguments."""
    from spec.derive import direction, hvp_variant

    spec_loss = _loss(loss)
    if reduction not in REDUCTION_RULES:
        raise _fail("reduction", f"one of {list(REDUCTION_RULES)}", repr(reduction))
    bound = _bind(spec_loss, args, kwargs)
    v = select_variant(spec_loss, bound)
    unknown = sorted(set(directions) - set(v.differentiable))
    if unknown:
        raise _fail(
            "directions",
            f"directions along differentiable arguments of {v.key}: {list(v.differentiable)}",
            unknown,
        )
    first = np.asarray(bound[spec_loss.tensors[0]])
    weighted = {str(s) for s in v.mean_weight.free_symbols}
    for name in v.differentiable:
        d = directions.get(name)
        primal = bound.get(name)
        if d is None:
            if primal is not None:
                d = np.zeros(np.shape(primal))
            elif v.roles[name].role == "axis":  # class weights not given: one per class
                cdim = first.ndim - 1 if v.class_dim == "last" or first.ndim == 1 else 1
                d = np.zeros(first.shape[cdim])
            else:
                d = np.zeros(first.shape)
        elif primal is not None and np.shape(d) != np.shape(primal):
            raise _fail(
                f"directions[{name!r}]", f"the shape of {name}, {np.shape(primal)}", f"shape {np.shape(d)}"
            )
        elif primal is None:
            raise _fail(f"directions[{name!r}]", f"no direction: {name} is not given (None)", "a direction")
        if (
            REDUCTION_RULES[reduction].divides_by == "mean_weight"
            and name in weighted
            and np.any(np.asarray(d) != 0)
        ):
            raise _fail(
                f"directions[{name!r}]",
                f"0 for reduction='mean' (the mean's denominator depends on {name})",
                "a nonzero direction",
            )
        bound[direction(name)] = d
    directed = tuple(n for n in v.differentiable if np.any(np.asarray(bound[direction(n)]) != 0))
    return spec_loss, hvp_variant(v, directed), bound, directed


def _denominator(rule: ReductionRule, mean_weight: Array, input_shape: tuple[int, ...]) -> np.float64:
    """What ``rule`` divides Σ ℓ by (``spec.ReductionRule``): Σ of the mean weights of the samples
    that count (ignored ones carry 0), or the input's size along dim 0."""
    if rule.divides_by == "mean_weight":
        return np.float64(np.sum(mean_weight))
    if rule.divides_by == "batch":
        return np.float64(input_shape[0] if input_shape else 1)
    raise ValueError(f"reduction {rule.name!r} divides by nothing")


def loss_value(loss: str, *args: Any, reduction: str = "mean", **kwargs: Any) -> Array:
    """Just the value: ``oracle.loss_value("mse_loss", x, y)``."""
    return evaluate(loss, *args, reduction=reduction, wrt=(), **kwargs).value


__all__ = ["Compiled", "Evaluation", "OracleInputError", "evaluate", "hvp", "loss_value", "select_variant"]
