"""Gradients: the backend's autograd against the oracle's derived gradients, with a non-unit
upstream gradient, requested on every non-empty subset of the differentiable inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import given
from hypothesis import strategies as st

from conformance.backends import DType
from conformance.harness import check, fixed_options, output_shape
from conformance.strategies import cases, upstream

if TYPE_CHECKING:
    from spec import Variant


@given(data=st.data())
def test_gradient(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    case = data.draw(cases(variant, dtype, fixed=fixed_options(backend, variant.loss)), label="case")
    diff = list(case.differentiable)
    wrt = data.draw(st.lists(st.sampled_from(diff), min_size=1, max_size=len(diff), unique=True), label="wrt")
    shape = output_shape(case)
    up = data.draw(upstream(shape, dtype), label="upstream")
    check(backend, case, wrt=tuple(wrt), upstream=up)
