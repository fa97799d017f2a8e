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

import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from oracle._compile import Compiled, Form, compiled
from spec import REDUCTION_RULES, REGISTRY, Loss, ReductionRule, Variant

Array = np.ndarray[Any, Any]


class OracleInputError(ValueError):
    """An argument the loss does not accept: names the argument and what was expected."""


@dataclass(frozen=True)
class Evaluation:
    """The value of the reduced loss and the gradient w.r.t. each requested argument.

    ``lo``/``hi`` bound the values accepted when branch conditions lie within ``branch_tol`` of their
    boundary (equal to the value when no tolerance was given); ``scale`` is the error scale of
    ``oracle._errscale`` for each output. Keys of ``grads``/``grad_lo``/... are argument names.
    """

    loss: str
    variant: str
    value: Array
    grads: Mapping[str, Array]
    value_lo: Array
    value_hi: Array
    value_scale: Array
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
    return arr.astype(np.float64)


@dataclass
class _Prepared:
    """Arrays laid out for the lowered functions, and how to map results back."""

    env: dict[str, Any]
    out_shape: tuple[int, ...]
    mask: Array | None  # samples that count (not ignored)
    restore: dict[str, Any]  # per differentiable arg: callable mapping an element gradient back


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
    return _Prepared(env, shape, None, restore)


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
    return _Prepared(env, sample_shape, mask, restore)


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
    form: Form, env: Mapping[str, Any], branch_tol: float | None, dtype: Any = np.float64
) -> tuple[Array, Array, Array, Array]:
    """value, lo, hi, scale of one form at every element (class-axis results are (..., 1) or (..., C)).

    Where an intermediate overflows float64 although the result may not (``w·δ(|d| - δ/2)`` with
    w = ½ and the product ~1e308; ``1 - y/(x + eps)`` at eps = 2^-1023 before the upstream ½), the
    form is evaluated again in extended precision and those elements are kept in it: the caller
    scales and reduces them there, and rounds the results to float64 once."""
    overflowed = []  # an intermediate of fn overflowed float64: its finite results may be wrong
    with np.errstate(all="ignore"):
        val = np.asarray(form.fn(env, on_overflow=lambda *_: overflowed.append(True)), dtype=dtype)
        sc = np.abs(np.asarray(form.scale(env), dtype=dtype))
        lo, hi = val, val
        if branch_tol is not None:
            nears: dict[int, Array] = {}
            for n, sw in enumerate(form.switches):
                m = np.asarray(sw.margin(env))
                ms = np.asarray(sw.scale(env))
                near = (np.abs(m) <= branch_tol * ms) & (ms > 0)
                if sw.exact is not None:  # exactly on the boundary, computed exactly: decided
                    near = near & ~((m == 0) & np.asarray(sw.exact(env), bool))
                if near.any():
                    nears[n] = near
                    # all near elements flipped, and those above, below and on the boundary apart:
                    # in a sum, flips can cancel (Σ_k H(z_k) with z_0 > 0 and z_1 = 0)
                    sides = [g for g in (near & (m > 0), near & (m < 0), near & (m == 0)) if g.any()]
                    masks = [near] + (sides if len(sides) > 1 else [])
                    for mask in masks:
                        other = np.asarray(form.fn(env, {n: mask}), dtype=dtype)
                        other = np.where(np.isnan(other) & ~np.isnan(val), val, other)
                        lo, hi = np.fmin(lo, other), np.fmax(hi, other)
            if len(nears) > 1:  # every near decision taken the other way at once
                other = np.asarray(form.fn(env, nears), dtype=dtype)
                other = np.where(np.isnan(other) & ~np.isnan(val), val, other)
                lo, hi = np.fmin(lo, other), np.fmax(hi, other)
            # the error scale of the other side too, with the same condition flipped in it
            # wherever it occurs: each of fn's conditions alone (as the value's sides are), and all
            # of them together
            alts = [{k: nears[i] for k, j in enumerate(form.scale_map) if j == i} for i in nears]
            alts = [a for a in alts if a]
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
        wide = _per_element(form, _widened(env), branch_tol, _WIDE)
        redo = np.full(shape, True) if overflowed else ~(np.isfinite(out[0]) & np.isfinite(out[3]))
        out = tuple(np.where(redo, w, a.astype(_WIDE)) for a, w in zip(out, wide, strict=True))
    return out  # type: ignore[return-value]


