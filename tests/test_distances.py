"""The named distances of triplet_margin_with_distance_loss (``spec.embedding.DISTANCES``): the
torch backend's callable for each is the one its spec entry states, and an unknown name is refused."""

from __future__ import annotations

import numpy as np
import pytest

import oracle
from conformance.backends import resolve
from spec.embedding import DISTANCES


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_torch_callable_is_the_stated_one(name: str) -> None:
    torch = pytest.importorskip("torch")
    stated = eval(DISTANCES[name].torch, {"torch": torch})  # the spec's text of it
    given = resolve("torch-cpu").function(name)  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    for shape in ((5,), (3, 5), (2, 3, 4)):
        x, y = (torch.tensor(rng.standard_normal(shape)) for _ in range(2))
        assert torch.equal(stated(x, y), given(x, y))


def test_cosine_norm_clamp_passes_the_gradient() -> None:
    """torch clamps the norm in place under no_grad: the gradient flows as if unclamped. Measured on
    torch 2.13.0+cpu, float64: F.cosine_similarity([1e-9, 0, 0], [1, 1, 0], dim=-1) has gradient
    [63639610.306789264, 70710678.11865474, 0] w.r.t. its first argument (a constant eps would give
    7.07e7 in the first component too). With anchor = that vector, positive = [1, 1, 0] and
    negative = -positive, the triplet loss is margin + (1 - cos) - (1 + cos) = margin - 2 cos."""
    a, p, n = np.array([1e-9, 0, 0]), np.array([1.0, 1, 0]), np.array([-1.0, -1, 0])
    ev = oracle.evaluate(
        "triplet_margin_with_distance_loss", a, p, n, distance_function="cosine_distance", margin=3.0
    )
    np.testing.assert_allclose(
        ev.grads["anchor"], -2 * np.array([63639610.306789264, 70710678.11865474, 0]), rtol=4e-16
    )


def test_unknown_distance_is_refused() -> None:
    x = np.ones((2, 3))
    with pytest.raises(oracle.OracleInputError, match=r"distance_function: expected None or the name"):
        oracle.evaluate("triplet_margin_with_distance_loss", x, x, x, distance_function="manhattan")
