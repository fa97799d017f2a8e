"""Every printed reproduction replays the failing comparison itself: for a failure of each check
kind (``conformance.checks.CHECKS``), the ``replay(...)`` line, executed, raises the same failure."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from conformance import checks, second_order
from conformance.backends import resolve
from conformance.backends.override import OverrideBackend
from conformance.harness import ConformanceFailure, replay
from conformance.strategies import Case
from tests.planted import lenient
from tests.planted import second_order_mutants as mutants
from tests.planted import wrong_properties as wrong

TORCH = resolve("torch-cpu")
_X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
_Y = np.array([[0.25, 1.0, 0.0], [-1.0, 0.5, 0.75]])
_CE = {"input": np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]]), "target": np.array([2, 0])}
_CE_OPTS = {"ignore_index": -100, "label_smoothing": 0.0}


def _case(loss: str, variant: str, arrays: dict, reduction: str, options: dict | None = None) -> Case:
    return Case(loss, variant, "float32", arrays, options or {}, reduction)


#: check kind -> (loss, wrong implementation, the call that fails)
KINDS = {
    "oracle": ("mse_loss", wrong.mse_half, lambda b: checks.oracle(
        b, _case("mse_loss", "default", {"input": _X, "target": _Y}, "mean"), wrt=("input",),
        upstream=np.array(1.5), layout="non_contiguous")),
    "reductions_agree": ("mse_loss", wrong.mse_sum_too_big, lambda b: checks.reductions_agree(
        b, _case("mse_loss", "default", {"input": _X, "target": _Y}, "none"))),
    "batch_is_per_sample": ("mse_loss", wrong.mse_none_times_batch, lambda b: checks.batch_is_per_sample(
        b, _case("mse_loss", "default", {"input": _X, "target": _Y}, "none"))),
    "zero_at_target": ("l1_loss", wrong.l1_offset, lambda b: checks.zero_at_target(
        b, _case("l1_loss", "default", {"input": _X, "target": _X.copy()}, "sum"))),
    "shift_invariant": ("cross_entropy", wrong.ce_plus_linear, lambda b: checks.shift_invariant(
        b, _case("cross_entropy", "class_index", _CE, "mean", _CE_OPTS), shift=3)),
    "grad_sums_to_zero": ("cross_entropy", wrong.ce_plus_linear, lambda b: checks.grad_sums_to_zero(
        b, _case("cross_entropy", "class_index", _CE, "sum", _CE_OPTS))),
    "rejects_bad_input": ("cross_entropy", lenient.cross_entropy_clamping_targets,
        lambda b: checks.rejects_bad_input(b, _case(
            "cross_entropy", "class_index", {**_CE, "target": np.array([3, 0])}, "mean"))),
    "warns_as_specified": ("l1_loss", wrong.l1_broadcasts_silently, lambda b: checks.warns_as_specified(
        b, _case("l1_loss", "default", {"input": _X, "target": _Y[:1]}, "sum"))),
    "second_order": ("mse_loss", mutants.mse_mixed_partial_sign, lambda b: second_order.check(
        b, _case("mse_loss", "default", {"input": _X, "target": _Y}, "sum"), wrt=("input", "target"),
        upstream=np.array(1.5), directions={"input": _Y, "target": _X})),
}  # fmt: skip
#: the kinds an implementation fails by raising (rejects_bad_input requires it to raise)
RAISING_FAILS = sorted(k for k in KINDS if k != "rejects_bad_input")


def test_every_check_kind_is_covered() -> None:
    assert sorted(KINDS) == sorted(checks.CHECKS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_printed_line_fails_the_same_way(kind: str) -> None:
    loss, impl, call = KINDS[kind]
    backend = OverrideBackend(TORCH, {loss: impl})
    call(TORCH)  # torch itself conforms: the failure below is the implementation's
    with pytest.raises(ConformanceFailure) as first:
        call(backend)
    message = str(first.value)
    code = textwrap.dedent(message.split("reproduce with (paste into python):\n", 1)[1])
    if kind != "oracle":
        assert f"check={kind!r}" in code, code
    with pytest.raises(ConformanceFailure) as again:
        exec(compile(code, "<reproduction>", "exec"), {})
    assert str(again.value).splitlines()[:2] == message.splitlines()[:2]


def test_replay_returns_normally_where_the_backend_conforms(capsys: pytest.CaptureFixture[str]) -> None:
    replay("torch-cpu", "mse_loss", dtype="float32", reduction="mean",
           arrays={"input": _X, "target": _Y}, options={}, wrt=("input",))  # fmt: skip
    assert "conforms" in capsys.readouterr().out


def test_replay_rejects_an_unknown_check() -> None:
    with pytest.raises(ValueError, match="check: expected one of"):
        replay("torch-cpu", "mse_loss", dtype="float32", reduction="mean",
               arrays={"input": _X, "target": _Y}, options={}, check="bogus")  # fmt: skip


@pytest.mark.parametrize("kind", RAISING_FAILS)
def test_an_implementation_that_raises_fails_each_check_kind_readably(kind: str) -> None:
    """Raising on valid input is that check's failure, "raised RuntimeError: …", whose printed line
    replays through the same check kind (not an internal traceback)."""
    loss, _, call = KINDS[kind]
    backend = OverrideBackend(TORCH, {loss: wrong.raises})
    with pytest.raises(ConformanceFailure) as first:
        call(backend)
    message = str(first.value)
    assert "raised RuntimeError: kernel exploded" in message.splitlines()[1], message
    code = textwrap.dedent(message.split("reproduce with (paste into python):\n", 1)[1])
    assert kind == "oracle" or f"check={kind!r}" in code, code
    with pytest.raises(ConformanceFailure) as again:
        exec(compile(code, "<reproduction>", "exec"), {})
    assert str(again.value).splitlines()[1] == message.splitlines()[1]


def test_an_empty_array_is_printed_with_its_shape() -> None:
    """np.array([]) would replay an empty (N, C) batch as shape (0,): a reproduction that fails
    with a different error (found by a user's trial)."""
    from conformance.harness import _fmt

    for a in (np.zeros((0, 3)), np.zeros((0,), np.int64), np.zeros((2, 0))):
        b = eval(_fmt(a), {"np": np})
        assert b.shape == a.shape and b.dtype.kind == a.dtype.kind
