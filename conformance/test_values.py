"""Values: the backend's loss against the oracle, for every reduction, and the reductions against
each other (sum = Σ none; mean = Σ none / the documented denominator), on the same drawn case."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import given
from hypothesis import strategies as st

from conformance import checks
from conformance.backends import DType
from conformance.harness import fixed_options
from conformance.strategies import cases

if TYPE_CHECKING:
    from spec import Variant


@given(data=st.data())
def test_value(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """The value under every reduction against the oracle, and the backend's 'sum' and 'mean'
    against its own 'none' summed and divided: one drawn case, each reduction called once."""
    fixed = fixed_options(backend, variant.loss)
    if "reduction" in fixed:  # an implementation without the option: torch's default, 'mean'
        case = data.draw(cases(variant, dtype, fixed=fixed), label="case")
        checks.oracle(backend, case)
        return
    case = data.draw(cases(variant, dtype, fixed=fixed, reductions=("none",)), label="case")
    checks.values(backend, case)
