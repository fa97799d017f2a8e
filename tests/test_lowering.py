"""The lowering (``oracle/_lower.py``) against a plain element-by-element evaluation.

Every registered expression (the raw value and gradients of each variant, and the stable forms the
oracle evaluates), and a set of nested, multi-limit, pairwise and indexed sums written for the
purpose, is evaluated (a) through the vectorised lowering on a small random batch and (b) one
sample and one gradient component at a time: the class count substituted, every sum expanded
(``doit``), every array element substituted, evaluated by SymPy at 30 digits. They must agree for
every class count from 1 to 4.

The tolerance: (a) is float64 arithmetic on moderate inputs (|x| <= 3, no cancellation beyond a
few terms), so it agrees with (b) to a few ulp of the terms' magnitude; 1e-9 relative to
``1 + |b|`` leaves a margin of 10⁶ over that, while a mis-lowering (a sum taken over the wrong
axis, a missing index) is off by O(1).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import sympy as sp

import oracle
from oracle._compile import compiled, stable_forms
from oracle._lower import lower
from oracle._stable import elementary
from spec import C, i, j, k
from spec.derive import all_variants, raw

Array = np.ndarray[Any, Any]
x, w = sp.IndexedBase("input", real=True), sp.IndexedBase("weight", real=True)
t = sp.Symbol("target", integer=True)
a = sp.Symbol("alpha", real=True)
N = 2  # samples in the batch
TOL = 1e-9


def _sum(f: sp.Expr, *dummies: sp.Symbol) -> sp.Expr:
    return sp.Sum(f, *((d, 0, C - 1) for d in dummies))


#: hand-written forms: name -> expression (free j: one value per component)
WRITTEN: dict[str, sp.Expr] = {
    "double sum Σ_i Σ_k x_i x_k": _sum(_sum(x[i] * x[k], k), i),
    "two limits Σ_{i,k} x_i x_k": _sum(x[i] * x[k], i, k),
    "pairwise hinge Σ_i Σ_k max(0, 1 - (x_i - x_k))": _sum(_sum(sp.Max(0, 1 - (x[i] - x[k])), k), i),
    "product of sums Σ_k w_k x_k · Σ_i x_i": _sum(w[k] * x[k], k) * _sum(x[i], i),
    "nested Σ_i x_i Σ_k (x_k - x_i)²": _sum(x[i] * _sum((x[k] - x[i]) ** 2, k), i),
    "indexed x[t] Σ_k w_k x_k": x[t] * _sum(w[k] * x[k], k),
    "delta Σ_k δ(k, t) exp(x_k)": _sum(sp.KroneckerDelta(k, t) * sp.exp(x[k]), k),
    "two-dummy delta Σ_i Σ_k δ(i, k) x_i x_k": _sum(sp.KroneckerDelta(i, k) * x[i] * x[k], i, k),
    "constant summand Σ_k α": _sum(a, k),
    "component x_j Σ_k x_k": x[j] * _sum(x[k], k),
    "component Σ_k exp(x_k - x_j)": _sum(sp.exp(x[k] - x[j]), k),
    "component pairwise Σ_k max(0, x_k - x_j) w_j": _sum(sp.Max(0, x[k] - x[j]), k) * w[j],
    "component delta δ(j, t) - x_j / C": sp.KroneckerDelta(j, t) - x[j] / C,
    "branch on a sum: Piecewise(Σx if Σx > 0 else -Σx)": sp.Piecewise(
        (_sum(x[k], k), _sum(x[k], k) > 0), (-_sum(x[k], k), True)
    ),
}


def _env(c: int, rng: np.random.Generator, names: tuple[str, ...], index: frozenset[str]) -> dict[str, Any]:
    env: dict[str, Any] = {"_C": c, "_underflow": np.float64(0.0)}
    for n in names:
        if n in index:
            env[n] = rng.integers(0, c, size=N)
        elif n == "weight":
            env[n] = rng.uniform(0.25, 2.0, size=c)  # (C): one per class, no batch dim
        elif n in ("input", "target"):
            env[n] = rng.uniform(-3, 3, size=(N, c))
        else:  # a scalar option
            env[n] = np.float64(rng.uniform(0.0, 0.75))
    return env


def _elementwise(e: sp.Expr, env: dict[str, Any], c: int, n: int, jj: int | None) -> float:
    """``e`` for sample ``n`` (component ``jj``), expanded and evaluated by SymPy."""
    e = elementary(e).subs(C, c)
    if jj is not None:
        e = e.subs(j, jj)
    arrays = {str(b.label) for b in e.atoms(sp.IndexedBase)}
    scalars: dict[sp.Basic, Any] = {}
    for s in e.free_symbols:
        if isinstance(s, sp.Symbol) and s.name not in arrays:
            val = env[s.name]
            val = val[n] if np.ndim(val) else val
            if isinstance(val, (bool, np.bool_)):  # a flag: the condition of a Piecewise
                scalars[s] = sp.true if val else sp.false
            else:
                scalars[s] = sp.Integer(int(val)) if s.is_integer else sp.Float(float(val), 30)
    e = e.xreplace(scalars).doit()
    elements: dict[sp.Basic, Any] = {}
    for s in e.atoms(sp.Indexed):
        arr = env[str(s.base.label)]
        m = int(s.indices[0])
        elements[s] = sp.Float(float(arr[m] if arr.ndim == 1 else arr[n, m]), 30)
    return float(sp.N(e.xreplace(elements).doit(), 30))


def _check(e: sp.Expr, names: tuple[str, ...], index: frozenset[str], what: str, env_for: Any = None) -> None:
    free_j = j in e.free_symbols
    lowered = lower(e, names, index, out=(j,))
    rng = np.random.default_rng(abs(hash(what)) % 2**32)
    for c in range(1, 5):
        env = env_for(c, rng) if env_for is not None else _env(c, rng, names, index)
        got = np.broadcast_to(np.asarray(lowered(env), np.float64), (N, c))
        for n in range(N):
            for jj in range(c) if free_j else (None,):
                want = _elementwise(e, env, c, n, jj)
                have = float(got[n, jj if jj is not None else 0])
                assert abs(have - want) <= TOL * (1 + abs(want)), (what, c, n, jj, have, want, lowered.source)


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_written_forms_lower_exactly(name: str) -> None:
    e = WRITTEN[name]
    names = tuple(sorted({str(s.label) for s in e.atoms(sp.IndexedBase)} | {"alpha", "target"}))
    _check(e, names, frozenset({"target"}), name)


def test_the_review_counterexample() -> None:
    """Σ_i Σ_k x_i·x_k at x = [1, 2, 3] is 36 (the old lowering gave 14)."""
    f = lower(WRITTEN["double sum Σ_i Σ_k x_i x_k"], ("input",), frozenset(), out=(j,))
    assert float(np.asarray(f({"input": np.array([[1.0, 2.0, 3.0]]), "_C": 3}))[0, 0]) == 36.0


CLASS_VARIANTS = [v for v in all_variants() if v.sample_axis is not None]


def _forms(v: Any) -> list[tuple[str, sp.Expr]]:
    r, s = raw(v.key), stable_forms(v)
    return [("raw value", r.value), *((f"raw grad {n}", g) for n, g in r.grads.items()),
            ("stable value", s.value), *((f"stable grad {n}", g) for n, g in s.grads.items())]  # fmt: skip


def _variant_env(v: Any, c: int, rng: np.random.Generator, flags: dict[str, bool]) -> dict[str, Any]:
    """Arrays for every argument of ``v`` by its role: along the axis (N, C), class weights (C),
    class indices (N), index sets as counts (N, C), per-sample labels (N); options in their
    domains (choices and flags as given)."""
    env: dict[str, Any] = {"_C": c, "_underflow": np.float64(0.0)}
    for a in v.args:
        role = v.roles[a.name].role
        if role == "index":
            env[a.name] = rng.integers(0, c, size=N)
        elif role == "index_set":
            env[a.name] = rng.integers(0, 3, size=(N, c)).astype(np.float64)
        elif role == "element":
            env[a.name] = (
                rng.choice([-1.0, 1.0], size=N) if a.domain.kind == "sign" else rng.uniform(-3, 3, N)
            )
        elif a.optional:
            env[a.name] = rng.uniform(0.25, 2.0, size=c)
        else:
            lo, hi = (0.0, 1.0) if a.domain.kind in ("unit", "probabilities") else (-3.0, 3.0)
            env[a.name] = rng.uniform(lo, hi, size=(N, c))
    for p in v.params:
        if p.kind == "flag":
            env[p.name] = np.bool_(flags[p.name])
        elif p.kind == "choice":
            env[p.name] = rng.choice(list(p.choices))
        elif p.integer:
            env[p.name] = np.int64(-100)
        else:
            lo = max(float(p.domain.inf), 0.0)
            env[p.name] = np.float64(rng.uniform(lo if lo > 0 else 0.0, lo + 0.75))
    return env


@pytest.mark.parametrize("variant", CLASS_VARIANTS, ids=lambda v: v.key)
def test_registered_class_axis_forms_lower_exactly(variant: Any) -> None:
    c = compiled(variant.key)
    names = tuple(a.name for a in variant.args) + tuple(p.name for p in variant.params)
    index = frozenset(n for n, r in variant.roles.items() if r.role == "index")
    flag_names = [p.name for p in variant.params if p.kind == "flag"]
    for on in itertools.product((False, True), repeat=len(flag_names)):
        flags = dict(zip(flag_names, on, strict=True))
        for what, e in _forms(variant):
            _check(
                e,
                names,
                index,
                f"{variant.key} {what} {flags}",
                env_for=lambda cc, rng, flags=flags: _variant_env(variant, cc, rng, flags),
            )
    assert c.value.fn.labels == (j,)


def test_unsupported_forms_raise() -> None:
    for bad in (
        sp.Sum(x[k], (k, 1, C - 1)),  # a partial sum
        sp.Sum(x[k] * k, (k, 0, C - 1)),  # a dummy used as a number
        x[k],  # a free dummy the result has no dim for
        sp.Function("mystery")(x[j]),
    ):
        with pytest.raises(NotImplementedError):
            lower(bad, ("input",), frozenset(), out=(j,))


ELEMENTWISE_VARIANTS = [v for v in all_variants() if v.sample_axis is None]


@pytest.mark.parametrize("variant", ELEMENTWISE_VARIANTS, ids=lambda v: v.key)
def test_registered_elementwise_forms_lower_exactly(variant: Any) -> None:
    """Element-wise variants: no labelled dims; each element evaluated alone."""
    names = tuple(a.name for a in variant.args) + tuple(p.name for p in variant.params)
    flags = [p for p in variant.params if p.kind == "flag"]
    for on in itertools.product((False, True), repeat=len(flags)):  # every formula a flag selects
        options = {p.name: v for p, v in zip(flags, on, strict=True)}
        rng = np.random.default_rng(7)
        env: dict[str, Any] = {"_C": 1, "_underflow": np.float64(0.0)}
        for arg in variant.args:
            kind = arg.domain_for(options).kind
            lo, hi = _RANGES.get(kind, (0.25, 2.0) if arg.optional else (-3, 3))
            env[arg.name] = rng.uniform(lo, hi, size=N)
        for p in variant.params:
            if p.kind == "flag":
                env[p.name] = np.bool_(options[p.name])
            else:
                env[p.name] = np.float64(p.default if p.default else 0.5)
        for what, e in _forms(variant):
            got = np.broadcast_to(np.asarray(lower(e, names, frozenset(), out=())(env), np.float64), (N,))
            for n in range(N):
                at = {m: np.asarray(env[m])[n] if np.ndim(env[m]) else env[m] for m in names}
                subs = {
                    variant.symbols[m]: sp.true
                    if v is np.True_
                    else sp.false
                    if v is np.False_
                    else sp.Float(float(v), 30)
                    for m, v in at.items()
                }
                want = float(sp.N(elementary(e).xreplace(subs).doit(), 30))
                assert abs(got[n] - want) <= TOL * (1 + abs(want)), (
                    variant.key,
                    options,
                    what,
                    n,
                    got[n],
                    want,
                )


#: the range drawn for each domain kind (inside it, away from its singular points)
_RANGES = {
    "unit": (0.05, 0.95),
    "probabilities": (0.05, 0.95),
    "nonnegative": (0.25, 2.0),
    "positive": (0.25, 2.0),
    "log_probability": (-3.0, -0.1),
}


def test_flag_option_selects_a_formula_without_a_switch() -> None:
    """A flag (``spec.flag``: log_target, full, swap) is a boolean symbol in a Piecewise: lowered as
    a plain selection, with no branch switch (it is the caller's choice, not a comparison)."""
    flag = sp.Symbol("log_target")
    y = sp.Symbol("target", real=True)
    e = sp.Piecewise((sp.exp(y) * (y - a), flag), (y * (sp.log(y) - a), True))
    f = lower(e, ("target", "alpha", "log_target"), frozenset(), out=())
    assert f.switches == ()
    env = {"target": np.array([0.5, 2.0]), "alpha": np.float64(0.25), "_C": 1}
    for on in (False, True):
        got = f({**env, "log_target": np.bool_(on)})
        for n, yv in enumerate(env["target"]):
            want = float(e.subs({flag: on, y: yv, a: 0.25}))
            assert abs(got[n] - want) <= TOL * (1 + abs(want)), (on, n, got[n], want)


def test_a_repeated_comparison_is_one_switch_not_a_flag() -> None:
    """A comparison in two Piecewises (huber's second derivatives, ±[δ > |d|]) becomes one common
    subexpression, a boolean temporary: it is still a branch with a switch (its other side reachable
    near the boundary), one decision for both, not a flag (found by the second-order check: bfloat16
    rounds d = 1 - 2^-9 to δ = 1, where torch takes the linear side)."""
    x, y, vx, vy = (sp.Symbol(n, real=True) for n in ("input", "target", "v_input", "v_target"))
    cond = sp.Symbol("delta", positive=True) > sp.Abs(x - y)
    e = vx * sp.Piecewise((1, cond), (0, True)) + vy * sp.Piecewise((-1, cond), (0, True))
    f = lower(e, ("input", "target", "v_input", "v_target", "delta"), frozenset(), out=())
    assert len(f.switches) == 1
    env = {"input": np.array([1.0, 0.0]), "target": np.array([2.0**-9, 0.0]), "v_input": np.float64(0.5),
           "v_target": np.float64(2.0), "delta": np.float64(1.0), "_C": 1}  # fmt: skip
    assert list(f(env)) == [-1.5, -1.5]
    assert list(f(env, {0: np.array([True, False])})) == [0.0, -1.5]  # both Piecewises flipped


def test_a_kink_met_exactly_is_decided_and_one_rounded_onto_is_not() -> None:
    """smooth_l1's second derivative at x - y = β, computed exactly, is the linear side's (0, as
    torch's ``|d| < β`` takes it): no branch tolerance there, or a backward taking ``<=`` (1/β)
    would pass. Where x - y only rounds onto β (bfloat16: 1 - 2^-9 rounds to 1), either side."""
    import oracle

    def hessian(x: list[float], y: list[float], tol: float) -> tuple[np.ndarray, np.ndarray]:
        ev = oracle.hvp(
            "smooth_l1_loss", np.array(x), np.array(y), beta=1.0, reduction="sum",
            directions={"input": np.ones(len(x))}, wrt=("input",), branch_tol=tol,
        )  # fmt: skip
        return ev.grad_lo["input"], ev.grad_hi["input"]

    lo, hi = hessian([1.5, -0.25], [0.5, 0.75], 4 * 2.0**-52)  # x - y = ±β, exactly
    assert list(lo) == list(hi) == [0.0, 0.0]
    lo, hi = hessian([1.0], [2.0**-9], 4 * 2.0**-7)  # 1 - 2^-9, within bfloat16's rounding of β
    assert list(lo) == [0.0] and list(hi) == [1.0]


def test_error_scale_of_a_multi_limit_sum_lowers() -> None:
    """The error scale of Σ_{i,k} f is that of Σ_i Σ_k f (every limit counted, none dropped)."""
    from oracle._errscale import scale

    two = _sum(x[i] * x[k], i, k)
    nested = _sum(_sum(x[i] * x[k], i), k)
    env = {"input": np.array([[1.0, -2.0, 3.0]]), "_C": 3, "_underflow": np.float64(0.0)}
    s_two = lower(scale(two), ("input", "_underflow"), frozenset(), out=(j,))(env)
    s_nested = lower(scale(nested), ("input", "_underflow"), frozenset(), out=(j,))(env)
    assert np.array_equal(s_two, s_nested) and float(np.asarray(s_two).ravel()[0]) > 0


def test_a_steps_halves_flip_together() -> None:
    """A decision near its boundary is also taken wholly the other way, not only to the tie: the
    swap's min in triplet_margin_with_distance_loss differentiates to a step written as two halves
    (H(m > 0) + H(m >= 0))/2. At this case (a false alarm of the default profile, seed 4077881734,
    bfloat16) d(a, n) = 292033 < d(p, n) = 292657 exactly, but bfloat16 rounds p - n = -313 to
    -312 and torch takes the swap: ∂L/∂n = 2(p - n) = [-624, 624, -626, 0, 0] in float64. Flipping
    one half alone gives the tie's average; all near decisions at once also flip the hinge (near
    too): neither is that side."""
    a = np.zeros((1, 5))
    p = np.array([[-312.0, 0, -312, -312, -312]])
    n = np.array([[0.0, -312, 1, -312, -312]])
    e = oracle.evaluate(
        "triplet_margin_with_distance_loss", a, p, n, distance_function="squared_euclidean_distance",
        margin=1.0, swap=True, reduction="sum", branch_tol=2.0**-5, bounds=True,
    )  # fmt: skip
    swap_side = 2 * (p - n)
    np.testing.assert_array_equal(e.grads["negative"], 2 * (a - n))  # the exact decision: no swap
    assert (e.grad_lo["negative"] <= swap_side).all() and (swap_side <= e.grad_hi["negative"]).all()


def test_a_flip_undefined_alone_is_left_out_of_the_combination() -> None:
    """Every near decision at once, less those whose flip alone is undefined (NaN). At this case
    (a false alarm of the default profile, seed 2913129960, float64) d(a, p) = 1 - 1e-22 and
    d(a, n), d(p, n) = 1 + ~1e-215 all round to 1: torch takes the hinge (1 - 1 + margin > 0) and
    splits the tie of the swap's minimum, ∂L/∂n = -2.5e7 (torch 2.13.0+cpu, upstream 0.5). The
    negative's squared norm (1e-445) underflows, so its decision is near too, and its flip alone
    is NaN (a zero norm's branch): the whole combination was NaN, and the accepted range was the
    hinge's flip alone, [-5e-15, 0]."""
    a, p, n = np.array([-1.0, 0.0]), np.array([-1e-30, 0.0]), np.array([3.0930752028968646e-223, 0.0])
    e = oracle.evaluate(
        "triplet_margin_with_distance_loss", a, p, n, distance_function="cosine_distance",
        margin=8.42780477610719e-159, swap=True, reduction="none", upstream=np.array(0.5),
        branch_tol=4 * 2.0**-52, underflow=2.0**-1022, bounds=True,
    )  # fmt: skip
    assert list(e.grads["negative"]) == [0.0, 0.0]  # the exact decision: no hinge
    assert e.grad_lo["negative"][0] <= -2.5e7 <= e.grad_hi["negative"][0]


def test_a_margin_that_is_a_sum_of_two_arguments_is_decided_at_its_zero() -> None:
    """cosine_embedding_loss's branch on y = -1 is the margin 1 + y: one rounding of two exact
    numbers, 0 only where the exact sum is. At y = -1 exactly it is decided, with the underflow
    allowance the checks pass (the sum's error scale is then not 0): both branches were accepted,
    0 (the y = 1 branch's max(0, ...) at a zero vector) to 4.33, and a mutant ignoring the margin
    passed (tests/planted/mutants.py, cosine_embedding_margin_ignored)."""
    e = oracle.evaluate(
        "cosine_embedding_loss", np.array([[0.0], [-1.0]]), np.zeros((2, 1)), np.array([-1.0, -1.0]),
        margin=-4.32565450668335, reduction="none", branch_tol=4 * 2.0**-23, underflow=2.0**-126, bounds=True,
    )  # fmt: skip
    assert list(e.value_lo) == list(e.value_hi) == [4.32565450668335] * 2
