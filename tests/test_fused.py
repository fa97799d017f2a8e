"""The compiled one-pass evaluation of the element-wise losses (``oracle._fused``, used by
``oracle.evaluate`` on chunked calls without bounds) against the NumPy evaluation it replaces.

The two evaluate the same lowered operations in the same order; only the elementary functions
(``exp``, ``log``, ``log1p``) come from another library. So each output must agree with the NumPy
path's within 2 rounding errors of the error model's own scale for it (``u·S``, the NumPy path's
``value_scale``/``grad_scale``, evaluated at the same point: ``tests/test_ground_truth.py`` proves the
NumPy path against mpmath with that scale). Where the fused pass meets an overflow or a result that
is not finite, the NumPy path is taken for the whole call: the results are then the NumPy path's,
bit for bit. A reduced value is summed compensated per chunk (the chunks' sums added exactly): it
must be within an ulp or so of the exactly rounded sum of the NumPy path's element values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import oracle
import oracle.api as api
from spec import REGISTRY

U = np.finfo(np.float64).eps / 2
N = 4000  # elements: with CHUNK_ELEMENTS = 256, sixteen chunks (chunked calls are fused)

ELEMENTWISE = [(n, v.key) for n, loss in REGISTRY.items() for v in loss.variants if v.sample_axis is None]

#: per variant: options other than the defaults worth a kernel of their own (a scalar option's
#: branches are Python conditionals in the lowered source)
OPTIONS: dict[str, list[dict[str, Any]]] = {
    "smooth_l1_loss": [{"beta": 0.0}, {"beta": 0.5}],
    "huber_loss": [{"delta": 2.0}],
    "kl_div": [{"log_target": True}],
    "poisson_nll_loss": [{"log_input": False, "full": True}],
    "gaussian_nll_loss": [{"full": True}],
    "margin_ranking_loss": [{"margin": 0.5}],
}


def _draw(kind: str, rng: np.random.Generator, extreme: bool) -> np.ndarray[Any, Any]:
    """Values of a domain, about one in eight from its far ranges where ``extreme``."""
    if kind == "real":
        a = rng.standard_normal(N) * rng.choice([1e-3, 1.0, 30.0], N)
        far = rng.choice([1e-300, -1e-300, 700.0, -700.0, 1e150, -1e150, 0.0], N)
    elif kind in ("unit", "probabilities"):
        a = rng.uniform(0.0, 1.0, N)
        far = rng.choice([0.0, 1.0, 1e-300, 1 - 2.0**-53, 2.0**-53], N)
    elif kind == "nonnegative":
        a = np.abs(rng.standard_normal(N)) * rng.choice([1e-3, 1.0, 30.0], N)
        far = rng.choice([0.0, 1e-300, 1e150, 700.0], N)
    elif kind == "sign":
        return np.where(rng.random(N) < 0.5, -1.0, 1.0)
    else:
        raise ValueError(kind)
    return np.where(rng.random(N) < 0.125, far, a) if extreme else a


@contextmanager
def _small_chunks(fuse: bool = True) -> Iterator[list[bool]]:
    """Chunks of 256 elements (so that a test's arrays are chunked, and fused unless not ``fuse``:
    the NumPy path chunked alike); yields a list to which every fused chunk's outcome is appended."""
    ran: list[bool] = []
    run, chunk, make = api._Fused.run, api.CHUNK_ELEMENTS, api._Fused.make
    if not fuse:
        api._Fused.make = classmethod(lambda *a, **k: None)  # type: ignore[method-assign,assignment]

    def counted(self: Any, *a: Any) -> bool:
        ok = run(self, *a)
        ran.append(ok)
        return ok

    api._Fused.run, api.CHUNK_ELEMENTS = counted, 256  # type: ignore[method-assign]
    try:
        yield ran
    finally:
        api._Fused.run, api.CHUNK_ELEMENTS, api._Fused.make = run, chunk, make  # type: ignore[method-assign]


def _arrays(
    key: str, seed: int, extreme: bool, optional: bool = True
) -> tuple[dict[str, Any], tuple[str, ...]]:
    v = next(v for loss in REGISTRY.values() for v in loss.variants if v.key == key)
    rng = np.random.default_rng(seed)
    arrays = {a.name: _draw(a.domain.kind, rng, extreme) for a in v.args if optional or not a.optional}
    return arrays, tuple(n for n in v.differentiable if n in arrays)


def _cases() -> list[Any]:
    return [
        pytest.param(
            name, key, opts, id=f"{key}-{'-'.join(f'{k}={v}' for k, v in opts.items()) or 'default'}"
        )
        for name, key in ELEMENTWISE
        for opts in [{}, *OPTIONS.get(name, [])]
    ]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "key", "opts"), _cases())
