"""Compare the oracle's float64 outputs with the mpmath ground truth of :mod:`tests._mp`.

Shared by ``tests/test_ground_truth.py`` (assertions) and ``tests/measure_ulps.py`` (the report).

Error measure: ``ulps = |got - exact| / spacing(|exact|)``, with ``spacing(0)`` the smallest
subnormal (so an exact 0 must come out as 0 to within a subnormal) and an infinite exact value
required to be matched exactly.

Well-conditioned outputs: the oracle's error scale ``S`` (``Evaluation.value_scale`` /
``grad_scale``, :mod:`oracle._errscale`) bounds, to first order, the absolute rounding error of a
float evaluation of the oracle's stable closed form by ``u·S`` with one unit per rounded operation
(``u = 2**-53``). An output is *well conditioned* when ``S <= WELL * |exact|``: no step of the
computation combines terms much larger than the result, so nothing cancels and the oracle must be
accurate to a few ulp; there we require ``ulps <= MAX_ULPS``. Elsewhere (small differences of large
terms: CE near a one-hot, gradients that cancel, ...) we require ``|got - exact| <= 8·u·S``, the
oracle's own error model. ``WELL`` is chosen so that the first-order bound, ``WELL`` operations'
worth of half-ulp roundings, is at most ``MAX_ULPS``: ``u·S <= WELL·u·|exact| < WELL/2 ulp``.

Underflow: intermediates in the subnormal range round absolutely; the scale carries that
(``underflow=2**-1022``, float64's smallest subnormal in units of eps), amplified by later
divisions (BCE's input gradient ``w·(x - y) / eps`` with ``|x - y|`` subnormal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

import oracle
from spec import REGISTRY
from spec.derive import HVP, direction, variant_by_key
from tests import _mp

U = 2.0**-53
MAX_ULPS = 2.0
WELL = 4.0  # S <= 4 |exact|: first-order error bound u·S < 2 ulp
BOUND_FACTOR = 8.0
_TINY = 5e-324  # float64's smallest subnormal
HUGE = 1e154  # an input whose square overflows float64


def _numeric(a: Any) -> bool:
    return not isinstance(a, (str, bool)) and np.asarray(a).dtype.kind in "fiu"


@dataclass(frozen=True)
class Record:
    """One output (value, or one component of one gradient) at one sample."""

    key: str
    form: str  # "value" or the argument a gradient is taken w.r.t.
    sample: int
    j: int | None
    point: Mapping[str, Any]
    got: float
    exact: float
    scale: float
    #: the oracle's accepted range where a branch is within its own rounding of the boundary (the
    #: other side evaluated too, as the error model does); both ``got`` elsewhere
    lo: float = math.nan
    hi: float = math.nan
    #: the error scale with the other side's too (that evaluation's), for the range
    range_scale: float = math.nan

    @property
    def ulps(self) -> float:
        return ulp_error(self.got, self.exact)

    @property
    def well_conditioned(self) -> bool:
        return math.isfinite(self.exact) and self.scale <= WELL * abs(self.exact)

    @property
    def bound_ratio(self) -> float:
        """Error over the bound ``8·u·S`` (<= 1 passes)."""
        if self.got == self.exact or (math.isnan(self.got) and math.isnan(self.exact)):
            return 0.0
        if not (math.isfinite(self.exact) and math.isfinite(self.got)):
            return math.inf
        # 8·u·S plus two subnormal ulps for underflow (a bound below the subnormal range is 0)
        bound = BOUND_FACTOR * U * self.scale + 2 * _TINY
        return abs(self.got - self.exact) / bound

    @property
    def unbounded(self) -> bool:
        """The oracle claims no bound (its error scale overflows float64: terms beyond float64's
        range even in extended precision, where the harness accepts any answer), legitimately only
        where an input's square overflows float64 (|x| > 1e154: a squared distance of 1e300 beside
        2^1024, which extended precision's 64 bits cannot tell apart; test_triplet,
        --hypothesis-seed=1). docs/error-model.md, "Non-finite results"."""
        huge = any(
            np.any(np.abs(np.asarray(a, np.float64)) > HUGE) for a in self.point.values() if _numeric(a)
        )
        return not math.isfinite(self.scale) and huge

    @property
    def ok(self) -> bool:
        if self.well_conditioned and self.ulps <= MAX_ULPS:
            return True
        if self.unbounded:
            return True
        if not self.well_conditioned and self.bound_ratio <= 1.0:
            return True
        # a decision on a margin within the oracle's own rounding of its boundary (a kink at
        # -y(x1 - x2) + margin = (1e-300 + 1) - 1): either side is the oracle's answer
        # (the other side may round to the same value, the flipped scale tells it was evaluated)
        flipped = math.isfinite(self.range_scale) and self.range_scale > self.scale
        if (self.lo < self.hi or flipped) and math.isfinite(self.exact):
            sc = max(self.scale, self.range_scale) if math.isfinite(self.range_scale) else self.scale
            bound = BOUND_FACTOR * U * sc + 2 * _TINY
            return self.lo - bound <= self.exact <= self.hi + bound
        return False

    def describe(self) -> str:
        comp = "" if self.j is None else f"[{self.j}]"
        return (
            f"{self.key} {self.form}{comp} at {dict(self.point)}: got {self.got!r}, exact {self.exact!r}, "
            f"{self.ulps:.3g} ulp, scale {self.scale:.3g}, error/bound {self.bound_ratio:.3g}"
        )


def ulp_error(got: float, exact: float) -> float:
    if got == exact or (math.isnan(got) and math.isnan(exact)):
        return 0.0
    if not (math.isfinite(got) and math.isfinite(exact)):
        return math.inf
    return abs(got - exact) / float(np.spacing(abs(exact)))


def call_oracle(
    key: str, arrays: Mapping[str, Any], params: Mapping[str, Any], branch_tol: float | None = None
) -> oracle.Evaluation:
    v = variant_by_key(key)
    kwargs = {k: np.asarray(a) for k, a in arrays.items() if a is not None}
    if HVP in v.name:  # second order: the directions are arrays of the hvp variant
        dirs = {n: kwargs.pop(direction(n)) for n in v.differentiable if direction(n) in kwargs}
        return oracle.hvp(
            v.loss, directions=dirs, reduction="none", underflow=2.0**-1022, branch_tol=branch_tol,
            bounds=True, **kwargs, **{**v.selects, **params},
        )  # fmt: skip
    # underflow: float64's smallest subnormal in units of eps (see oracle._errscale.UNDERFLOW)
    return oracle.evaluate(
        v.loss, reduction="none", underflow=2.0**-1022, branch_tol=branch_tol, bounds=True, **kwargs,
        **{**v.selects, **params},
    )  # fmt: skip


def _lohi(ev: oracle.Evaluation, form: str, at: tuple[int, ...]) -> dict[str, float]:
    lo, hi = (ev.value_lo, ev.value_hi) if form == "value" else (ev.grad_lo[form], ev.grad_hi[form])
    sc = ev.value_scale if form == "value" else ev.grad_scale[form]
    return {
        "lo": float(np.asarray(lo)[at]),
        "hi": float(np.asarray(hi)[at]),
        "range_scale": float(np.broadcast_to(np.asarray(sc), np.shape(lo))[at]),
    }


def records(key: str, arrays: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> list[Record]:
    """Every output of the oracle at ``arrays`` (batched: element-wise 1-d, or (N, C) with class
    axis last) next to its ground truth, one :class:`Record` each."""
    params = dict(params or {})
    v = variant_by_key(key)
    ev = call_oracle(key, arrays, params)
    # the same evaluation, with either side of a branch within float64's K·eps of its boundary
    evb = call_oracle(key, arrays, params, branch_tol=4 * 2.0**-52)
    x = np.asarray(arrays[REGISTRY[v.loss].tensors[0]])
    n = x.shape[0]
    out: list[Record] = []
    for s in range(n):
        point: dict[str, Any] = dict(params)
        for name, a in arrays.items():
            if a is None:
                continue
            arr = np.asarray(a)
            if v.sample_axis is not None:
                point[name] = _sample_value(v, name, arr, s)
            else:
                point[name] = float(np.broadcast_to(arr, x.shape)[s])
        out.append(
            Record(
                key,
                "value",
                s,
                None,
                point,
                float(ev.value[s]),
                _mp.exact(key, "value", point),
                float(ev.value_scale[s]),
                **_lohi(evb, "value", (s,)),
            )
        )
        for name in v.differentiable:
            if name not in ev.grads or (v.sample_axis is not None and name == "weight"):
                continue  # not given; a class weight's gradient sums over the samples: below
            g, sc = ev.grads[name], ev.grad_scale[name]
            if v.roles[name].role == "axis":
                for jj in range(x.shape[1]):
                    out.append(
                        Record(
                            key,
                            name,
                            s,
                            jj,
                            point,
                            float(g[s, jj]),
                            _mp.exact(key, name, point, j=jj),
                            float(sc[s, jj]),
                            **_lohi(evb, name, (s, jj)),
                        )
                    )
            else:
                g_s = np.broadcast_to(g, x.shape)[s]
                sc_s = np.broadcast_to(sc, x.shape)[s]
                lo = float(np.broadcast_to(evb.grad_lo[name], x.shape)[s])
                hi = float(np.broadcast_to(evb.grad_hi[name], x.shape)[s])
                exact = _mp.exact(key, name, point)
                out.append(Record(key, name, s, None, point, float(g_s), exact, float(sc_s), lo, hi))
    if v.sample_axis is not None and "weight" in ev.grads:
        # the gradient w.r.t. a class weight: Σ over the samples of each sample's component
        points = [_point(v, arrays, params, s) for s in range(n)]
        for jj in range(x.shape[-1]):
            total = sum(_mp.exact_mp(key, "weight", pt, j=jj) for pt in points)
            g, sc = ev.grads["weight"], ev.grad_scale["weight"]
            out.append(
                Record(
                    key, "weight", -1, jj, points[0], float(g[jj]), _mp.to_float(total), float(sc[jj]),
                    **_lohi(evb, "weight", (jj,)),
                )
            )  # fmt: skip
    return out


def _sample_value(v: Any, name: str, arr: Any, s: int) -> Any:
    """Sample ``s`` of argument ``name`` of a batched class-axis (or feature-axis) variant, as
    :mod:`tests._mp` takes it: a list along the axis (class weights whole), a class index, a
    per-sample float, or an index set as the count of each class before its first -1 (counted
    here, independently of the oracle)."""
    role = v.roles[name].role
    if role == "axis" and v.roles[name].optional:
        return arr.tolist()
    if role == "index_set":
        counts = [0] * arr.shape[-1]
        for t in arr[s].tolist():
            if t == -1:
                break
            counts[t] += 1
        return counts
    if role == "index":
        return int(arr[s])
    if role == "element":
        return float(arr[s])
    return arr[s].tolist()


def _point(v: Any, arrays: Mapping[str, Any], params: Mapping[str, Any], s: int) -> dict[str, Any]:
    """Sample ``s`` of a batch of a class-axis variant as an mpmath point."""
    point: dict[str, Any] = dict(params)
    for name, a in arrays.items():
        if a is not None:
            point[name] = _sample_value(v, name, np.asarray(a), s)
    return point
