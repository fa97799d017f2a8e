"""ctc_loss on the backend against the oracle's forward–backward recursion (``oracle.ctc``).

CTC is defined over alignments (``spec.sequence``), not by a closed form, so it has these checks of
its own rather than the closed-form suite's: the value and torch's gradient convention w.r.t.
``log_probs`` on drawn cases (every reduction, ``zero_infinity``, blank anywhere, padded and
concatenated targets, unbatched input, unnormalised log-probabilities, infeasible targets and
input_length 0), under the error model with the oracle's CTC error scale; and the invalid calls
the oracle rejects, which the backend must reject too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.backends import DType
from conformance.errormodel import compare, round_to, underflow
from conformance.harness import fixed_options
from oracle.ctc import CTCInputError, ctc_loss

LOSS = "ctc_loss"


@dataclasses.dataclass(frozen=True)
class CTCCase:
    dtype: DType
    log_probs: np.ndarray[Any, Any]
    targets: np.ndarray[Any, Any]
    input_lengths: np.ndarray[Any, Any]
    target_lengths: np.ndarray[Any, Any]
    options: dict[str, Any]

    def reproduction(self, backend: Any) -> str:
        def arr(a: np.ndarray[Any, Any]) -> str:
            return "np." + repr(np.asarray(a)).replace("\n", "")

        return (
            "import numpy as np, torch\nfrom oracle.ctc import ctc_loss\n"
            f"lp = {arr(self.log_probs)}\ntargets = {arr(self.targets)}\n"
            f"input_lengths = {arr(self.input_lengths)}\ntarget_lengths = {arr(self.target_lengths)}\n"
            f"expected = ctc_loss(lp, targets, input_lengths, target_lengths, **{self.options!r})\n"
            f"t = torch.tensor(lp, dtype=torch.{self.dtype}, requires_grad=True)\n"
            "got = torch.nn.functional.ctc_loss(t, torch.tensor(targets), torch.tensor(input_lengths), "
            f"torch.tensor(target_lengths), **{self.options!r})\n"
            "print(expected.value, got)\n"
        )


@st.composite
def ctc_cases(draw: st.DrawFn, dtype: DType, fixed: frozenset[str] = frozenset()) -> CTCCase:
    t_max, c = draw(st.integers(1, 6), label="T"), draw(st.integers(2, 5), label="C")
    batched = draw(st.integers(0, 4)) > 0
    n = draw(st.integers(1, 3)) if batched else 1
    blank = 0 if "blank" in fixed else draw(st.integers(0, c - 1))
    labels = [k for k in range(c) if k != blank]
    il = np.array([draw(st.integers(0, t_max)) for _ in range(n)])
    tl = np.array([draw(st.integers(0, min(3, t_max + 1))) for _ in range(n)])
    rows = [[draw(st.sampled_from(labels)) for _ in range(int(k))] for k in tl]
    if batched and draw(st.booleans()):  # padded (N, S), the padding any label
        s = max([*tl.tolist(), 1])
        targets = np.array([r + [labels[0]] * (s - len(r)) for r in rows], dtype=np.int64)
    else:  # concatenated (Σ target_lengths)
        targets = np.array([x for r in rows for x in r], dtype=np.int64)
    spread = draw(st.sampled_from([1.0, 4.0, 30.0]))
    z = np.array(draw(st.lists(st.floats(-1, 1), min_size=t_max * n * c, max_size=t_max * n * c)))
    z = (z * spread).reshape(t_max, n, c)
    lp = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True)) if draw(st.integers(0, 3)) else z
    lp = round_to(lp, dtype)
    if not batched:
        lp, il, tl = lp[:, 0, :], il.reshape(()), tl.reshape(())
    options: dict[str, Any] = {
        "blank": blank,
        "reduction": "mean" if "reduction" in fixed else draw(st.sampled_from(["none", "mean", "sum"])),
        "zero_infinity": False if "zero_infinity" in fixed else draw(st.booleans()),
    }
    return CTCCase(dtype, lp, targets, il, tl, options)


def _call(backend: Any, case: CTCCase, want_grad: bool) -> tuple[Any, Any]:
    fn = backend.loss(LOSS)
    lp = backend.tensor(case.log_probs, case.dtype, requires_grad=want_grad)
    ints = [backend.tensor(a, case.dtype) for a in (case.targets, case.input_lengths, case.target_lengths)]
    return fn(lp, *ints, **case.options), lp


def _fail(backend: Any, case: CTCCase, what: str) -> None:
    pytest.fail(
        f"{LOSS} does not conform on {backend.name}, dtype {case.dtype}, options {case.options}\n"
        f"  {what}\n  reproduce with (paste into python):\n{case.reproduction(backend)}",
        pytrace=False,
    )


def check(backend: Any, case: CTCCase) -> None:
    u = underflow(case.dtype)
    exp = ctc_loss(
        case.log_probs, case.targets, case.input_lengths, case.target_lengths, **case.options, underflow=u
    )
    out, lp = _call(backend, case, want_grad=True)
    got = backend.to_numpy(out)
    m = compare(got, exp.value, exp.value, exp.value, exp.value_scale, case.dtype, what="value")
    if m:
        _fail(backend, case, f"{m.describe()}\n  expected: {exp.value!r}\n  got:      {got!r}")
    upstream = np.asarray(round_to(np.full(np.shape(exp.value), 0.5), case.dtype))
    (g,) = backend.grad(out, [lp], upstream)
    want = ctc_loss(
        case.log_probs,
        case.targets,
        case.input_lengths,
        case.target_lengths,
        **case.options,
        upstream=upstream,
    )
    if g is None:
        _fail(backend, case, "no gradient w.r.t. log_probs")
    m = compare(
        g, want.grad, want.grad, want.grad, want.grad_scale, case.dtype, what="gradient w.r.t. log_probs"
    )
    if m:
        _fail(backend, case, f"{m.describe()}\n  expected: {want.grad!r}\n  got:      {g!r}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from conformance.conftest import _parametrize, loss_marks
    from conformance.plugin import backend_of, selected_losses

    wanted = selected_losses(metafunc.config)
    backend = backend_of(metafunc.config)
    on = wanted is None or LOSS in wanted
    marks = loss_marks(backend, LOSS, f"{backend.name} has no {LOSS}")
    if "ctc_dtype" in metafunc.fixturenames:
        dtypes = list(backend.dtypes(LOSS)) if on else []
        _parametrize(
            metafunc, ("ctc_dtype",), [pytest.param(d, id=f"{LOSS}-{d}", marks=marks) for d in dtypes]
        )
    if "bad" in metafunc.fixturenames:
        bad = [pytest.param(b[1], b[2], id=f"{LOSS}-{b[0]}", marks=marks) for b in BAD] if on else []
        _parametrize(metafunc, ("bad", "why"), bad)


@given(data=st.data())
def test_ctc_value_and_gradient(backend: Any, ctc_dtype: DType, data: st.DataObject) -> None:
    """Value and torch's gradient convention (exp(lp) + ∂loss/∂lp at t < input_length, 0 after;
    ``spec.sequence``) against the oracle's recursion."""
    case = data.draw(ctc_cases(ctc_dtype, fixed_options(backend, LOSS)), label="case")
    check(backend, case)