def test_fused_matches_numpy_within_the_error_model(name: str, key: str, opts: dict[str, Any]) -> None:
    arrays, wrt = _arrays(key, 0, extreme=False)
    upstream = np.random.default_rng(1).standard_normal(N)
    ref = oracle.evaluate(name, **arrays, **opts, reduction="none", wrt=wrt, upstream=upstream, bounds=True)
    with _small_chunks() as ran:
        got = oracle.evaluate(name, **arrays, **opts, reduction="none", wrt=wrt, upstream=upstream)
    assert ran and all(ran), f"{key}: the fused pass was not taken ({ran[:3]})"
    assert ref.value_scale is not None
    worst = 0.0
    for out, want, scale in [
        (got.value, ref.value, ref.value_scale),
        *((got.grads[n], ref.grads[n], ref.grad_scale[n]) for n in wrt),
    ]:
        diff = np.abs(np.asarray(out) - np.asarray(want))
        allowed = 2 * U * np.asarray(scale)
        assert np.array_equal(np.isnan(out), np.isnan(want))
        worst = max(
            worst, float(np.nanmax(np.where(allowed > 0, diff / np.where(allowed > 0, allowed, 1), diff > 0)))
        )
    assert worst <= 1.0, f"{key}: {worst:.3g} × the allowed difference"


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "key"), ELEMENTWISE)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_fused_sum_is_compensated(name: str, key: str, reduction: str) -> None:
    """The reduced value: the fused pass's compensated sum against the exactly rounded sum (fsum) of
    the NumPy path's element values, over the same denominator. (Without the optional weights: a
    mean weighted by an argument takes the quotient rule's second pass, which is not fused.)"""
    arrays, wrt = _arrays(key, 2, extreme=False, optional=False)
    elements = oracle.evaluate(name, **arrays, reduction="none", wrt=())
    with _small_chunks() as ran:
        got = oracle.evaluate(name, **arrays, reduction=reduction, wrt=wrt)
    assert ran and all(ran)
    exact = math.fsum(np.asarray(elements.value, np.float64))
    if reduction == "mean":
        exact /= got.denominator
    err = abs(float(got.value) - exact)
    # Neumaier's sum of a chunk is within 2u·Σ|v| of it; the chunks' sums are added exactly
    assert (
        err
        <= 2 * U * math.fsum(np.abs(elements.value)) / (got.denominator if reduction == "mean" else 1)
        + abs(exact) * U
    )


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize(("name", "key"), ELEMENTWISE)
@pytest.mark.parametrize("seed", [3, 4])
def test_fused_at_extremes(name: str, key: str, seed: int) -> None:
    """At the domains' far ends (1e150, ±700, 1e-300, 0, 1): where a chunk overflows the whole call
    is the NumPy path's (chunked alike: it redoes a chunk that overflows in extended precision),
    bit for bit; else within the error model's scale as above."""
    arrays, wrt = _arrays(key, seed, extreme=True)
    ref = oracle.evaluate(name, **arrays, reduction="none", wrt=wrt, bounds=True)
    with _small_chunks(fuse=False):
        plain = oracle.evaluate(name, **arrays, reduction="none", wrt=wrt)
    with _small_chunks() as ran:
        got = oracle.evaluate(name, **arrays, reduction="none", wrt=wrt)
    assert ran
    pairs = [
        (got.value, plain.value, ref.value_scale),
        *((got.grads[n], plain.grads[n], ref.grad_scale[n]) for n in wrt),
    ]
    for out, want, scale in pairs:
        if not all(ran):  # left to NumPy: the same numbers
            np.testing.assert_array_equal(out, want)
        else:
            ok = (
                (out == want)
                | (np.abs(out - want) <= 2 * U * np.asarray(scale))
                | (np.isnan(out) & np.isnan(want))
            )
            assert ok.all(), f"{key}: {np.flatnonzero(~ok)[:5]}"


def test_overflow_leaves_the_call_to_numpy() -> None:
    """(1e200 - (-1e200))² overflows in the first chunk: the call is the NumPy path's (which redoes
    it in extended precision), bit for bit, value and gradients."""
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal(N), rng.standard_normal(N)
    x[3], t[3] = 1e200, -1e200
    with _small_chunks(fuse=False):
        plain = oracle.evaluate("mse_loss", x, t, reduction="sum", wrt=("input", "target"))
    with _small_chunks() as ran:
        got = oracle.evaluate("mse_loss", x, t, reduction="sum", wrt=("input", "target"))
    assert False in ran
    assert got.value == plain.value and not np.isfinite(got.value)
    for n in ("input", "target"):
        np.testing.assert_array_equal(got.grads[n], plain.grads[n])


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"reduction": "sum", "label_smoothing": 0.1, "weight": "w"},
        {"reduction": "none", "upstream": "u"},
        {"target": "p"},
    ],
    ids=["mean", "sum-weight-smoothing", "none-upstream", "probabilities"],
)
def test_linear_cross_entropy_in_blocks(monkeypatch: pytest.MonkeyPatch, kw: dict[str, Any]) -> None:
    """``oracle.composite.linear_cross_entropy`` without bounds evaluates the batch in blocks (the
    logits of a block at a time, the mean's denominator first): within 2 rounding errors of the
    error model's scale of the whole evaluation, value and gradients; and the blocks are taken."""
    from oracle import composite

    rng = np.random.default_rng(6)
    n, h, c = 300, 16, 50
    x, w, b = rng.standard_normal((n, h)), rng.standard_normal((c, h)), rng.standard_normal(c)
    t: Any = rng.integers(0, c, n)
    t[::7] = -100
    kw = dict(kw)
    if kw.pop("target", None):
        t = rng.dirichlet(np.ones(c), n)
    kw = {
        k: (rng.uniform(0.5, 2, c) if v == "w" else rng.standard_normal(n) if v == "u" else v)
        for k, v in kw.items()
    }
    whole = composite.linear_cross_entropy(x, w, t, linear_bias=b, bounds=True, **kw)
    blocks: list[int] = []
    real = composite._in_blocks

    def spy(*a: Any, **k: Any) -> Any:
        blocks.append(a[4])
        return real(*a, **k)

    monkeypatch.setattr(composite, "BLOCK_ELEMENTS", 7 * c)
    monkeypatch.setattr(composite, "_in_blocks", spy)
    got = composite.linear_cross_entropy(x, w, t, linear_bias=b, **kw)
    assert blocks == [7]
    assert whole.value_scale is not None
    assert np.all(np.abs(got.value - whole.value) <= 2 * U * whole.value_scale)
    for k in whole.grads:
        assert np.all(np.abs(got.grads[k] - whole.grads[k]) <= 2 * U * whole.grad_scale[k]), k
