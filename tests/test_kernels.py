"""The run-time kernels of :mod:`oracle._kernels`, each against exact values at points chosen for its
edge cases (what mutation testing, ``mutmut run``, showed the broader tests leave unchecked): the
class-index take and one-hot with ignored indices, xlogy at 0, the compensated log of a sum, the
compensated n-term sum (the compiled ufunc and the NumPy loop alike), the shared softmax passes
and the p-norm's refused range.

Expected values come from exact arithmetic (``fractions``/``math.fsum``) or mpmath at 50 digits,
rounded once to float64.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from oracle import _kernels as K


def test_take_picks_the_class_of_each_sample_and_clips_ignored_indices() -> None:
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(K.take(a, np.array([2, 0])), [3.0, 4.0])
    # ignore_index -100 and an index past the end are clipped into range (masked afterwards)
    np.testing.assert_array_equal(K.take(a, np.array([-100, 7])), [1.0, 6.0])
    np.testing.assert_array_equal(K.take(np.array([1.0, 2.0, 3.0]), np.array(1)), 2.0)
    np.testing.assert_array_equal(K.take(np.array([1.0, 2.0, 3.0]), np.array(-5)), 1.0)
    # one index for a batch of rows broadcasts; a batch of indices against one row too
    np.testing.assert_array_equal(K.take(a, np.array(1)), [2.0, 5.0])
    np.testing.assert_array_equal(K.take(np.array([[1.0, 2.0, 3.0]]), np.array([0, 2])), [1.0, 3.0])
    assert K.take(a, np.array([2, 0])).shape == (2,)


def test_onehot_and_eye() -> None:
    np.testing.assert_array_equal(K.onehot(np.array([2, 0, -100]), 3), [[0, 0, 1], [1, 0, 0], [0, 0, 0]])
    assert K.onehot(np.array([1]), 3).dtype == np.float64
    np.testing.assert_array_equal(K.eye(3), np.eye(3))


def test_xlogy() -> None:
    x = np.array([0.0, 0.0, 2.0, 3.0, -1.5])
    y = np.array([0.0, 5.0, 1.0, 0.5, 4.0])
    want = [0.0, 0.0, 0.0, 3.0 * math.log(0.5), -1.5 * math.log(4.0)]
    got = K.xlogy(x, y)
    np.testing.assert_array_equal(got, want)
    assert np.isneginf(K.xlogy(np.array(1.0), np.array(0.0)))
    assert np.isnan(K.xlogy(np.array(1.0), np.array(-1.0)))


def _mp_log_sum(a: float, b: float) -> float:
    with mpmath.workdps(60):
        return float(mpmath.log(mpmath.mpf(a) + mpmath.mpf(b)))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1.0, 1e-17),
        (1.0, -1e-17),
        (1.0, 2.0**-60),
        (3.0, 4.0),
        (1e300, 1e300),
        (0.5, 0.25),
        (2.0**-1070, 2.0**-1074),
    ],
)
def test_log_add_is_the_log_of_the_exact_sum(a: float, b: float) -> None:
    """log(a + b) where a + b rounds: the TwoSum error carried (log(1 + 1e-17) is 1e-17, not 0)."""
    got = float(K.log_add(np.array(a), np.array(b)))
    assert got == _mp_log_sum(a, b) or abs(got - _mp_log_sum(a, b)) <= np.spacing(abs(_mp_log_sum(a, b)))


def test_log_add_at_zero_and_infinity() -> None:
    assert np.isneginf(K.log_add(np.array(1.0), np.array(-1.0)))
    assert np.isposinf(K.log_add(np.array(np.inf), np.array(1.0)))
    assert np.isnan(K.log_add(np.array(-2.0), np.array(1.0)))
    np.testing.assert_array_equal(K.log_add(np.array([1.0, 2.0]), np.array([0.0, 0.0])), np.log([1.0, 2.0]))


_SUMS = [
    (1.0, 1e-17, -1.0),  # (1 + 1e-17) - 1: the plain sum gives 0
    (3.5e13, 2.0**-20, -3.5e13),
    (1e16, 1.0, -1e16, 1.0),
    (0.1, 0.2, 0.3, -0.6),
    (1e308, 1e308, -1e308),  # overflows: the plain sum (inf), no correction
    tuple(float(v) for v in np.linspace(-1, 1, 17)),  # more terms than the compiled ufunc takes
]


@pytest.mark.parametrize("terms", _SUMS)
@pytest.mark.parametrize("numba", [True, False])
def test_add_is_compensated(terms: tuple[float, ...], numba: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(K, "USE_NUMBA", numba)
    arrays = [np.array([t, -t]) for t in terms]
    with np.errstate(all="ignore"):  # (the lowered code's settings: everything ignored but overflow)
        got = K.add(*arrays)
        loop = K.add_loop(*arrays)
    plain = sum(terms[1:], terms[0])
    if not math.isfinite(plain):
        assert got[0] == plain and got[1] == -plain
        return
    exact = float(sum((Fraction(t) for t in terms), Fraction(0)))
    # TwoSum per partial sum, the errors summed apart: within an ulp of the exactly rounded sum
    # scaled by the terms (here the cancellations are exact: the exact sum itself)
    assert abs(got[0] - exact) <= 2 * np.spacing(max(abs(t) for t in terms)) * 2.0**-52 + np.spacing(
        abs(exact)
    )
    assert got[1] == -got[0]
    assert loop[0] == got[0]


def test_exact_sum() -> None:
    assert bool(K.exact_sum(np.array(1.0), np.array(2.0)))
    assert not bool(K.exact_sum(np.array(1.0), np.array(1e-17)))
    assert not bool(K.exact_sum(np.array(np.inf), np.array(1.0)))
    np.testing.assert_array_equal(K.exact_sum(np.array([0.5, 0.1]), np.array([0.25, 0.2])), [True, False])


def test_sigmoid_and_softplus_at_extremes() -> None:
    z = np.array([-1000.0, -745.0, -36.5, 0.0, 36.5, 1000.0])
    with mpmath.workdps(50):
        want_s = [float(1 / (1 + mpmath.exp(-mpmath.mpf(v)))) for v in z]
        want_p = [float(mpmath.log1p(mpmath.exp(mpmath.mpf(v)))) for v in z]
    np.testing.assert_allclose(K.sigmoid(z), want_s, rtol=4e-16, atol=0)
    np.testing.assert_allclose(K.softplus(z), want_p, rtol=4e-16, atol=0)


def _mp_lse(row: list[float]) -> float:
    with mpmath.workdps(60):
        return float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in row)))


ROWS = [[0.0, 1.0, 2.0], [100.0, 0.0, 0.0], [1e4, 0.0, -1.0], [-1000.0, -1000.0, 0.0], [3.0, 3.0, 3.0]]


def test_logsumexp_softmax_and_neg_log_softmax() -> None:
    x = np.array(ROWS)
    lse = [_mp_lse(r) for r in ROWS]
    np.testing.assert_allclose(K.logsumexp(x), lse, rtol=4e-16)
    with mpmath.workdps(60):
        mp = [[mpmath.mpf(v) for v in r] for r in ROWS]
        sm = [
            [float(mpmath.exp(v - mpmath.log(mpmath.fsum(mpmath.exp(w) for w in r)))) for v in r] for r in mp
        ]
        nls = [[float(mpmath.log(mpmath.fsum(mpmath.exp(w - v) for w in r))) for v in r] for r in mp]
    np.testing.assert_allclose(K.softmax(x), sm, rtol=1e-15, atol=0)
    np.testing.assert_allclose(K.neg_log_softmax_all(x), nls, rtol=1e-15, atol=0)
    idx = np.array([0, 0, 2, 1, 2])
    np.testing.assert_allclose(
        K.neg_log_softmax_at(x, idx), [nls[n][i] for n, i in enumerate(idx)], rtol=1e-15
    )
    # the tiny loss of a dominant logit: log1p(2e-100-ish), not 0
    assert K.neg_log_softmax_at(np.array([[100.0, 0.0, 0.0]]), np.array([0]))[0] == pytest.approx(
        2 * math.exp(-100), rel=1e-15
    )


def test_softmax_minus_onehot() -> None:
    x = np.array([[100.0, 0.0, 0.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    got = K.softmax_minus_onehot(x, np.array([0, 2, -100]))
    sm = K.softmax(x)
    # the target's component is -Σ_{others} softmax: 2e-44-ish, exact, not 1 - (1 - 2e-44) = 0
    assert got[0, 0] == pytest.approx(-2 * math.exp(-100), rel=1e-15)
    np.testing.assert_allclose(got[0, 1:], sm[0, 1:], rtol=1e-15)
    np.testing.assert_allclose(got[1], sm[1] - [0, 0, 1], rtol=1e-15)
    np.testing.assert_allclose(got[2], sm[2], rtol=1e-15)  # an ignored sample: no component is its own


def test_shared_passes_give_the_same_numbers_and_leave_inputs_alone() -> None:
    x = np.array(ROWS)
    idx = np.array([0, 0, 2, 1, 2])
    alone = [
        K.neg_log_softmax_at(x, idx),
        K.softmax_minus_onehot(x, idx),
        K.softmax(x),
        K.neg_log_softmax_all(x),
    ]
    before = x.copy()
    with K.shared():
        together = [K.neg_log_softmax_at(x, idx), K.softmax_minus_onehot(x, idx), K.softmax(x)]
        together.append(K.neg_log_softmax_all(x))
        again = K.softmax_minus_onehot(x, idx)
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again, alone[1])
    np.testing.assert_array_equal(x, before)
    # another array of equal values is another entry (not the first one's memo)
    y = x + 1.0
    with K.shared():
        K.softmax(x)
        np.testing.assert_array_equal(K.softmax(y), K.softmax(np.array(y)))


def test_flip() -> None:
    cond = np.array([True, False, True])
    assert K.flip({}, 0, cond) is cond
    np.testing.assert_array_equal(K.flip({0: np.array([True, True, False])}, 0, cond), [False, True, True])
    assert K.flip({1: np.array([True, True, True])}, 0, cond) is cond


@pytest.mark.parametrize(
    ("p", "lo_log2"), [(1.0, -1021.0), (2.0, -1021.0 / 1.5), (1e9, -1021.0 / 2.0), (0.5, -1021.0)]
)
def test_power_sum_range(p: float, lo_log2: float) -> None:
    """The docstring's figures: p = 1, 2^-1021; p = 2, 2^-680.7; large p, 2^-510.5 (p < 1 as 1)."""
    lo, hi = K.power_sum_range(p)
    assert math.log2(lo) == pytest.approx(lo_log2, rel=1e-6) and math.log2(hi) == pytest.approx(
        -lo_log2, rel=1e-6
    )


