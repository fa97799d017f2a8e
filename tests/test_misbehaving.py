"""An implementation cannot break the run: each misbehaviour is a failure of that check, with a
clear message, and the next check still runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from conformance.backends import resolve
from conformance.backends.override import OverrideBackend
from conformance.harness import ConformanceFailure, check
from conformance.strategies import Case

F = torch.nn.functional
ARRAYS = {"input": np.array([0.5, -1.0]), "target": np.array([-0.25, 2.0])}
CASE = Case("mse_loss", "default", "float32", ARRAYS, {}, "mean")


def _raises(input: Any, target: Any, **kw: Any) -> Any:
    raise RuntimeError("kernel exploded")


def _nan(input: Any, target: Any, **kw: Any) -> Any:
    return F.mse_loss(input, target, **kw) * float("nan")


def _shape(input: Any, target: Any, **kw: Any) -> Any:
    return F.mse_loss(input, target, **kw).reshape(1)


def _dtype(input: Any, target: Any, **kw: Any) -> Any:
    return F.mse_loss(input.double(), target.double(), **kw)


def _not_a_tensor(input: Any, target: Any, **kw: Any) -> Any:
    return float(F.mse_loss(input, target, **kw))


def _mutates(input: Any, target: Any, **kw: Any) -> Any:
    target.clamp_(min=0.0)  # "harmless" in-place clean-up of the caller's tensor
    return F.mse_loss(input, target, **kw)


@pytest.mark.parametrize(
    ("impl", "says"),
    [
        (_raises, "raised RuntimeError: kernel exploded"),
        (_nan, "value: 1 element(s) outside the bound"),
        (_shape, "value: shape (1,), expected ()"),
        (_dtype, "returned dtype torch.float64 for float32 inputs"),
        (_not_a_tensor, "returned a builtins.float, not a Tensor"),
        (_mutates, "modified its input argument(s) in place: ['target']"),
    ],
    ids=lambda p: getattr(p, "__name__", "")[:20],
)
def test_misbehaviour_is_a_failure_of_that_check(impl: Callable[..., Any], says: str) -> None:
    backend = OverrideBackend(resolve("torch-cpu"), {"mse_loss": impl})
    with pytest.raises(ConformanceFailure) as info:
        check(backend, CASE, wrt=("input",))
    assert says in str(info.value)
    assert "reproduce with (paste into python):" in str(info.value)
    check(resolve("torch-cpu"), CASE, wrt=("input",))  # and the run goes on
