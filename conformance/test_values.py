"""Values: the backend's loss against the oracle, for every reduction, and the reductions against
each other (sum = Σ none; mean = Σ none / the documented denominator)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import given
from hypothesis import strategies as st

from conformance import checks
from conformance.backends import DType
from conformance.harness import fixed_options, require
from conformance.strategies import cases

if TYPE_CHECKING:
    from spec import Variant


@given(data=st.data())
def test_value(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    case = data.draw(cases(variant, dtype, fixed=fixed_options(backend, variant.loss)), label="case")
    checks.oracle(backend, case)


@given(data=st.data())
def test_reductions_agree(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """The backend's 'sum' and 'mean' equal its own 'none' summed and divided."""
    require(backend, variant.loss, "reduction")
    base = data.draw(
        cases(variant, dtype, fixed=fixed_options(backend, variant.loss), reductions=("none",)), label="case"
    )
    checks.reductions_agree(backend, base)
