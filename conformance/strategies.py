"""Hypothesis strategies for loss cases, generated from the spec's domains.

A new loss gets inputs without new code here: shapes follow the argument axes (element-wise, or a
class axis with class-index / probability targets), values follow each argument's ``Domain`` and
options follow each ``Param``'s domain. Every float is rounded to the dtype under test before the
backend and the oracle see it, so both evaluate exactly the same numbers.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance.backends import DType
from conformance.errormodel import round_to

if TYPE_CHECKING:  # the checks import this module at collection, which imports no SymPy
    from spec import Param, Variant

Array = np.ndarray[Any, Any]

#: the largest |real input| drawn per dtype: large logits, and squares that still fit float16
_BIG = {"float64": 1e4, "float32": 1e4, "bfloat16": 1e4, "float16": 64.0}


@dataclass(frozen=True)
class Case:
    """One call of a loss: its tensor arguments (float64 arrays exact in ``dtype``; integer arrays
    for class indices), its scalar options, and the reduction."""

    loss: str
    variant: str
    dtype: DType
    arrays: dict[str, Array]
    options: dict[str, Any]
    reduction: str

    def kwargs(self) -> dict[str, Any]:
        return {**self.options, "reduction": self.reduction}

    @property
    def differentiable(self) -> tuple[str, ...]:
        """The differentiable arguments this case passes (optional ones only where given)."""
        from spec import REGISTRY

        v = REGISTRY[self.loss].variant(self.variant)
        return tuple(n for n in v.differentiable if n in self.arrays)


def reals(dtype: DType) -> st.SearchStrategy[float]:
    big = _BIG[dtype]
    return st.one_of(
        st.floats(-8, 8),
        st.floats(-big, big),
        st.sampled_from([0.0, 1.0, -1.0, big, -big, 1e-30, -1e-30, 0.5]),
    )


def unit(dtype: DType) -> st.SearchStrategy[float]:
    near_one = [1 - 2.0**-53, 1 - 2.0**-24, 1 - 2.0**-11, 1 - 2.0**-8]
    return st.one_of(
        st.floats(0, 1),
        st.sampled_from([0.0, 1.0, 0.5, 1e-300, 1e-30, 1e-12, 1e-8, *near_one]),
    )


def nonnegative(dtype: DType) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(0, 4), st.sampled_from([0.0, 1.0, 0.5, 2.0]))


_VALUES = {
    "real": reals,
    "unit": unit,
    "probabilities": unit,
    "nonnegative": nonnegative,
    "positive": lambda d: st.floats(2.0**-8, 4),
    "sign": lambda d: st.sampled_from([-1.0, 1.0]),
    "log_probability": lambda d: reals(d).map(lambda v: -abs(v)),
}


@functools.cache  # strategies are immutable: build each once, not per draw
def values(kind: str, dtype: DType, shape: tuple[int, ...]) -> st.SearchStrategy[Array]:
    return hnp.arrays(np.float64, shape, elements=_VALUES[kind](dtype)).map(lambda a: round_to(a, dtype))


@functools.cache
def param_value(p: Param, dtype: DType) -> st.SearchStrategy[Any]:
    """A value of an option: a flag or a choice, any of its values; a real option, a value in its
    domain rounded to the dtype (as the backend computes with it), with the domain's endpoints and
    the default drawn often."""
    if p.choices:
        return st.sampled_from(p.choices)
    lo, hi = float(p.domain.inf), float(p.domain.sup)
    lo_draw, hi_draw = max(lo, -8.0), min(hi, 8.0)
    specials = [float(p.default), *(x for x in (lo, hi) if np.isfinite(x) and p.admits(x))]
    small = st.floats(lo_draw, min(hi_draw, 1e-2)) if lo_draw < 1e-2 else st.nothing()
    raw = st.one_of(st.sampled_from(specials), st.floats(lo_draw, hi_draw), small)
    return raw.map(lambda x: float(round_to(x, dtype))).filter(p.admits)


def pick(draw: st.DrawFn, options: Sequence[Any]) -> Any:
    """``draw(st.sampled_from(options))`` without building a strategy per draw: an index from a
    cached ``st.integers`` (the same choice, shrinking towards the first option). Hypothesis
    validates each new strategy object on its first draw, which cost more than the draw itself."""
    return options[draw(_index(len(options)))]


@functools.cache
def _index(n: int) -> st.SearchStrategy[int]:
    return st.integers(0, n - 1)


@functools.cache
@st.composite
def element_shapes(draw: st.DrawFn, min_size: int = 1) -> tuple[int, ...]:
    """0 to 3 dims of ``min_size`` to 4, each number of dims and each size about equally likely
    (``st.lists`` favours short lists: a 20-example run drew few shapes where a mean over the batch
    and over the elements differ); shrinking towards () and sizes of ``min_size``."""
    sizes = list(range(min_size, 5))
    return tuple(pick(draw, sizes) for _ in range(pick(draw, _NDIMS)))


_NDIMS = (0, 1, 2, 3)


@functools.cache
@st.composite
def class_shapes(
    draw: st.DrawFn, min_size: int = 1, last: bool = False, ndims: tuple[int, ...] = ()
) -> tuple[int, ...]:
    """(C), (N, C) or (N, C, d1, ..., dk) with k <= 2; with ``last``, the class axis last:
    (C), (N, C), (N, d1, ..., C); ``ndims``: only these numbers of dims."""
    c = draw(st.integers(1, 5))
    ndim = pick(draw, ndims) if ndims else draw(st.integers(1, 4))
    if ndim == 1:
        return (c,)
    n = draw(st.integers(min_size, 4))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim - 2, max_size=ndim - 2)))
    return (n, *spatial, c) if last else (n, c, *spatial)


@functools.cache
@st.composite
def index_sets(draw: st.DrawFn, shape: tuple[int, ...], c: int, cdim: int) -> Array:
    """multilabel_margin_loss's targets: per sample, class indices (repeats allowed) ended by -1,
    then any entries in [-1, C) (torch reads them, and checks their range, but ignores them)."""
    n = int(np.prod(shape)) // c if c else 0
    rows = []
    for _ in range(n):
        m = draw(st.integers(0, c))
        labels = draw(st.lists(st.integers(0, c - 1), min_size=m, max_size=m))
        rest = draw(st.lists(st.integers(-1, c - 1), min_size=c - m, max_size=c - m))
        rows.append(labels + ([-1, *rest[1:]] if m < c else []))
    moved = (*shape[:cdim], *shape[cdim + 1 :], c)
    return np.moveaxis(np.array(rows, dtype=np.int64).reshape(moved), -1, cdim)


@functools.cache
@st.composite
def broadcast_shape(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape`` without enlarging it: a suffix of it, some dims 1."""
    suffix = shape[draw(st.integers(0, len(shape))) :]
    ones = draw(st.lists(st.booleans(), min_size=len(suffix), max_size=len(suffix)))
    return tuple(1 if o else n for n, o in zip(suffix, ones, strict=True))


