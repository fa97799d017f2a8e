"""Values: the backend's loss against the oracle, for every reduction, and the reductions against
each other (sum = Σ none; mean = Σ none / the documented denominator)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conformance.backends import DType
from conformance.errormodel import compare
from conformance.harness import check, expected, fail, fixed_options, reject_known, require, run
from conformance.strategies import cases
from spec import REDUCTIONS, Variant


@given(data=st.data())
def test_value(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    check(backend, data.draw(cases(variant, dtype, fixed=fixed_options(backend, variant.loss)), label="case"))


@given(data=st.data())
def test_reductions_agree(backend: Any, variant: Variant, dtype: DType, data: st.DataObject) -> None:
    """The backend's 'sum' and 'mean' equal its own 'none' summed and divided (within the bound of
    each reduction's error scale plus the unreduced ones')."""
    require(backend, variant.loss, "reduction")
    import dataclasses

    base = data.draw(
        cases(variant, dtype, fixed=fixed_options(backend, variant.loss), reductions=("none",)), label="case"
    )
    for reduction in REDUCTIONS:
        reject_known(backend, dataclasses.replace(base, reduction=reduction))
    none = run(backend, base).value
    exp_none = expected(base)
    for reduction in ("sum", "mean"):
        case = dataclasses.replace(base, reduction=reduction)
        exp = expected(case)
        got = run(backend, case).value
        keep = np.asarray(exp_none.value_scale)
        if reduction == "sum":
            want = np.sum(none)
        else:
            denom = float(exp.denominator) if exp.denominator is not None else float(none.size)
            with np.errstate(all="ignore"):
                want = np.sum(none) / denom if denom != 0 else np.float64(np.nan)
        # the bound: this reduction's own scale plus the scale of the unreduced terms it sums
        scale = np.abs(exp.value_scale) + np.sum(np.abs(keep)) / (
            1 if reduction == "sum" else max(abs(denom), 1e-300)
        )
        m = compare(
            got, want, want, want, scale, dtype, what=f"reduction={reduction!r} against its own 'none'"
        )
        if m:
            raise fail(backend, case, m.describe() + f" (Σ of 'none' = {np.sum(none)!r})", exp=want, got=got)
