"""Ground truth: the RAW spec closed forms evaluated with mpmath at increasing precision.

Nothing here uses the oracle's stable rewrites or its NumPy lowering: ``spec.derive.raw(key)`` gives
the value and gradients (convention overrides included) straight from the spec's expression, and
this module evaluates them exactly enough to round to float64.

A point is a mapping from argument / option name to a float (element-wise arguments, scalar
options), a sequence of floats (class-axis arguments, one per class) or an int (the class-index
target). Missing optional arguments and options take their spec defaults (weights 1). Floats enter
mpmath exactly (``mpf(float)`` is exact).

Precision: the raw forms cancel (``log(e^100 + 2) - 100`` keeps 6 of 50 digits), so each result is
computed at a working precision ``dps0`` chosen from the point (enough digits to resolve ``e^-spread``
next to the largest term and the smallest non-zero input next to 1), then at higher precisions until
two consecutive results agree to a relative 1e-30 (or are identical: exact 0, ±inf, nan). A result that
never stabilises raises :class:`Unstable`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from functools import cache
from typing import Any

import mpmath
import sympy as sp

import spec
from spec.derive import raw, variant_by_key

Point = Mapping[str, Any]
_AGREE = mpmath.mpf(10) ** -30
_LN10 = math.log(10)


class Unstable(ArithmeticError):
    """The raw closed form did not settle as the working precision grew."""


def normalize(key: str, point: Point) -> dict[str, Any]:
    """``point`` with every argument and option of the variant present (spec defaults filled in)."""
    v = variant_by_key(key)
    out = dict(point)
    first = spec.REGISTRY[v.loss].tensors[0]
    c = len(point[first]) if v.sample_axis is not None else None
    for a in v.args:
        if a.name not in out or out[a.name] is None:
            if not a.optional:
                raise KeyError(f"{key}: point lacks {a.name!r}")
            out[a.name] = [1.0] * c if v.roles[a.name].role == "axis" else 1.0  # type: ignore[operator]
    for p in v.params:
        out.setdefault(p.name, p.default)
    return out


def _classes(key: str, point: Point) -> tuple[int | None, int | None]:
    v = variant_by_key(key)
    if v.sample_axis is None:
        return None, None
    index = [n for n, r in v.roles.items() if r.role == "index"]
    t = int(point[index[0]]) if index else None
    return len(point[spec.REGISTRY[v.loss].tensors[0]]), t


@cache
def _compiled(
    key: str, form: str, c: int | None, t: int | None, jj: int | None
) -> tuple[tuple[str, ...], Callable[..., Any]]:
    """The raw form as an mpmath function of plain symbols ``input_0, ..., weight_2, beta``."""
    v = variant_by_key(key)
    f = raw(key)
    e = f.value if form == "value" else f.grads[form]
    if c is not None:
        e = e.subs(spec.C, c)
        if t is not None:
            (index,) = (n for n, r in v.roles.items() if r.role == "index")
            e = e.subs(v.symbols[index], t)
        if jj is not None:
            e = e.subs(spec.j, jj)
        e = e.doit()
        e = e.replace(
            lambda s: isinstance(s, sp.Indexed),
            lambda s: sp.Symbol(f"{s.base.label}_{int(s.indices[0])}", real=True),
        )
    left = {s for s in e.free_symbols if s in (spec.C, spec.j, spec.k, spec.i, spec.l)}
    if left or e.has(sp.Sum, sp.Indexed, sp.KroneckerDelta):
        raise AssertionError(f"{key} {form}: unsubstituted class-axis symbols in {e}")
    names = tuple(sorted(str(s) for s in e.free_symbols))
    return names, sp.lambdify([sp.Symbol(n, real=True) for n in names], e, modules=[_MP_FUNCS, "mpmath"])


def _mp_xlogy(x: Any, y: Any) -> Any:
    return mpmath.mpf(0) if x == 0 else x * mpmath.log(y)


def _mp_heaviside(z: Any, h0: Any = 0.5) -> Any:
    return mpmath.mpf(1) if z > 0 else mpmath.mpf(0) if z < 0 else mpmath.mpf(h0)


def _mp_hinge(v: Any, h0: Any) -> Any:
    return v if v > 0 else mpmath.mpf(0)


def _mp_root(s: Any, p: Any) -> Any:
    return mpmath.mpf(0) if s == 0 else s ** (1 / mpmath.mpf(p))


def _mp_clamped(v: Any, lo: Any) -> Any:
    return max(v, lo)


#: the spec's own functions (``spec._core``) and SymPy's Heaviside in mpmath
_MP_FUNCS = {
    "xlogy": _mp_xlogy,
    "Heaviside": _mp_heaviside,
    "hinge": _mp_hinge,
    "root": _mp_root,
    "clamped": _mp_clamped,
}


def _flat(key: str, point: Point) -> dict[str, float]:
    """Scalar values by the plain symbol names of :func:`_compiled`."""
    v = variant_by_key(key)
    flat: dict[str, float] = {}
    for a in v.args:
        val = point[a.name]
        if v.roles[a.name].role in ("axis", "index_set"):  # an index set: its counts per class
            flat.update({f"{a.name}_{n}": float(x) for n, x in enumerate(val)})
        elif v.roles[a.name].role == "element":
            flat[a.name] = float(val)
    for p in v.params:
        flat[p.name] = float(point[p.name])
    return flat


def working_dps(key: str, point: Point) -> int:
    """A starting precision that resolves every cancellation the raw forms can make at ``point``.

    Logits enter through ``exp``: a term ``e^-s`` beside terms of size ``e^0`` needs ``s / ln 10``
    digits, ``s`` the spread of the logits (CE) or ``|x|`` (``1 - σ(x)`` of BCE-with-logits). Other
    inputs enter through sums like ``1 - x``: a non-zero input ``x`` beside 1 needs ``|log10 x|``
    digits, and large ones need ``log10 |x|`` more for their size.
    """
    v = variant_by_key(key)
    digits = 0.0
    for val in _flat(key, point).values():
        if val != 0 and math.isfinite(val):
            digits = max(digits, abs(math.log10(abs(val))))
    first = spec.REGISTRY[v.loss].tensors[0]
    if spec.REGISTRY[v.loss].family == "classification" and v.arg(first).domain.kind == "real":  # logits
        xs = [float(x) for x in (point[first] if v.sample_axis is not None else [point[first]])]
        # the spread (softmax) and each logit's own size (a per-class sigmoid: 1 - σ(x_k))
        digits += max(max(xs) - min(xs), max(abs(x) for x in xs)) / _LN10
    return 40 + math.ceil(digits)


def _agree(a: Any, b: Any, atol: Any = 0) -> bool:
    if a == b or (mpmath.isnan(a) and mpmath.isnan(b)):  # nan: e.g. weight 0 times an infinite log
        return True
    if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
        return False
    return abs(a - b) <= max(_AGREE * max(abs(a), abs(b)), atol)


def _settle(
    fn: Callable[[int], Any], dps0: int, steps: int = 5, atol: Any = 0, terms: Any = 1
) -> tuple[Any, int]:
    """``fn(dps)`` at increasing precision until two consecutive results agree; (result, dps).

    An exact zero reached by cancellation (uniform logits with label_smoothing 1: ``1/3 - 1/3``)
    shows as rounding noise that shrinks with the precision: two consecutive results each below
    ``10^(20 - dps)·terms`` (``terms`` bounds the size of what is combined) settle to 0. ``dps0``
    leaves a genuine non-zero result well above that (see :func:`working_dps`).
    """
    prev: Any = None
    prev_noise = False
    dps = dps0
    for _ in range(steps):
        try:
            with mpmath.workdps(dps):
                cur = +fn(dps)
        except ZeroDivisionError:  # e.g. 1 - σ(x) rounded to 0 at this precision
            cur = None
        if cur is not None and prev is not None and _agree(prev, cur, atol):
            return cur, dps
        noise = cur is not None and mpmath.isfinite(cur) and abs(cur) <= mpmath.mpf(10) ** (20 - dps) * terms
        if noise and prev_noise:
            return mpmath.mpf(0), dps
        prev, prev_noise = cur, noise
        dps = dps + max(60, dps // 2)
    raise Unstable(f"no agreement up to {dps} digits (last {prev})")


def exact_mp(key: str, form: str, point: Point, j: int | None = None) -> Any:
    """The raw ``form`` ("value" or a gradient's argument name, component ``j`` for a class-axis
    argument) at ``point``, as an mpmath number accurate to ~30 digits."""
    point = normalize(key, point)
    c, t = _classes(key, point)
    names, f = _compiled(key, form, c, t, j)
    flat = _flat(key, point)
    args = [mpmath.mpf(flat[n]) for n in names]
    return _settle(lambda _d: f(*args), working_dps(key, point), terms=_terms(flat))[0]


def _terms(flat: Mapping[str, float]) -> Any:
    """A bound on the size of the terms a raw form combines at these inputs (products of two)."""
    big = max((abs(v) for v in flat.values() if math.isfinite(v)), default=0.0)
    return mpmath.mpf(1.0 + big) ** 2


def to_float(x: Any) -> float:
    """Round an mpmath real to the nearest float64 (ties to even; subnormals and overflow exact)."""
    if not mpmath.isfinite(x):
        return float(x)
    sign, man, exp, _ = mpmath.mpf(x)._mpf_
    q = Fraction(-int(man) if sign else int(man)) * Fraction(2) ** int(exp)
    try:
        return float(q)  # Fraction -> int / int true division: correctly rounded, subnormals too
    except OverflowError:
        return -math.inf if sign else math.inf


def exact(key: str, form: str, point: Point, j: int | None = None) -> float:
    """:func:`exact_mp` rounded to float64."""
    return to_float(exact_mp(key, form, point, j))


def fd_grad(key: str, point: Point, name: str, j: int | None = None) -> float:
    """Central finite difference of the raw VALUE w.r.t. ``name`` (component ``j``), float64.

    Step ``h = 1e-40·|x|`` (``1e-40`` at 0), so the truncation error ``h² f'''/6`` stays ~1e-80
    relative even next to a singularity at distance ~|x| (``-log x`` at ``x = 1e-300``); the working
    precision adds 120 digits to resolve the difference, and a derivative that is 0 settles to
    within ``1e-60·(1 + |f|)``. Only meaningful where the raw value is
    smooth within ``h`` of the point: callers skip kinks and clamps.
    """
    point = normalize(key, point)
    c, t = _classes(key, point)
    names, f = _compiled(key, "value", c, t, None)
    flat = _flat(key, point)
    var = f"{name}_{j}" if j is not None else name
    if var not in names:
        return 0.0
    x0 = flat[var]
    pos = names.index(var)

    def diff(dps: int) -> Any:
        h = mpmath.mpf(10) ** -40 * (abs(mpmath.mpf(x0)) or 1)
        args = [mpmath.mpf(flat[n]) for n in names]
        lo, hi = list(args), list(args)
        lo[pos] -= h
        hi[pos] += h
        return (f(*hi) - f(*lo)) / (2 * h)

    atol = mpmath.mpf(10) ** -60 * (1 + abs(exact_mp(key, "value", point)))
    return to_float(_settle(diff, working_dps(key, point) + 120, atol=atol)[0])


__all__: Sequence[str] = ["Unstable", "exact", "exact_mp", "fd_grad", "normalize", "to_float"]
