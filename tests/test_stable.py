"""The oracle's stable rewrites (:mod:`oracle._stable`) are sound.

Proves: each rule in ``RULES`` fires on a representative expression and round-trips
(``elementary(rule(e))`` equals ``e`` at high precision); each node's NumPy kernel
(:mod:`oracle._kernels`, ``numpy.logaddexp`` for Softplus) agrees with the node's elementary form
evaluated by mpmath, at extreme arguments too; each node's derivative equals the derivative of
its elementary form; and each rule actually fires on the spec's expressions.
"""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np
import pytest
import sympy as sp
from sympy.codegen.cfunctions import log1p

from oracle import _kernels as K
from oracle import _stable as S
from oracle._compile import stable_forms
from spec import C, i, k
from spec.derive import variant_by_key
from tests._groundtruth import ulp_error
from tests._mp import to_float

z = sp.Symbol("z", real=True)
y = sp.Symbol("y", real=True)
x = sp.IndexedBase("x", real=True)
a = sp.Symbol("a", integer=True, nonnegative=True)
Z_POINTS = (-1000.0, -745.0, -36.5, -1.0, -1e-300, 0.0, 1e-300, 0.5, 36.5, 700.0, 1000.0)
X_POINTS = ([0.0, 1.0, 2.0], [100.0, 0.0, 0.0], [1e4, 0.0, -1.0], [-1000.0, -1000.0, 0.0], [3.0, 3.0, 3.0])


def _num(e: sp.Expr, xs: list[float] | None = None, dps: int = 5000, **vals: float) -> Any:
    """``e`` at the point (C = len(xs), x[n] = xs[n], symbols by name) with mpmath at ``dps`` digits."""
    with mpmath.workdps(dps):
        if xs is not None:
            e = e.subs(C, len(xs)).doit()
            e = e.subs({x[n]: sp.Float(mpmath.mpf(v), dps) for n, v in enumerate(xs)})
        e = e.subs({sp.Symbol(n, real=True): sp.Float(mpmath.mpf(v), dps) for n, v in vals.items()})
        e = e.subs({sp.Symbol(n, integer=True, nonnegative=True): int(v) for n, v in vals.items()})
        return mpmath.mpf(sp.N(e, dps))


_LSE = sp.log(sp.Sum(sp.exp(x[i]), (i, 0, C - 1)))
# rule -> (expression it rewrites, the node it must introduce)
RULE_CASES = {
    S._sigmoid: (1 / (1 + sp.exp(-z)), S.Sigmoid),
    S._one_minus_sigmoid: (1 - S.Sigmoid(z) + y, S.Sigmoid),
    S._log_sigmoid: (sp.log(S.Sigmoid(z)), S.Softplus),
    S._log_one_plus_exp: (sp.log(1 + sp.exp(2 * z)), S.Softplus),
    S._logsumexp: (3 * _LSE - x[a], S.LogSumExp),
    S._softmax: (
        y
        * sp.exp(x[a])
        * sp.Sum(z * sp.exp(x[k]) * x[k], (k, 0, C - 1))
        / sp.Sum(sp.exp(x[i]), (i, 0, C - 1)) ** 2,
        S.Softmax,
    ),
    S._neg_log_softmax: (3 * S.LogSumExp(x) - 3 * x[a], S.NegLogSoftmax),
    S._log1p: (sp.log(1 - y), log1p),
    S._square_over: ((z - y) ** 2 / (2 * sp.Symbol("beta", positive=True)), S.SquareOver),
    S._log_add: (3 * sp.log(z + y), S.LogAdd),
}


def test_every_rule_has_a_case() -> None:
    assert set(RULE_CASES) == set(S.RULES)


@pytest.mark.parametrize("rule", S.RULES, ids=lambda r: r.__name__)
def test_rule_fires_and_round_trips(rule: Any) -> None:
    e, node = RULE_CASES[rule]
    out = rule(e)
    assert out != e and out.has(node), f"{rule.__name__} did not fire on {e}: {out}"
    back = S.elementary(out)
    ref = S.elementary(e)
    if sp.simplify(back - ref) == 0:
        return
    for zz, yy in [(-3.0, 0.25), (0.5, -0.75), (40.0, 1e-20)]:
        for xs in ([0.0, 1.0, 2.0], [100.0, -5.0]):
            for aa in range(len(xs)):
                got = _num(back, xs, dps=60, z=zz, y=yy, a=aa)
                want = _num(ref, xs, dps=60, z=zz, y=yy, a=aa)
                assert abs(got - want) <= mpmath.mpf(10) ** -40 * (1 + abs(want)), (rule.__name__, got, want)