def evaluate(
    loss: str,
    *args: Any,
    reduction: str = "mean",
    wrt: Collection[str] | None = None,
    upstream: Any = None,
    branch_tol: float | None = None,
    underflow: float = 0.0,
    **kwargs: Any,
) -> Evaluation:
    """Evaluate ``loss`` (a torch.nn.functional name) and its gradients in float64.

    ``wrt`` names the arguments to differentiate (default: every differentiable one of the selected
    variant); ``upstream`` is the gradient flowing into the loss's output (shape of the value).
    ``branch_tol`` (used by the conformance error model) also evaluates the other side of each branch
    whose condition is within ``branch_tol × scale`` of its boundary and reports the range;
    ``underflow`` is the error-scale allowance for one rounded operation's underflow.
    Raises :class:`OracleInputError` (a ValueError) naming the argument for invalid input.
    """
    spec_loss = _loss(loss)
    if reduction not in REDUCTION_RULES:
        raise _fail("reduction", f"one of {list(REDUCTION_RULES)}", repr(reduction))
    bound = _bind(spec_loss, args, kwargs)
    v = select_variant(spec_loss, bound)
    return _evaluate(spec_loss, v, bound, reduction, wrt, upstream, branch_tol, underflow)


def _evaluate(
    spec_loss: Loss,
    v: Variant,
    bound: dict[str, Any],
    reduction: str,
    wrt: Collection[str] | None,
    upstream: Any,
    branch_tol: float | None,
    underflow: float,
) -> Evaluation:
    if reduction not in v.reductions:
        raise _fail("reduction", f"one of {list(v.reductions)} for {v.key}", repr(reduction))
    rule = REDUCTION_RULES[reduction]
    _check_params(v, bound)
    prep = (_prepare_elementwise if v.sample_axis is None else _prepare_classes)(spec_loss, v, bound)
    if reduction in v.reduction_warnings:  # as torch's contract does, on every valid such call
        warnings.warn(v.reduction_warnings[reduction], UserWarning, stacklevel=3)
    for p in v.params:  # NumPy scalars: IEEE semantics (x/0 = inf) in the lowered code
        val = bound[p.name]
        prep.env[p.name] = (
            np.bool_(val) if p.kind == "flag" else np.int64(val) if p.integer else np.float64(val)
        )
    c = compiled(v.key)
    prep.env["_underflow"] = np.float64(underflow)
    env = prep.env
    squeeze = v.sample_axis is not None

    def per_sample(a: Array) -> Array:
        a = np.asarray(a)
        if squeeze:
            a = np.broadcast_to(a, (*prep.out_shape, 1))[..., 0]
        return np.broadcast_to(a, prep.out_shape)

    val, lo, hi, sc = (per_sample(a) for a in _per_element(c.value, env, branch_tol))
    mw = per_sample(np.asarray(c.mean_weight(env), dtype=np.float64))
    keep = np.ones(prep.out_shape, bool) if prep.mask is None else prep.mask
    val, lo, hi, sc, mw = (np.where(keep, a, 0.0) for a in (val, lo, hi, sc, mw))
    n = val.size

    if rule.divides_by is None:
        with np.errstate(over="ignore"):
            value, vlo, vhi, vsc = (np.asarray(a, np.float64) for a in (val, lo, hi, sc))
        factor: Array = (
            np.ones(prep.out_shape)
            if upstream is None
            else np.broadcast_to(np.asarray(upstream, np.float64), prep.out_shape)
        )
        denom_g = np.float64(1.0)
        rel_denom = 0.0
    else:
        with np.errstate(all="ignore"):  # an element that overflows to inf is a valid answer
            total = np.sum(val)
            if _WIDE is not None and not np.isfinite(total) and np.isfinite(val).all():
                val, lo, hi, sc = (np.asarray(a, _WIDE) for a in (val, lo, hi, sc))  # Σ beyond float64
                total = np.sum(val)
            spread = (n - 1) * np.sum(np.abs(val)) if n > 1 else 0.0
            sum_scale = np.sum(sc) + spread + abs(total) + n * underflow
        u = 1.0 if upstream is None else float(np.asarray(upstream, np.float64))
        if rule.divides_by == "one":
            with np.errstate(all="ignore"):  # bounds of either sign's infinity: an unbounded sum
                value, vlo, vhi, vsc = total, np.sum(lo), np.sum(hi), sum_scale
            factor = np.full(prep.out_shape, u)
            denom_g, rel_denom = np.float64(1.0), 0.0
        else:
            denom = _denominator(rule, mw, np.shape(bound[spec_loss.tensors[0]]))
            if denom == 0:
                # a mean over zero total weight (empty batch, every sample ignored, or weight 0 on
                # every target) is undefined: NaN, as torch decided (PR #64572), with NaN gradients
                # for the samples that count (ignored ones still get 0)
                denom = np.float64(np.nan)
            with np.errstate(all="ignore"):
                value = total / denom
                vlo, vhi = np.sum(lo) / denom, np.sum(hi) / denom
                vsc = sum_scale / abs(denom) + (n + 1) * abs(value)
                # the gradient is g·u / denom, multiplied before dividing: u / denom overflows for
                # a subnormal total weight where the gradient itself is representable
                factor = np.full(prep.out_shape, u)
                # the denominator as a sum of n terms (n + 1 roundings); a size along dim 0 is exact
                denom_g, rel_denom = denom, float(n + 1) if rule.divides_by == "mean_weight" else 0.0
        with np.errstate(over="ignore"):
            value, vlo, vhi, vsc = (np.asarray(a, np.float64) for a in (value, vlo, vhi, vsc))
    divides = rule.divides_by not in (None, "one")  # 0 where the mean is NaN
    denominator = float(_denominator(rule, mw, np.shape(bound[spec_loss.tensors[0]]))) if divides else None

    given = tuple(n for n in v.differentiable if bound.get(n) is not None)  # optional ones if passed
    names = given if wrt is None else tuple(wrt)
    grads: dict[str, Array] = {}
    glo: dict[str, Array] = {}
    ghi: dict[str, Array] = {}
    gsc: dict[str, Array] = {}
    galt: dict[str, Array] = {}
    undefined = bool(np.isnan(denom_g))  # a mean over zero total weight
    for name in names:
        if name not in c.grads or name not in given:
            raise _fail("wrt", f"differentiable arguments of {v.key} given: {list(given)}", repr(name))
        g, gl, gh, gs = _per_element(c.grads[name], env, branch_tol)
        # a form free of the component (a second derivative that is 0 along the axis) has a
        # trailing dim of 1: the argument's own layout
        full = np.broadcast_shapes(np.shape(g), np.shape(env[name]))
        g, gl, gh, gs = (np.broadcast_to(a, full) for a in (g, gl, gh, gs))
        dm = c.mean_weight_grads.get(name) if rule.divides_by == "mean_weight" else None
        if dm is not None:
            # a weighted mean Σ ℓ / Σ m whose weights m depend on this argument: the quotient rule,
            # ∂/∂a = (∂ℓ/∂a - mean · ∂m/∂a) / Σ m
            dmv = np.asarray(dm(env), dtype=np.float64)
            with np.errstate(all="ignore"):
                corr = np.asarray(value, np.float64) * dmv
                g, gl, gh = g - corr, gl - corr, gh - corr
                gs = gs + np.abs(corr) * (n + 2) + np.asarray(vsc) * np.abs(dmv)
        f = factor[..., None] if squeeze else factor
        k = keep[..., None] if squeeze else keep
        with np.errstate(all="ignore"):
            a, b = gl * f / denom_g, gh * f / denom_g
            gf = g * f / denom_g
            out = [
                np.where(k, gf, 0.0),
                np.where(k, np.fmin(a, b), 0.0),
                np.where(k, np.fmax(a, b), 0.0),
                np.where(
                    k,
                    np.maximum(gs * np.abs(f) / abs(denom_g), gs) + np.abs(gf) * (1 + rel_denom) + underflow,
                    0.0,
                ),
            ]
        # (the upstream factor may be applied before any intermediate of g: its scale is not
        # shrunk by |f| < 1)
        back = prep.restore[name]
        with np.errstate(over="ignore"):  # rounded to float64 once, here
            grads[name], glo[name], ghi[name], gsc[name] = (np.asarray(back(o), np.float64) for o in out)
        if undefined:
            # The derivative of an undefined mean is undefined (NaN); an implementation that only
            # writes the components its formula touches (nll_loss scatters -w_y·u/Σw into the
            # target entries) leaves the others at 0: accepted there, where g is exactly 0.
            galt[name] = back(np.where(k & (np.broadcast_to(g, gf.shape) == 0), 0.0, np.nan))
    return Evaluation(spec_loss.name, v.name, value, grads, vlo, vhi, vsc, glo, ghi, gsc, denominator, galt)


def hvp(
    loss: str,
    *args: Any,
    directions: Mapping[str, Any],
    reduction: str = "mean",
    wrt: Collection[str] | None = None,
    upstream: Any = None,
    branch_tol: float | None = None,
    underflow: float = 0.0,
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
    return _evaluate(
        spec_loss, hvp_variant(v, directed), bound, reduction, wrt, upstream, branch_tol, underflow
    )


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
