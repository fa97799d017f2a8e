"""A chunked evaluation is the whole evaluation: ``oracle.evaluate`` over the batch in chunks, on
several threads, gives bit-identical values, gradients and error bounds to one pass over it.

(The NumPy path's chunks. Without bounds, an element-wise loss's chunks are evaluated by a compiled
pass instead, its elementary functions the C library's and its sum compensated:
``tests/test_fused.py`` holds it to the error model against the NumPy path.)"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import oracle
from oracle import api

RNG = np.random.default_rng(12)
N, C = 37, 11


def _cases() -> list[tuple[str, dict[str, Any]]]:
    x = RNG.standard_normal((N, C)) * 3
    t = RNG.integers(0, C, N)
    t[::5] = -100  # ignored samples
    p = RNG.dirichlet(np.ones(C), N)
    y = RNG.standard_normal((N, 3))
    return [
        ("cross_entropy", dict(input=x, target=t, weight=RNG.uniform(0.5, 2, C), label_smoothing=0.2)),
        ("cross_entropy", dict(input=x, target=p, label_smoothing=0.1)),
        ("nll_loss", dict(input=x, target=np.where(t < 0, 0, t), weight=RNG.uniform(0.5, 2, C))),
        ("mse_loss", dict(input=y, target=RNG.standard_normal((N, 3)))),
        ("binary_cross_entropy", dict(input=RNG.uniform(0.01, 0.99, (N, 3)), target=RNG.random((N, 3)))),
        ("kl_div", dict(input=np.log(p), target=p[::-1].copy())),
        ("gaussian_nll_loss", dict(input=y, target=y[::-1].copy(), var=RNG.uniform(0.1, 2, (N, 3)))),
        ("smooth_l1_loss", dict(input=y, target=np.round(y), beta=0.5)),
        ("multilabel_soft_margin_loss", dict(input=x, target=(p > 0.1).astype(float))),
    ]


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")  # kl_div's, as torch's
@pytest.mark.parametrize("bounds", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(("loss", "kw"), _cases(), ids=lambda c: c if isinstance(c, str) else "")
def test_chunks_give_the_whole(
    monkeypatch: pytest.MonkeyPatch, loss: str, kw: dict[str, Any], reduction: str, bounds: bool
) -> None:
    whole = oracle.evaluate(loss, **kw, reduction=reduction, bounds=bounds)
    monkeypatch.setattr(api, "CHUNK_ELEMENTS", 8)  # a chunk of a row or two
    monkeypatch.setattr(api._Fused, "make", classmethod(lambda *a, **k: None))  # the NumPy path
    monkeypatch.setenv("LOSS_ORACLE_THREADS", "2")
    parts = oracle.evaluate(loss, **kw, reduction=reduction, bounds=bounds)
    fields = ["value", "value_lo", "value_hi", "value_scale"]
    for f in fields:
        a, b = getattr(whole, f), getattr(parts, f)
        assert (a is None) == (b is None), f
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=f)
    for f in ("grads", "grad_lo", "grad_hi", "grad_scale"):
        a, b = getattr(whole, f), getattr(parts, f)
        assert a.keys() == b.keys(), f
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{f}[{k}]")


def test_chunks_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above evaluates in chunks (not the whole at once): the batch is split."""
    seen: list[int] = []
    real = api._chunks

    def spy(prep: Any) -> Any:
        out = real(prep)
        seen.append(len(out))
        return out

    monkeypatch.setattr(api, "CHUNK_ELEMENTS", 8)
    monkeypatch.setattr(api, "_chunks", spy)
    oracle.evaluate("cross_entropy", RNG.standard_normal((N, C)), RNG.integers(0, C, N))
    assert seen and seen[0] > 1