@functools.cache
@st.composite
def var_shape(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """gaussian_nll_loss's var shapes: input's, input's without its last dim, or input's with
    one dim of size 1 (``spec.Arg.broadcast == "var"``)."""
    options = [shape]
    if shape:
        options.append(shape[:-1])
        options += [(*shape[:d], 1, *shape[d + 1 :]) for d in range(len(shape)) if shape[d] != 1]
    return pick(draw, options)


def cases(
    variant: Variant,
    dtype: DType,
    *,
    reductions: Sequence[str] | None = None,
    shape: tuple[int, ...] | None = None,
    optional: bool = True,
    fixed: frozenset[str] = frozenset(),
) -> st.SearchStrategy[Case]:
    """A case of ``variant`` in ``dtype``. ``optional=False`` leaves optional tensors at None;
    options named in ``fixed`` (those an implementation does not take) keep their defaults. One
    strategy object for each set of arguments (a new one per draw costs its validation)."""
    key = (id(variant), dtype, None if reductions is None else tuple(reductions), shape, optional, fixed)
    hit = _CASES.get(key)
    if hit is None:
        hit = _CASES[key] = (
            variant,
            _cases(variant, dtype, reductions=key[2], shape=shape, optional=optional, fixed=fixed),
        )
    return hit[1]


#: ``cases``'s strategies, by the arguments' key (the variant kept with its id)
_CASES: dict[tuple[Any, ...], tuple[Any, st.SearchStrategy[Case]]] = {}


@st.composite
def _cases(
    draw: st.DrawFn,
    variant: Variant,
    dtype: DType,
    *,
    reductions: Sequence[str] | None = None,
    shape: tuple[int, ...] | None = None,
    optional: bool = True,
    fixed: frozenset[str] = frozenset(),
) -> Case:
    arrays: dict[str, Array] = {}
    options: dict[str, Any] = {}
    if variant.sample_axis is not None:
        last = variant.class_dim == "last"
        shape = shape or draw(class_shapes(last=last, ndims=variant.input_ndims))
        cdim = len(shape) - 1 if last or len(shape) == 1 else 1
        c = shape[cdim]
        sample = shape[:cdim] + shape[cdim + 1 :]
    else:
        shape = shape if shape is not None else draw(element_shapes())
        c, sample = 0, shape
    ignore = None
    if reductions is None:
        reductions = variant.reductions
    if "reduction" in fixed:
        reductions = ("mean",)  # torch's default
    for p in variant.params:
        if p.name in fixed:
            options[p.name] = p.default
        elif p.name == variant.ignore:
            ignore = pick(draw, [int(p.default), *range(c)])
            options[p.name] = ignore
        else:
            options[p.name] = draw(param_value(p, dtype))
    options.update(variant.selects)  # the function options that select this variant, by name
    for a in variant.args:
        if a.optional:
            if not optional or a.name in fixed or not draw(st.booleans()):
                continue
            if a.broadcast == "class":
                ashape: tuple[int, ...] = (c,)
            elif a.broadcast == "last_dim":
                ashape = shape[-1:]
            elif a.broadcast == "same":
                ashape = shape
            else:  # broadcastable to input without enlarging it
                ashape = draw(broadcast_shape(shape))
            arrays[a.name] = draw(values(a.domain_for(options).kind, dtype, ashape))
        elif variant.roles[a.name].role == "index_set":
            arrays[a.name] = draw(
                index_sets(shape, c, len(shape) - 1 if variant.class_dim == "last" or len(shape) == 1 else 1)
            )
        elif variant.roles[a.name].role == "element" and variant.sample_axis is not None:
            arrays[a.name] = draw(values(a.domain_for(options).kind, dtype, sample))  # one per sample
        elif variant.roles[a.name].role == "index":
            choices = list(range(c)) + ([ignore] if ignore is not None and ignore < 0 else [])
            n = int(np.prod(sample)) if sample else 1
            idx = draw(st.lists(_index(len(choices)), min_size=n, max_size=n))
            arrays[a.name] = np.array(choices, dtype=np.int64)[np.array(idx, dtype=np.intp)].reshape(sample)
        else:
            ashape = shape
            if a.broadcast == "var":
                ashape = draw(var_shape(shape))
            elif a.broadcast in ("warn", "silent") and draw(st.integers(0, 3)) == 0:
                ashape = draw(broadcast_shape(shape))  # torch broadcasts (and warns for "warn")
            arrays[a.name] = draw(values(a.domain_for(options).kind, dtype, ashape))
    small = [
        *_constants(variant.key),
        *(abs(v) for p in variant.params if p.kind == "real" and 0 < abs(v := options[p.name]) < 1e-3),
    ]
    scalable = [
        n
        for n, arr in arrays.items()
        if arr.dtype.kind == "f" and variant.arg(n).domain_for(options).kind == "real"
    ]
    if small and scalable and draw(st.integers(0, 3)) == 0:
        # one real input scaled to the size of one of the forms' small constants (an ε added to a
        # norm or a difference shows only there), or of its square root (an ε added to a square)
        c = pick(draw, small)
        name = pick(draw, scalable)
        x = arrays[name]
        top = float(np.max(np.abs(x), initial=0.0))
        if top > 0:  # (its largest magnitude made that size; divided first: a subnormal top)
            arrays[name] = round_to(x / top * pick(draw, [c, math.sqrt(c)]), dtype)
    paired = (
        "target" in arrays
        and "input" in arrays
        and arrays["target"].dtype.kind == "f"
        and variant.arg("target").domain_for(options) == variant.arg("input").domain_for(options)
    )
    if paired and np.array_equal(arrays["target"], arrays["input"]):
        # Hypothesis repeats earlier draws, so a target often comes out equal to the input (a
        # loss of 0, its mean and sum 0 whatever divides them: a wasted example); the kink d = 0
        # is drawn on purpose below
        arrays["target"] = draw(
            values(variant.arg("target").domain_for(options).kind, dtype, arrays["target"].shape)
        )
    if paired and draw(st.integers(0, 7)) == 0:  # target at input, or at input ∓ a real option:
        # the kinks of |d| = β, δ
        scalars = [options[p.name] for p in variant.params if p.kind == "real"]
        offsets = [0.0, *(sign * v for v in scalars if v > 0 for sign in (1, -1))]
        offset = pick(draw, offsets)
        arrays["target"] = _at_offset(arrays["input"], offset, dtype)
    return Case(variant.loss, variant.name, dtype, arrays, options, pick(draw, list(reductions)))


@functools.cache
def _constants(key: str) -> tuple[float, ...]:
    """The small constants (0 < |c| < 1e-3) in a variant's lowered closed forms: its ε's (float32's
    1e-12 added to cosine_embedding_loss's squared norms, BCE's gradient clamp, a distance's ε).
    Read from the lowered source (the derivation cache; no SymPy)."""
    from oracle._compile import compiled

    c = compiled(key)
    src = c.value.fn.source + "".join(f.fn.source for f in c.grads.values())
    found = {abs(float(x)) for x in _NUMBER.findall(src)}
    return tuple(sorted(x for x in found if 0 < x < 1e-3))


_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?(?:e[-+]?\d+)?)(?![\w.])")


