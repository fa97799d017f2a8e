"""Metamorphic properties, stated once in the spec (``Variant.properties``), checked on the
backend's own results: no oracle value enters these comparisons, only the error model's bound."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conformance import checks
from conformance.backends import DType
from conformance.harness import expected, fixed_options, require
from conformance.strategies import Case, cases

if TYPE_CHECKING:
    from spec import Variant


def spec_property(name: str) -> Any:
    """Run the decorated check only on variants whose spec declares property ``name``."""

    def mark(fn: Any) -> Any:
        fn.spec_property = name
        return fn

    return mark


@spec_property("shift_invariant")
@given(data=st.data())
def test_shift_invariant(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """Adding a constant to every logit of a sample leaves the loss unchanged. Logits are multiples
    of 1/8 in [-8, 8] and the shift an integer, so the shifted logits are exact in every dtype."""
    case = data.draw(cases(variant, dtype, fixed=fixed_options(backend, variant.loss)), label="case")
    x = case.arrays["input"]
    q = np.array(data.draw(st.lists(st.integers(-64, 64), min_size=x.size, max_size=x.size)), float) / 8
    shift = data.draw(st.integers(-8, 8).filter(bool), label="shift")
    a = dataclasses.replace(case, arrays={**case.arrays, "input": q.reshape(x.shape)})
    checks.shift_invariant(backend, a, shift=shift)


@spec_property("zero_at_target")
@given(data=st.data())
def test_zero_at_target(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """At input == target the loss is exactly 0 and so is its gradient (|0| = 0, 0² = 0, sgn(0) = 0)."""
    case = data.draw(cases(variant, dtype, fixed=fixed_options(backend, variant.loss)), label="case")
    case = dataclasses.replace(case, arrays={**case.arrays, "target": case.arrays["input"].copy()})
    # a mean over zero total weight is NaN, not 0: the property is about the loss, not 0/0
    assume(exp_finite(case, case.differentiable))
    checks.zero_at_target(backend, case)


@spec_property("grad_sums_to_zero")
@given(data=st.data())
def test_grad_sums_to_zero(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """The input gradient sums to zero over the class axis (softmax's gradient is orthogonal to
    shifts); for probability targets this holds for any targets, one-hot ones included."""
    case = data.draw(cases(variant, dtype, fixed=fixed_options(backend, variant.loss)), label="case")
    # where the gradient is undefined (a mean over zero total weight: NaN) there is no sum to check
    assume(bool(np.all(np.isfinite(expected(case, wrt=("input",)).grads["input"]))))
    checks.grad_sums_to_zero(backend, case)


#: the batch check runs a quarter of the profile's examples (at least 5), each a call per sample
#: besides the batch's: a backend whose unreduced losses depend on the rest of the batch is wrong on
#: nearly every batch of two or more (tests/test_property_bugs.py plants such kernels and measures
#: it). Every unreduced loss is also compared with the oracle by test_value. Read from the profile
#: loaded at start-up, as test_layouts.PER_LAYOUT.
BATCH_SHARE = settings(max_examples=max(5, settings().max_examples // 4))


@BATCH_SHARE
@given(data=st.data())
def test_batch_is_per_sample(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """The unreduced losses of a batch equal the losses of each sample evaluated alone."""
    require(backend, variant.loss, "reduction")
    # a batch of at least two: (N, *) element-wise, (N, C, d1, ...) over classes
    most = 1 if variant.input_ndims and 3 not in variant.input_ndims else 3  # (N, C) at most
    dims = st.lists(st.integers(1, 3), min_size=0 if variant.sample_axis is None else 1, max_size=most)
    shape = data.draw(st.tuples(st.integers(2, 4), dims).map(lambda t: (t[0], *t[1])), label="shape")
    case = data.draw(
        cases(variant, dtype, fixed=fixed_options(backend, variant.loss), reductions=("none",), shape=shape),
        label="case",
    )
    checks.batch_is_per_sample(backend, case)


def exp_finite(case: Case, wrt: tuple[str, ...]) -> bool:
    e = expected(case, wrt=wrt)
    return bool(np.all(np.isfinite(e.value)) and all(np.all(np.isfinite(g)) for g in e.grads.values()))
