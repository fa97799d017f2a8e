"""Metamorphic properties, stated once in the spec (``Variant.properties``), checked on the
backend's own results: no oracle value enters these comparisons, only the error model's bound."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from conformance.backends import DType
from conformance.errormodel import compare
from conformance.harness import expected, fail, fixed_options, reject_known, require, run
from conformance.strategies import Case, cases
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
    b = dataclasses.replace(case, arrays={**case.arrays, "input": q.reshape(x.shape) + shift})
    reject_known(backend, a)
    reject_known(backend, b)
    ga, gb = run(backend, a).value, run(backend, b).value
    scale = np.abs(expected(a).value_scale) + np.abs(expected(b).value_scale)
    m = compare(gb, ga, ga, ga, scale, dtype, what=f"loss after adding {shift} to every logit")
    if m:
        raise fail(backend, b, m.describe() + " (loss before the shift is 'expected')", exp=ga, got=gb)


@spec_property("zero_at_target")
@given(data=st.data())
def test_zero_at_target(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """At input == target the loss is exactly 0 and so is its gradient (|0| = 0, 0² = 0, sgn(0) = 0)."""
    case = data.draw(cases(variant, dtype, fixed=fixed_options(backend, variant.loss)), label="case")
    case = dataclasses.replace(case, arrays={**case.arrays, "target": case.arrays["input"].copy()})
    # a mean over zero total weight is NaN, not 0: the property is about the loss, not 0/0
    assume(exp_finite(case, variant.differentiable))
    reject_known(backend, case, variant.differentiable)
    got = run(backend, case, wrt=variant.differentiable)
    for what, arr in (("value", got.value), *((f"gradient w.r.t. {n}", g) for n, g in got.grads.items())):
        if arr is None or np.any(np.asarray(arr) != 0):
            raise fail(backend, case, f"{what} is not exactly 0 at input == target", exp=0.0, got=arr)


@spec_property("grad_sums_to_zero")
@given(data=st.data())
def test_grad_sums_to_zero(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """The input gradient sums to zero over the class axis (softmax's gradient is orthogonal to
    shifts); for probability targets this holds for any targets, one-hot ones included."""
    case = data.draw(cases(variant, dtype, fixed=fixed_options(backend, variant.loss)), label="case")
    exp = expected(case, wrt=("input",))
    # where the gradient is undefined (a mean over zero total weight: NaN) there is no sum to check
    assume(bool(np.all(np.isfinite(exp.grads["input"]))))
    reject_known(backend, case, ("input",))
    got = run(backend, case, wrt=("input",))
    g = np.asarray(got.grads["input"])
    cdim = 0 if g.ndim == 1 else 1
    total = np.sum(g, axis=cdim)
    c = g.shape[cdim]
    scale = np.sum(np.abs(exp.grad_scale["input"]), axis=cdim) + c * np.sum(np.abs(g), axis=cdim)
    m = compare(
        total, np.zeros_like(total), 0.0, 0.0, scale, dtype, what="Σ over classes of the input gradient"
    )
    if m:
        raise fail(backend, case, m.describe(), wrt=("input",), exp=np.zeros_like(total), got=total)


@given(data=st.data())
def test_batch_is_per_sample(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """The unreduced losses of a batch equal the losses of each sample evaluated alone."""
    require(backend, variant.loss, "reduction")
    # a batch of at least two: (N, *) element-wise, (N, C, d1, ...) over classes
    dims = st.lists(st.integers(1, 3), min_size=1 if variant.has_class_axis else 0, max_size=3)
    shape = data.draw(st.tuples(st.integers(2, 4), dims).map(lambda t: (t[0], *t[1])), label="shape")
    case = data.draw(
        cases(variant, dtype, fixed=fixed_options(backend, variant.loss), reductions=("none",), shape=shape),
        label="case",
    )
    x = case.arrays["input"]
    reject_known(backend, case)
    whole = run(backend, case).value
    scale = np.abs(expected(case).value_scale)
    for n in range(x.shape[0]):
        one = _sample(case, n)
        reject_known(backend, one)
        got = run(backend, one).value
        m = compare(
            whole[n : n + 1],
            got,
            got,
            got,
            scale[n : n + 1] * 2,
            dtype,
            what=f"sample {n} alone vs in the batch",
        )
        if m:
            raise fail(backend, case, m.describe(), exp=got, got=whole[n : n + 1])


def exp_finite(case: Case, wrt: tuple[str, ...]) -> bool:
    e = expected(case, wrt=wrt)
    return bool(np.all(np.isfinite(e.value)) and all(np.all(np.isfinite(g)) for g in e.grads.values()))


def _sample(case: Case, n: int) -> Case:
    """Sample ``n`` of the batch as a batch of one; tensors that broadcast from the right
    (weights of fewer dims than input, pos_weight, class weights) stay as they are."""
    nd = case.arrays["input"].ndim
    arrays = {}
    for k, a in case.arrays.items():
        full = a.ndim == nd or (k == "target" and a.dtype.kind in "iu" and a.ndim == nd - 1)
        arrays[k] = a[n : n + 1] if full and a.shape[0] == case.arrays["input"].shape[0] else a
    return dataclasses.replace(case, arrays=arrays)
