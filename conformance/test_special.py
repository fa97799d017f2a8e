"""Special points: each convention's points from the spec (kinks, clamps, beta = 0), the empty
batch for every reduction, and overflow of the result's dtype."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from conformance import catalogue
from conformance.backends import DType
from conformance.harness import check
from conformance.strategies import Case

if TYPE_CHECKING:
    from spec import Variant

REDUCTIONS = catalogue.load().reductions  # spec.REDUCTIONS, without importing the spec


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_convention_point(
    backend: Any, variant: Variant, convention: str, point: dict[str, float], reduction: str, dtype: DType
) -> None:
    """The backend's value and gradients at a convention's special point (the oracle's values there
    are pinned to the convention by tests/test_conventions.py)."""
    arrays = {a.name: np.array([point[a.name]]) for a in variant.args if a.name in point}
    options = {p.name: point[p.name] for p in variant.params if p.name in point}
    case = Case(variant.loss, variant.name, dtype, arrays, options, reduction)  # type: ignore[arg-type]
    check(backend, case, wrt=case.differentiable)


def _empty(v: Variant) -> Case:
    """A batch of 0 samples: (0, 3) logits and (0,) indices, or (0, 2) elements."""
    shape: tuple[int, ...] = (0, 3) if v.sample_axis is not None else (0, 2)
    per_sample = shape[:1] if v.sample_axis is not None else shape  # a class index, a label
    arrays = {
        a.name: np.zeros(per_sample, np.int64)
        if v.roles[a.name].role == "index"
        else np.zeros(shape, np.int64)
        if v.roles[a.name].role == "index_set"
        else np.zeros(per_sample if v.roles[a.name].role == "element" else shape)
        for a in v.args
        if not a.optional
    }
    return Case(v.loss, v.name, "float32", arrays, {}, "mean")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty_batch(backend: Any, variant: Variant, reduction: str) -> None:
    """N = 0: 'none' is empty, 'sum' is 0 and 'mean' is NaN (0/0), as documented."""
    import dataclasses

    case = dataclasses.replace(_empty(variant), reduction=reduction)
    check(backend, case, wrt=case.differentiable)