def _bad_cases() -> list[tuple[str, dict[str, Any], str | None]]:
    """(id, change to a valid call, why torch accepts it or None): each breaks one rule."""
    lp = np.log(np.full((4, 2, 3), 1 / 3))
    base = {"log_probs": lp, "targets": np.array([[1, 2], [2, 2]]), "input_lengths": np.array([4, 4]),
            "target_lengths": np.array([2, 1])}  # fmt: skip
    out: list[tuple[str, dict[str, Any], str | None]] = [
        ("blank-out-of-range", {"blank": 3}, None),
        ("input-length-too-long", {"input_lengths": np.array([5, 4])}, None),
        ("target-length-negative", {"target_lengths": np.array([-1, 1])}, None),
        ("targets-too-short", {"targets": np.array([[1], [2]])}, None),
        ("concatenated-wrong-length", {"targets": np.array([1, 2])}, None),
        ("lengths-float", {"input_lengths": np.array([4.0, 4.0])}, None),
        ("reduction-unknown", {"reduction": "average"}, None),
        (
            "empty",
            {
                "log_probs": np.zeros((4, 0, 3)),
                "targets": np.zeros((0, 2), np.int64),
                "input_lengths": np.zeros(0, np.int64),
                "target_lengths": np.zeros(0, np.int64),
            },
            None,
        ),
        (
            "label-is-blank",
            {"targets": np.array([[1, 0], [2, 2]])},
            "torch 2.13.0+cpu: ctc_loss(log_probs, [[1, 0], ...], ...) -> tensor([1.3453]): the blank is "
            "used as a label, unchecked (pytorch#174602)",
        ),
        (
            "label-too-large",
            {"targets": np.array([[1, 3], [2, 2]])},
            "torch 2.13.0+cpu: a label 3 for C = 3 -> tensor([0.6280]): out-of-bounds read, unchecked "
            "(pytorch#174602, #193794)",
        ),
        (
            "label-negative",
            {"targets": np.array([[1, -1], [2, 2]])},
            "torch 2.13.0+cpu: a label -1 -> tensor([1.9588]): out-of-bounds read, unchecked",
        ),
    ]
    return [(i, {**base, **ch}, why) for i, ch, why in out]


BAD = _bad_cases()


def test_ctc_rejects_bad_input(
    backend: Any, bad: dict[str, Any], why: str | None, request: pytest.FixtureRequest
) -> None:
    """The oracle rejects the call naming the argument; the backend must raise too. The calls torch
    2.13 accepts (labels it does not check) are known divergences: a strict xfail on torch."""
    call = dict(bad)
    tensors = [call.pop(k) for k in ("log_probs", "targets", "input_lengths", "target_lengths")]
    with pytest.raises(CTCInputError):
        ctc_loss(*tensors, **call)
    if (
        why is not None
        and backend.name.startswith("torch-")
        and LOSS not in getattr(backend, "overrides", {})
    ):
        request.applymarker(
            pytest.mark.xfail(strict=True, reason=f"known divergence (torch accepts it): {why}")
        )
    fn = backend.loss(LOSS)
    args = [backend.tensor(a, "float64") for a in tensors]
    try:
        got = fn(*args, **call)
    except Exception:
        return
    pytest.fail(f"{LOSS} accepted an invalid call ({bad}): returned {got}", pytrace=False)