def _at_offset(x: Array, offset: float, dtype: DType) -> Array:
    """A target ``y`` with ``x - y == offset`` exactly in ``dtype`` (``x`` moved to ``offset``,
    ``y`` to 0, where rounding would miss it): the kink itself, not a neighbour."""
    if not offset:
        return x.copy()
    y = round_to(x - offset, dtype)
    missed = round_to(x - y, dtype) != offset
    x[missed] = offset
    y[missed] = 0.0
    return y


def upstream(
    shape: tuple[int, ...], dtype: DType, magnitudes: tuple[float, float] = (0.5, 2.0)
) -> st.SearchStrategy[Array]:
    """A non-unit upstream gradient: magnitudes in [1/2, 2] (or ``magnitudes``), either sign, each
    rounded to ``dtype``.

    The elements come from a NumPy generator seeded by one drawn integer: one choice for the whole
    array, where a Hypothesis choice per element (magnitude and sign) cost two, at about 25 µs
    each, and the element values are distinct, which a wrong index (a transposed Hessian, a
    gradient scattered to the wrong sample) cannot hide behind. A failure prints the array in full
    (``harness.fail``): the replay does not depend on the seed."""
    lo, hi = magnitudes

    def make(seed: int) -> Array:
        rng = np.random.default_rng(seed)
        mags = rng.uniform(lo, hi, size=shape)
        mags[mags == 1.0] = (lo + hi) / 2 if (lo + hi) / 2 != 1.0 else lo  # not the unit itself
        return round_to(np.where(rng.random(size=shape) < 0.5, -mags, mags), dtype)

    return st.integers(0, 2**32 - 1).map(make)


@st.composite
def directions(draw: st.DrawFn, variant: Variant, case: Case) -> dict[str, Array]:
    """A direction along each differentiable input of ``case``, for a Hessian-vector product.

    Consecutive inputs get magnitudes in disjoint ranges ([1/2, 1), then (1, 2]), so that no
    element's directions cancel in a loss of ``input - target`` (equal draws, Hypothesis's
    favourite, would make ``H (v_x - v_y)`` zero and hide any wrong second derivative). For a
    mean reduction there is no direction along the arguments its denominator Σ m depends on
    (``oracle.hvp``)."""
    from spec import REDUCTION_RULES

    held = REDUCTION_RULES[case.reduction].divides_by == "mean_weight"
    out: dict[str, Array] = {}
    for k, n in enumerate(case.differentiable):
        shape = np.shape(case.arrays[n])
        if held and n in variant.mean_weighted_by:
            out[n] = np.zeros(shape)
        else:
            out[n] = draw(upstream(shape, case.dtype, (0.5, 1.0) if k % 2 == 0 else (1.0, 2.0)))
    return out