# -- kernels against the elementary forms ----------------------------------------------------------


@pytest.mark.parametrize("zz", Z_POINTS)
def test_softplus_and_sigmoid_kernels(zz: float) -> None:
    sp_exact = to_float(_num(S.Softplus(z).rewrite("elementary"), z=zz))
    sg_exact = to_float(_num(S.Sigmoid(z).rewrite("elementary"), z=zz))
    assert ulp_error(float(np.logaddexp(0.0, zz)), sp_exact) <= 2
    assert ulp_error(float(K.sigmoid(np.array(zz))), sg_exact) <= 2


@pytest.mark.parametrize("xs", X_POINTS, ids=str)
def test_class_axis_kernels(xs: list[float]) -> None:
    # integer-valued logits: x_i - max x is exact, so each kernel is within a few roundings
    arr = np.array(xs)
    assert ulp_error(float(K.logsumexp(arr)), to_float(_num(S.LogSumExp(x).rewrite("elementary"), xs))) <= 2
    sm, smo = K.softmax(arr), [K.softmax_minus_onehot(arr, np.array(t)) for t in range(len(xs))]
    for t in range(len(xs)):
        nls = to_float(_num(S.NegLogSoftmax(x, t).rewrite("elementary"), xs))
        assert ulp_error(float(K.neg_log_softmax_all(arr)[t]), nls) <= 2, (t, nls)
        assert float(K.neg_log_softmax_at(arr, np.array(t))) == float(K.neg_log_softmax_all(arr)[t])
        assert ulp_error(float(sm[t]), to_float(_num(S.Softmax(x, t).rewrite("elementary"), xs))) <= 2
        for b in range(len(xs)):
            want = to_float(_num(S.SoftmaxMinusDelta(x, b, t).rewrite("elementary"), xs))
            assert ulp_error(float(smo[t][b]), want) <= 2, (t, b, smo[t][b], want)


def test_one_hot_logits_keep_tiny_neg_log_softmax() -> None:
    # log1p(2 e^-100) = 7.4401519520416719e-44 (shared/NOTES-numerics.md, mpmath at 300 digits)
    arr = np.array([100.0, 0.0, 0.0])
    assert float(K.neg_log_softmax_all(arr)[0]) == 7.4401519520416719e-44


# -- derivatives -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "node", [S.Softplus(z), S.Sigmoid(z), S.SquareOver(z, y), S.SquareOver(y, z)], ids=str
)
def test_scalar_node_derivative(node: sp.Expr) -> None:
    d_node = S.elementary(sp.diff(node, z))
    d_elem = sp.diff(node.rewrite("elementary"), z)
    assert sp.simplify(d_node - d_elem) == 0


@pytest.mark.parametrize(("u", "v"), [(1e285, 1e300), (1e-200, 1e-199), (3.0, 7.0), (-2.5, 0.125)])
def test_square_over_kernel_neither_overflows_nor_underflows(u: float, v: float) -> None:
    from oracle._lower import lower

    f = lower(S.SquareOver(z, y), ("z", "y"), frozenset())
    got = float(f({"z": np.float64(u), "y": np.float64(v), "_C": 1}))
    assert ulp_error(got, to_float(_num(S.SquareOver(z, y).rewrite("elementary"), z=u, y=v))) <= 2


@pytest.mark.parametrize(
    ("u", "v"),
    [(1e-300, 1.0), (1.0, 1e-8), (0.5, 0.5), (317.81, 1e-8), (1e300, 1e300), (0.0, 1e-8), (3.0, -1.0)],
)
def test_log_add_kernel(u: float, v: float) -> None:
    # (1e-300, 1): log(1 + 1e-300) = 1e-300, where log(fl(1e-300 + 1)) = 0
    got = float(K.log_add(np.float64(u), np.float64(v)))
    assert ulp_error(got, to_float(_num(sp.log(z + y), z=u, y=v))) <= 1


