"""Special points: each convention's points from the spec (kinks, clamps, beta = 0), the empty
batch for every reduction, and overflow of the result's dtype."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conformance.harness import check
from conformance.strategies import Case
from spec import REDUCTIONS, Variant
from spec.derive import all_variants


def _points() -> list[Any]:
    out = []
    for v in all_variants():
        for c in v.conventions:
            for n, (args, _) in enumerate(c.points):
                vid = v.loss if v.name == "default" else f"{v.loss}-{v.name}"
                out.append(pytest.param(v.key, c.name, args, id=f"{vid}-{c.name}-{n}"))
    return out


@pytest.mark.parametrize(("key", "convention", "point"), _points())
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_convention_point(backend: Any, key: str, convention: str, point: dict[str, float], reduction: str,
                          dtype: str, pytestconfig: pytest.Config) -> None:
    """The backend's value and gradients at a convention's special point (the oracle's values there
    are pinned to the convention by tests/test_conventions.py)."""
    from spec.derive import variant_by_key

    v = variant_by_key(key)
    wanted = pytestconfig.getoption("conformance_loss")
    if wanted and v.loss not in wanted.split(","):
        pytest.skip(f"--loss does not select {v.loss}")
    arrays = {a.name: np.array([point[a.name]]) for a in v.args if a.name in point}
    options = {p.name: point[p.name] for p in v.params if p.name in point}
    case = Case(v.loss, v.name, dtype, arrays, options, reduction)  # type: ignore[arg-type]
    check(backend, case, wrt=v.differentiable)


def _empty(v: Variant) -> Case:
    if v.has_class_axis:
        shape: tuple[int, ...] = (0, 3)
        target = np.zeros((0,), np.int64) if v.arg("target").axis == "index" else np.zeros(shape)
    else:
        shape, target = (0, 2), np.zeros((0, 2))
    return Case(v.loss, v.name, "float32", {"input": np.zeros(shape), "target": target}, {}, "mean")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_empty_batch(backend: Any, variant: Variant, reduction: str) -> None:
    """N = 0: 'none' is empty, 'sum' is 0 and 'mean' is NaN (0/0), as documented."""
    import dataclasses

    case = dataclasses.replace(_empty(variant), reduction=reduction)
    check(backend, case, wrt=variant.differentiable)
