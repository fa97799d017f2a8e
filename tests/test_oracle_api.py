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
