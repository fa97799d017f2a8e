"""The oracle's input validation: invalid arguments raise :class:`oracle.OracleInputError` (a
ValueError) whose message names the argument; L1/MSE broadcast mismatched shapes with a warning,
as torch does."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import oracle

X2 = np.array([[0.5, 1.0, -1.0], [2.0, 0.0, 1.0]])  # (N=2, C=3) logits
P = np.array([0.25, 0.5])
BAD = [
    # (argument the message must name, loss, args, kwargs)
    ("reduction", "mse_loss", (P, P), {"reduction": "avg"}),
    ("input", "binary_cross_entropy", (np.array([1.5, 0.5]), P), {}),
    ("input", "binary_cross_entropy", (np.array([-0.1, 0.5]), P), {}),
    ("target", "binary_cross_entropy", (P, np.array([0.5, 2.0])), {}),
    ("target", "binary_cross_entropy", (P, np.array([0.5, 0.5, 0.5])), {}),
    ("target", "binary_cross_entropy_with_logits", (P, np.array([0.5, 0.5, 0.5])), {}),
    ("target", "cross_entropy", (X2, np.array([0, 3])), {}),
    ("target", "cross_entropy", (X2, np.array([0, -2])), {}),
    ("target", "cross_entropy", (X2, np.array([0, 1, 2])), {}),
    ("weight", "cross_entropy", (X2, np.array([0, 1])), {"weight": np.ones(2)}),
    ("ignore_index", "cross_entropy", (X2, np.full((2, 3), 1 / 3)), {"ignore_index": 1}),
    ("beta", "smooth_l1_loss", (P, P), {"beta": -1.0}),
    ("label_smoothing", "cross_entropy", (X2, np.array([0, 1])), {"label_smoothing": 1.5}),
    ("label_smoothing", "cross_entropy", (X2, np.array([0, 1])), {"label_smoothing": -0.1}),
    ("loss", "no_such_loss", (P, P), {}),
]


@pytest.mark.parametrize(
    ("arg", "loss", "args", "kwargs"), BAD, ids=[f"{b[1]}-{b[0]}-{n}" for n, b in enumerate(BAD)]
)
def test_invalid_input_names_the_argument(
    arg: str, loss: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(oracle.OracleInputError, match=rf"^{re.escape(arg)}\b") as info:
        oracle.evaluate(loss, *args, **kwargs)
    assert isinstance(info.value, ValueError)


def test_ignored_out_of_range_target_is_accepted() -> None:
    # ignore_index = -100 (torch's default) is not a class index but is allowed: loss 0 there
    r = oracle.evaluate("cross_entropy", X2, np.array([0, -100]), reduction="none")
    assert r.value[1] == 0.0 and np.all(r.grads["input"][1] == 0.0)


@pytest.mark.parametrize("loss", ["l1_loss", "mse_loss"])
def test_broadcast_with_warning(loss: str) -> None:
    x, y = np.array([[1.0], [2.0]]), np.array([0.0, 0.5, 4.0])
    with pytest.warns(UserWarning, match="broadcast"):
        r = oracle.evaluate(loss, x, y, reduction="none")
    d = x - y  # broadcast (2, 1) - (3,) -> (2, 3)
    np.testing.assert_array_equal(r.value, np.abs(d) if loss == "l1_loss" else d * d)
    assert r.grads["input"].shape == x.shape and r.grads["target"].shape == y.shape


def test_same_shape_does_not_warn() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        oracle.evaluate("mse_loss", P, P)


def test_smooth_l1_beta_zero_python_float() -> None:
    # Regression: a Python float beta = 0.0 once raised ZeroDivisionError (the lowered error scale
    # computed beta**(-1.0) on a Python scalar). The spec's convention point
    # smooth_l1_beta_zero_is_l1: beta = 0.0, x = -3, y = 0 -> value 3.0, grad_input -1.0.
    for beta in (0.0, 0):
        r = oracle.evaluate("smooth_l1_loss", np.array([-3.0]), np.array([0.0]), beta=beta, reduction="none")
        assert float(r.value[0]) == 3.0 and float(r.grads["input"][0]) == -1.0


def test_flag_and_choice_options_are_validated_by_kind() -> None:
    """Options of every kind: a flag takes a bool only, a choice one of its values (not a bool
    that equals one), each error naming the option and what was expected."""
    import dataclasses

    from hypothesis import find

    from conformance.strategies import param_value
    from oracle.api import OracleInputError, _check_params
    from spec import REGISTRY, choice, flag

    v = dataclasses.replace(
        REGISTRY["l1_loss"].variant(),
        params=(flag("log_target", False, "targets are log-probabilities"), choice("p", 1, (1, 2))),
    )
    bound: dict = {"log_target": True, "p": 2}
    _check_params(v, bound)
    assert bound == {"log_target": True, "p": 2}
    for bad, says in (
        ({"log_target": 1}, "log_target: expected a bool (True or False), got 1"),
        ({"p": 3}, "p: expected one of [1, 2], got 3"),
        ({"p": True}, "p: expected one of [1, 2], got True"),
    ):
        with pytest.raises(OracleInputError, match=re.escape(says)):
            _check_params(v, dict(bad))
    assert find(param_value(v.params[0], "float32"), lambda b: b is True) is True
    assert find(param_value(v.params[1], "float32"), lambda n: n == 2) == 2


def test_gradient_of_an_undefined_mean_is_nan_with_zero_also_accepted() -> None:
    """A mean over zero total weight is NaN and so is its gradient; where the element's own
    gradient is exactly 0, 0 is also accepted: torch's nll_loss writes only the target entries
    (measured on torch 2.13.0: nll_loss(zeros(2, 3), [2, 0], weight=zeros(3)) -> nan, input
    gradient [[0, 0, nan], [nan, 0, 0]])."""
    from conformance.errormodel import compare

    x, t = np.zeros((2, 3)), np.array([2, 0])
    r = oracle.evaluate("nll_loss", x, t, weight=np.zeros(3), bounds=True)
    assert np.isnan(r.value) and np.isnan(r.grads["input"]).all()
    g = (r.grads["input"], r.grad_lo["input"], r.grad_hi["input"], r.grad_scale["input"], "float32")
    alt = r.grad_alt["input"]
    assert np.array_equal(alt, np.zeros((2, 3)))  # -w_y δ(j, y) with w_y = 0: 0 everywhere
    torch_like = np.array([[0.0, 0.0, np.nan], [np.nan, 0.0, 0.0]])
    for got in (torch_like, np.full((2, 3), np.nan), np.zeros((2, 3))):
        assert compare(got, *g, what="g", alt=alt) is None
    assert compare(np.ones((2, 3)), *g, what="g", alt=alt) is not None
    # where the element gradient is not 0 (cross_entropy's smoothing term spreads over the
    # classes), only NaN is accepted
    ce = oracle.evaluate(
        "cross_entropy", x, t, weight=np.array([0.0, 1.0, 0.0]), label_smoothing=0.3, bounds=True
    )
    assert np.isnan(ce.value) and np.isnan(ce.grad_alt["input"]).any()
    h = (ce.grads["input"], ce.grad_lo["input"], ce.grad_hi["input"], ce.grad_scale["input"], "float32")
    assert compare(np.zeros((2, 3)), *h, what="g", alt=ce.grad_alt["input"]) is not None
    # a defined mean has no alternative
    assert oracle.evaluate("nll_loss", x, t).grad_alt == {}


def test_weighted_mean_gradient_wrt_weight_is_the_quotient_rule() -> None:
    # mse_loss mean = Σ w d² / Σ w; ∂/∂w_i = (d_i² - mean) / Σ w, computed here in exact rationals:
    # d = [1, 2, 3], w = [1, 3, 2] -> mean = (1 + 12 + 18)/6 = 31/6, ∂/∂w = [(1 - 31/6)/6, ...]
    from fractions import Fraction

    x, y, w = np.array([1.0, 2.0, 3.0]), np.zeros(3), np.array([1.0, 3.0, 2.0])
    r = oracle.evaluate("mse_loss", x, y, weight=w, reduction="mean")
    mean = Fraction(31, 6)
    want = [float((Fraction(int(d) ** 2) - mean) / 6) for d in (1, 2, 3)]
    assert float(r.value) == float(mean)
    assert np.max(np.abs(r.grads["weight"] - want) / np.abs(want)) <= 2**-51
    # huber_loss's weighted mean divides by the count, not Σ w: ∂/∂w_i = ℓ_i / n
    h = oracle.evaluate("huber_loss", x, y, weight=w, reduction="mean", delta=10.0)
    assert list(h.grads["weight"]) == [0.5 / 3, 2.0 / 3, 4.5 / 3]


def test_class_weight_gradient_sums_over_samples() -> None:
    # multilabel_soft_margin_loss 'sum' over two identical samples: ∂/∂w_k = 2 · ℓ_k / C, with
    # ℓ_k = softplus(0) = log 2 at x = 0 (for any target)
    x, t = np.zeros((2, 3)), np.full((2, 3), 0.25)
    r = oracle.evaluate("multilabel_soft_margin_loss", x, t, weight=np.ones(3), reduction="sum")
    assert r.grads["weight"].shape == (3,)
    assert np.allclose(r.grads["weight"], 2 * np.log(2) / 3, rtol=2**-50, atol=0)


def test_output_shape_names_a_bad_reduction() -> None:
    for reduction, loss in (("avg", "mse_loss"), ("batchmean", "mse_loss")):
        with pytest.raises(oracle.OracleInputError, match="reduction"):
            oracle.output_shape(loss, P, P, reduction=reduction)


def test_output_shape_is_the_evaluated_value_shape() -> None:
    """``oracle.output_shape`` (the suite draws upstream gradients of this shape without evaluating
    the loss) equals the evaluated value's shape, for every variant, reduction and drawn case."""
    import warnings

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from conformance.strategies import cases
    from spec import REGISTRY

    variants = [v for s in REGISTRY.values() for v in s.variants]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        v = data.draw(st.sampled_from(variants), label="variant")
        c = data.draw(cases(v, data.draw(st.sampled_from(["float64", "bfloat16"]))), label="case")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ev = oracle.evaluate(c.loss, **c.arrays, **c.options, reduction=c.reduction)
            except oracle.OracleRangeError:
                return
            shape = oracle.output_shape(c.loss, **c.arrays, **c.options, reduction=c.reduction)
        assert shape == np.shape(ev.value)

    check()