def test_log_add_derivative() -> None:
    for node in (S.LogAdd(z, y), S.LogAdd(y, z)):
        assert sp.simplify(S.elementary(sp.diff(node, z)) - sp.diff(node.rewrite("elementary"), z)) == 0


CLASS_NODES = [
    S.LogSumExp(x),
    S.Softmax(x, 0),
    S.Softmax(x, 2),
    S.NegLogSoftmax(x, 1),
    S.SoftmaxMinusDelta(x, 0, 1),
    S.SoftmaxMinusDelta(x, 1, 1),
]


@pytest.mark.parametrize("node", CLASS_NODES, ids=str)
@pytest.mark.parametrize("wrt", [0, 1, 2])
def test_class_node_derivative(node: sp.Expr, wrt: int) -> None:
    d_node = S.elementary(sp.diff(node, x[wrt]))
    d_elem = sp.diff(node.rewrite("elementary").subs(C, 3).doit(), x[wrt])
    for xs in ([0.0, 1.0, 2.0], [5.0, -3.0, 0.5]):
        got, want = _num(d_node, xs, dps=50), _num(d_elem, xs, dps=50)
        assert abs(got - want) <= mpmath.mpf(10) ** -40, (got, want)


# -- the rules fire on the spec ----------------------------------------------------------------


def test_rules_fire_on_spec() -> None:
    bcel = stable_forms(variant_by_key("binary_cross_entropy_with_logits"))
    assert bcel.value.has(S.Softplus) and not bcel.value.has(sp.exp)
    assert bcel.grads["input"].has(S.Sigmoid) and bcel.grads["target"].has(S.Softplus)
    assert not any(g.has(sp.exp) for g in bcel.grads.values())
    bce = stable_forms(variant_by_key("binary_cross_entropy"))
    assert bce.value.has(log1p)
    for key in ("cross_entropy[class_index]", "cross_entropy[probabilities]"):
        f = stable_forms(variant_by_key(key))
        assert f.value.has(S.NegLogSoftmax) and not f.value.has(sp.exp), f.value
        assert not any(g.has(sp.exp) for g in f.grads.values())
    assert k is not None  # the summation dummy exists (spec.k), used by the class-axis sums


@pytest.mark.parametrize("k", range(2, K.FUSED_TERMS + 1))
def test_compiled_compensated_sum_is_the_numpy_loop_bit_for_bit(k: int) -> None:
    """``_k.add``'s compiled ufunc (Numba) and its NumPy loop give the same bits: cancellation
    (3.5e13 - 3.5e13 + eps), overflow, infinities of both signs, NaN, signed zeros, subnormals,
    broadcasting (0-d, rows, Python floats), and the same floating-point errors reported."""
    rng = np.random.default_rng(k)
    specials = np.array(
        [0.0, -0.0, 1e-6, 3.5e13, -3.5e13, 1.7e308, -1.7e308, np.inf, -np.inf, np.nan, 5e-324]
    )
    for trial in range(200):
        terms: list[Any] = []
        for j in range(k):
            kind = rng.integers(4)
            shape = [(3, 4), (4,), (), (1, 4)][rng.integers(4)]
            if kind == 0:
                terms.append(rng.choice(specials, size=shape))
            elif kind == 1:
                terms.append(rng.standard_normal(shape) * 10.0 ** rng.integers(-300, 300, size=shape))
            elif kind == 2:
                terms.append(float(rng.choice(specials)))
            else:
                terms.append(np.full(shape, 3.5e13 * (-1) ** j))
        with np.errstate(all="ignore"):
            fused = np.asarray(K._fused_add(k)(*terms))
            loop = np.asarray(K.add_loop(*terms))
        assert fused.shape == loop.shape and fused.dtype == loop.dtype == np.float64
        same = (fused.view(np.int64) == loop.view(np.int64)) | (np.isnan(fused) & np.isnan(loop))
        assert same.all(), (trial, terms, fused, loop)
    big = [np.array([1.7e308])] * k
    for kernel in (K._fused_add(k), K.add_loop):
        with np.errstate(all="ignore", over="raise"), pytest.raises(FloatingPointError):
            kernel(*big)
    assert K.add(*[np.longdouble(1) / 3] * k).dtype == np.longdouble  # extended precision: the loop
