"""Memory layouts: non-contiguous, sliced (storage offset), expanded (stride 0) and channels-last
inputs, each compared with the oracle under the error model (not bitwise with the contiguous result:
summation order may differ)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.backends import DType
from conformance.harness import check, fixed_options
from conformance.strategies import cases

if TYPE_CHECKING:
    from spec import Variant

LAYOUTS = ("non_contiguous", "sliced", "expanded", "channels_last")


def _shape_for(variant: Variant, layout: str) -> st.SearchStrategy[tuple[int, ...]]:
    if layout == "channels_last":  # 4-D (N, C, H, W)
        return st.tuples(*(st.integers(1, 3) for _ in range(4)))
    if variant.input_ndims and 3 not in variant.input_ndims:  # (N, C) at most
        return st.tuples(st.integers(1, 3), st.integers(1, 4))
    if variant.sample_axis is not None:
        return st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3))
    return st.tuples(st.integers(1, 3), st.integers(1, 4))


#: each layout runs a quarter of the profile's examples (at least 5): the four layouts of a loss and
#: dtype together run one check's worth. A layout bug (a kernel that reads the storage in its own
#: order, or ignores the offset) is wrong on nearly every example with two distinct elements
#: (tests/test_layout_bugs.py plants such kernels and measures it). Read from the profile loaded at
#: start-up (``--hypothesis-profile``, before this module is collected).
PER_LAYOUT = settings(max_examples=max(5, settings().max_examples // len(LAYOUTS)))


@pytest.mark.parametrize("layout", LAYOUTS)
@PER_LAYOUT
@given(data=st.data())
def test_layout(backend: Any, variant: Variant, dtype: DType, layout: str, data: st.DataObject) -> None:
    if layout == "channels_last" and variant.input_ndims and 4 not in variant.input_ndims:
        pytest.skip(f"{variant.loss} takes {variant.input_ndims}-d input only: no 4-d channels-last tensor")
    shape = data.draw(_shape_for(variant, layout), label="shape")
    case = data.draw(
        cases(variant, dtype, fixed=fixed_options(backend, variant.loss), shape=shape), label="case"
    )
    if layout == "expanded":  # stride 0 along dim 0: every row equals the first
        from spec import REGISTRY

        arrays = {
            k: (
                np.broadcast_to(a[:1], a.shape).copy()
                if k in REGISTRY[variant.loss].tensors and a.dtype.kind == "f" and a.ndim
                else a
            )
            for k, a in case.arrays.items()
        }
        case = dataclasses.replace(case, arrays=arrays)
    from conformance.divergences import known  # (imports SymPy: not at collection)

    wrt = case.differentiable
    if known(backend, case, wrt, layout) is not None and known(backend, case, (), layout) is None:
        wrt = ()  # only the gradients hit a known divergence in this layout (its witness checks
        # them): the value alone (nll_loss on channels_last: every case, the forward is right)
    check(backend, case, wrt=wrt, layout=layout)  # type: ignore[arg-type]


test_layout.dtypes = ("float64", "float32")  # type: ignore[attr-defined]
