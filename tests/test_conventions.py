"""Every spec :class:`~spec.Convention` holds in the oracle and is consistent with the forward.

Proves: the oracle reproduces each convention's pinned ``points`` (value / grad_input /
grad_target, ``reduction="none"``); where a convention replaces a gradient and states
``agrees_where``, the replacement equals the plain SymPy derivative of the forward (mpmath, at
sampled points satisfying the condition); and smooth_l1 with ``beta = 0`` is exactly L1 through the
oracle (values and gradients).
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle
from spec.derive import all_variants, wrt

CONVENTIONS = [(v, c) for v in all_variants() for c in v.conventions]
POINTS = [(v, c, args, want) for v, c in CONVENTIONS for args, want in c.points]


def _ids(p: Any) -> str:
    return getattr(p, "key", None) or getattr(p, "name", None) or str(p)


@pytest.mark.parametrize(("variant", "conv", "args", "want"), POINTS, ids=_ids)
def test_convention_points_hold_in_oracle(
    variant: Any, conv: Any, args: dict[str, float], want: dict[str, float]
) -> None:
    arrays = {n: np.array([v]) for n, v in args.items() if n in {a.name for a in variant.args}}
    opts = {n: v for n, v in args.items() if n not in arrays}  # scalar options, as Python floats
    r = oracle.evaluate(variant.loss, reduction="none", **arrays, **opts)
    got = {"value": r.value, **{f"grad_{n}": g for n, g in r.grads.items()}}
    for name, expected in want.items():  # expected numbers and their provenance live in spec/
        assert float(got[name][0]) == expected, f"{conv.name}: {name} at {args}"


def _sample(rng: np.random.Generator, variant: Any) -> dict[sp.Basic, float]:
    out: dict[sp.Basic, float] = {}
    for a in variant.args:
        s = variant.symbols[a.name]
        kind = a.domain.kind
        if kind == "unit":
            v = float(
                rng.choice([rng.random(), 10.0 ** rng.uniform(-40, 0), 1 - 10.0 ** rng.uniform(-16, 0)])
            )
        elif kind == "nonnegative":
            v = float(rng.uniform(0, 3))
        elif kind == "sign":
            v = float(rng.choice([-1.0, 1.0]))
        else:
            v = float(rng.standard_normal() * 10.0 ** rng.uniform(-3, 3))
        out[s] = v
    for p in variant.params:  # real options, drawn in their domain
        if p.kind == "real":
            lo, hi = max(float(p.domain.inf), -3.0), min(float(p.domain.sup), 3.0)
            out[variant.symbols[p.name]] = float(rng.uniform(lo, hi))
    return out


WITH_GRADS = [(v, c) for v, c in CONVENTIONS if c.grads and c.agrees_where is not None]


@pytest.mark.parametrize(("variant", "conv"), WITH_GRADS, ids=_ids)
def test_convention_gradient_is_plain_derivative_where_it_agrees(variant: Any, conv: Any) -> None:
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(400):
        pt = _sample(rng, variant)
        subs = {s: sp.Float(mpmath.mpf(v), 60) for s, v in pt.items()}
        if not bool(conv.agrees_where.subs(subs)):
            continue
        for name, g in conv.grads.items():
            plain = sp.diff(variant.expr, wrt(variant, name))
            got, want = sp.N(g.subs(subs), 50), sp.N(plain.subs(subs), 50)
            assert abs(got - want) <= sp.Float(10) ** -35 * (1 + abs(want)), (conv.name, name, pt, got, want)
        checked += 1
    assert checked >= 100, f"{conv.name}: only {checked} sampled points satisfy agrees_where"


def test_agrees_where_excludes_the_convention_points() -> None:
    # bce_input_grad_floor at x = 0 (pinned point): the floored gradient is not the derivative
    v = next(v for v, c in WITH_GRADS if c.name == "bce_input_grad_floor")
    c = next(c for c in v.conventions if c.name == "bce_input_grad_floor")
    at = {v.symbols["input"]: 0, v.symbols["target"]: sp.Rational(1, 2), v.symbols["weight"]: 1}
    assert not bool(c.agrees_where.subs(at))


_f = {"allow_nan": False, "allow_infinity": False, "allow_subnormal": False}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6, **_f), st.floats(-1e6, 1e6, **_f) | st.just(0.0)),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_smooth_l1_beta_zero_is_l1(pairs: list[tuple[float, float]], tie: bool) -> None:
    x = np.array([p[0] for p in pairs])
    y = x.copy() if tie else np.array([p[1] for p in pairs])
    s = oracle.evaluate("smooth_l1_loss", x, y, beta=0.0, reduction="none")
    l1 = oracle.evaluate("l1_loss", x, y, reduction="none")
    np.testing.assert_array_equal(s.value, l1.value)
    for name in ("input", "target"):
        np.testing.assert_array_equal(s.grads[name], l1.grads[name])