def test_power_sum_refuses_outside_its_range() -> None:
    base = np.array([[1e-200, 0.0], [0.0, 0.0], [1.0, 2.0]])
    with pytest.raises(K.OracleRangeError, match=r"p = 2\.0"):
        K.power_sum(base**2, base, 2.0, axis=-1)
    ok = np.array([[0.0, 0.0], [1.0, 2.0]])  # a row of zeros is exact (0), not refused
    np.testing.assert_array_equal(K.power_sum(ok**2, ok, 2.0, axis=-1), [0.0, 5.0])
    big = np.array([[1e200, 1.0]])
    with pytest.raises(K.OracleRangeError), np.errstate(over="ignore"):
        K.power_sum(big**2, big, 2.0, axis=-1)


def test_take_along_the_last_dim_of_a_3d_array() -> None:
    a = np.arange(24.0).reshape(2, 3, 4)
    got = K.take(a, np.array([[0, 3, 1], [2, 2, -100]]))
    np.testing.assert_array_equal(got, [[0.0, 7.0, 9.0], [14.0, 18.0, 20.0]])


def test_softmax_minus_onehot_ignored_indices_out_of_range() -> None:
    """An ignored sample's index may be C itself (ignore_index = C) or the only class of C = 1: no
    component is its own, the row is the softmax."""
    x = np.array([[0.0, 1.0, 2.0]])
    np.testing.assert_array_equal(K.softmax_minus_onehot(x, np.array([3])), K.softmax(x))
    one = np.array([[0.5], [1.5]])
    np.testing.assert_array_equal(K.softmax_minus_onehot(one, np.array([-100, 0])), [[1.0], [-0.0]])


@pytest.mark.parametrize("end", [0, 1])
def test_power_sum_range_is_closed(end: int) -> None:
    """A sum exactly at either end of the range is answered; the next float beyond it is refused."""
    edge = K.power_sum_range(2.0)[end]
    inside = np.array([[edge]])
    np.testing.assert_array_equal(K.power_sum(inside, np.ones((1, 1)), 2.0, axis=-1), [edge])
    beyond = np.array([[np.nextafter(edge, np.inf if end else 0.0)]])
    with pytest.raises(K.OracleRangeError):
        K.power_sum(beyond, np.ones((1, 1)), 2.0, axis=-1)
