"""The checks of the suite as plain functions of a backend and a case, so that a failure replays.

Each check kind takes ``(backend, case, ...)`` with everything it needs as arguments (no drawing, no
randomness) and raises :class:`conformance.harness.ConformanceFailure` when the backend does not
conform. The Hypothesis tests in ``conformance/test_*.py`` only draw cases and call these;
``conformance.harness.replay`` calls the same function with the same arguments, so the
``replay(...)`` line printed with a failure fails the same way. ``CHECKS`` maps each kind's name
(the ``check=`` of a printed reproduction) to its function.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from conformance.backends import Backend, Layout
from conformance.errormodel import compare
from conformance.harness import call, check, expected, fail, guarded, reject_known
from conformance.strategies import Case

Array = np.ndarray[Any, Any]


def _scale(ev: Any) -> Any:
    """The value's error scale of an evaluation made with bounds (``harness.expected``'s are)."""
    assert ev.value_scale is not None, "an evaluation without bounds"
    return ev.value_scale


def _differentiable(case: Case) -> tuple[str, ...]:
    return case.differentiable


def oracle(
    backend: Backend,
    case: Case,
    *,
    wrt: Sequence[str] = (),
    upstream: Array | None = None,
    layout: Layout = "contiguous",
    known_ok: bool = False,
) -> None:
    """The value (and the gradients of ``wrt``) against the oracle, under the error model."""
    check(backend, case, wrt=wrt, upstream=upstream, layout=layout, known_ok=known_ok)


@guarded
def reductions_agree(backend: Backend, case: Case, *, known_ok: bool = False) -> None:
    """The backend's 'sum' and 'mean' equal its own 'none' summed and divided (within the bound of
    each reduction's error scale plus the unreduced ones'). ``case`` has reduction 'none'."""
    base, reductions = _unreduced(backend, case, known_ok)
    got, exp = {}, {}
    for reduction in reductions:
        reduced = dataclasses.replace(base, reduction=reduction)
        exp[reduction] = expected(reduced)
        shown = base if reduction != "none" else None
        got[reduction] = call(backend, reduced, reproduce=shown, check="reductions_agree").value
    _agree(backend, base, got, exp)


@guarded
def values(backend: Backend, case: Case, *, known_ok: bool = False) -> None:
    """The value under every reduction against the oracle (each failure replays as check
    ``oracle`` of that reduction), then 'sum' and 'mean' against the backend's own 'none' (check
    ``reductions_agree``): one case, each reduction called once."""
    base, reductions = _unreduced(backend, case, known_ok)
    got, exp = {}, {}
    for reduction in reductions:
        reduced = dataclasses.replace(base, reduction=reduction)
        outcome, exp[reduction] = check(backend, reduced, known_ok=True)
        got[reduction] = outcome.value
    if _agree(backend, base, got, exp, raising=False):
        # (``check``'s evaluations may be the branches' alone: the full ones, before a verdict)
        full = {r: expected(dataclasses.replace(base, reduction=r)) for r in reductions}
        _agree(backend, base, got, full)


def _unreduced(backend: Backend, case: Case, known_ok: bool) -> tuple[Case, tuple[str, ...]]:
    """``case`` with reduction 'none', and the variant's reductions, 'none' first; unless
    ``known_ok``, the case is rejected where any of them hits a known divergence."""
    from spec import REGISTRY

    base = dataclasses.replace(case, reduction="none")
    rs = REGISTRY[case.loss].variant(case.variant).reductions
    reductions = tuple(sorted(rs, key=lambda r: r != "none"))
    if not known_ok:
        for reduction in reductions:
            reject_known(backend, dataclasses.replace(base, reduction=reduction))
    return base, reductions


def _agree(
    backend: Backend, base: Case, got: dict[str, Any], exp: dict[str, Any], *, raising: bool = True
) -> bool:
    """'sum' and 'mean' (``got``, by reduction, with the oracle's evaluations ``exp``) against the
    backend's own 'none' summed and divided by the rule's denominator; True where they do not
    agree (and ``raising`` is False)."""
    from spec import REDUCTION_RULES

    none, keep = got["none"], _scale(exp["none"])
    for reduction in (r for r in got if REDUCTION_RULES[r].divides_by is not None):
        # the rule's own denominator, as the oracle computes it (spec.REDUCTION_RULES)
        denom = 1.0 if exp[reduction].denominator is None else float(exp[reduction].denominator)
        with np.errstate(all="ignore"):
            want = np.sum(none) / denom if denom != 0 else np.float64(np.nan)
        # the bound: this reduction's own scale plus the scale of the unreduced terms it sums; where
        # that overflows (terms near the float64 limit) it is inf, as the oracle's own scales are
        with np.errstate(over="ignore"):
            scale = np.abs(_scale(exp[reduction])) + np.sum(np.abs(keep)) / max(abs(denom), 1e-300)
        m = compare(
            got[reduction], want, want, want, scale, base.dtype,
            what=f"reduction={reduction!r} against its own 'none'",
        )  # fmt: skip
        if m and not raising:
            return True
        if m:
            raise fail(
                backend, base, m.describe() + f" (Σ of 'none' = {np.sum(none)!r})", exp=want,
                got=got[reduction], check="reductions_agree", what=m.reason, outside=m.outside,
            )  # fmt: skip
    return False


@guarded
def shift_invariant(backend: Backend, case: Case, *, shift: int, known_ok: bool = False) -> None:
    """Adding ``shift`` to every logit of a sample leaves the loss unchanged (the suite draws logits
    and shifts exact in every dtype)."""
    b = dataclasses.replace(case, arrays={**case.arrays, "input": case.arrays["input"] + shift})
    if not known_ok:
        reject_known(backend, case)
        reject_known(backend, b)
    shift_check: dict[str, Any] = dict(reproduce=case, check="shift_invariant", params={"shift": shift})
    ga, gb = call(backend, case, **shift_check).value, call(backend, b, **shift_check).value
    scale = np.abs(_scale(expected(case))) + np.abs(_scale(expected(b)))
    m = compare(gb, ga, ga, ga, scale, case.dtype, what=f"loss after adding {shift} to every logit")
    if m:
        raise fail(
            backend, case, m.describe() + " (the loss before the shift is 'expected')", exp=ga, got=gb,
            check="shift_invariant", params={"shift": shift}, what=m.reason, outside=m.outside,
        )  # fmt: skip


@guarded
def zero_at_target(backend: Backend, case: Case, *, known_ok: bool = False) -> None:
    """At input == target (``case`` has them equal) the loss is exactly 0 and so is its gradient
    (|0| = 0, 0² = 0, sgn(0) = 0)."""
    wrt = _differentiable(case)
    if not known_ok:
        reject_known(backend, case, wrt)
    got = call(backend, case, wrt=wrt, check="zero_at_target")
    for what, arr in (("value", got.value), *((f"gradient w.r.t. {n}", g) for n, g in got.grads.items())):
        if arr is None or np.any(np.asarray(arr) != 0):
            raise fail(
                backend, case, f"{what} is not exactly 0 at input == target", exp=0.0, got=arr,
                check="zero_at_target", what=what,
            )  # fmt: skip


@guarded
def grad_sums_to_zero(backend: Backend, case: Case, *, known_ok: bool = False) -> None:
    """The input gradient sums to zero over the class axis (softmax's gradient is orthogonal to
    shifts); for probability targets this holds for any targets, one-hot ones included."""
    exp = expected(case, wrt=("input",))
    if not known_ok:
        reject_known(backend, case, ("input",))
    got = call(backend, case, wrt=("input",), check="grad_sums_to_zero")
    g = np.asarray(got.grads["input"])
    cdim = 0 if g.ndim == 1 else 1
    total = np.sum(g, axis=cdim)
    c = g.shape[cdim]
    scale = np.sum(np.abs(exp.grad_scale["input"]), axis=cdim) + c * np.sum(np.abs(g), axis=cdim)
    m = compare(
        total, np.zeros_like(total), 0.0, 0.0, scale, case.dtype, what="Σ over classes of the input gradient"
    )
    if m:
        raise fail(
            backend,
            case,
            m.describe(),
            exp=np.zeros_like(total),
            got=total,
            check="grad_sums_to_zero",
            what=m.reason,
        )


@guarded
def batch_is_per_sample(backend: Backend, case: Case, *, known_ok: bool = False) -> None:
    """The unreduced losses of a batch (``case`` has reduction 'none') equal the losses of each
    sample evaluated alone."""
    from spec import REGISTRY

    x = case.arrays[REGISTRY[case.loss].tensors[0]]
    if not known_ok:
        reject_known(backend, case)
    whole = call(backend, case, check="batch_is_per_sample").value
    scale = np.abs(_scale(expected(case)))
    for n in range(x.shape[0]):
        one = sample(case, n)
        if not known_ok:
            reject_known(backend, one)
        got = call(backend, one, reproduce=case, check="batch_is_per_sample").value
        m = compare(
            whole[n : n + 1], got, got, got, scale[n : n + 1] * 2, case.dtype,
            what=f"sample {n} alone vs in the batch",
        )  # fmt: skip
        if m:
            raise fail(
                backend, case, m.describe(), exp=got, got=whole[n : n + 1], check="batch_is_per_sample"
            )


@guarded
def rejects_bad_input(backend: Backend, case: Case, *, known_ok: bool = False) -> None:
    """The backend raises (any exception; its message is not checked) on a call the oracle rejects
    as invalid input (``case``, one of ``conformance.bad_inputs``). Accepting it, returning a value
    of any kind, fails; so does hanging, or a worker process that dies. With ``known_ok`` (a
    replay), a case that sets an option the --impl does not take is run too, without it."""
    import warnings

    import oracle
    from conformance.harness import BadResult, _unsupported, run

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call_args: dict[str, Any] = {**case.arrays, **case.options}
            oracle.evaluate(case.loss, reduction=case.reduction, wrt=(), **call_args)
    except oracle.OracleInputError as e:
        invalid = str(e)
    else:  # a defect of conformance/bad_inputs.py, not of the backend
        raise AssertionError(f"not invalid input: the oracle accepts {case!r}")
    unsupported = None if known_ok else _unsupported(backend, case)
    if unsupported is not None:
        import pytest

        why = getattr(backend, "impls", {})[case.loss].unchecked.get(unsupported, "")
        pytest.skip(
            f"the implementation of {case.loss} does not take {unsupported!r} ({why}): left unchecked"
        )
    where: dict[str, Any] = dict(check="rejects_bad_input")
    try:
        got = run(backend, case)
    except BadResult as e:  # it returned (not a tensor of the input's kind): it accepted the input
        raise fail(backend, case, f"accepted invalid input ({invalid}) and {e}", **where) from None
    except RuntimeError as e:
        from conformance.isolate import Hang, RemoteError

        if isinstance(e, Hang) or (isinstance(e, RemoteError) and e.kind == "WorkerDied"):
            raise fail(backend, case, f"on invalid input ({invalid}): {e}", **where) from None
        return  # it raised: it rejects the input
    except Exception:
        return
    raise fail(
        backend, case, f"accepted invalid input: {invalid} (expected an exception, got a value)",
        got=got.value, **where,
    )  # fmt: skip


def sample(case: Case, n: int) -> Case:
    """Sample ``n`` of the batch as a batch of one; tensors that broadcast from the right
    (weights of fewer dims than input, pos_weight, class weights) stay as they are."""
    from spec import REGISTRY

    lead = case.arrays[REGISTRY[case.loss].tensors[0]]
    nd = lead.ndim
    arrays = {}
    v = REGISTRY[case.loss].variant(case.variant)
    for k, a in case.arrays.items():
        arg = v.arg(k)
        full = (
            a.ndim == nd
            # one class index (or one label: cosine_embedding_loss's) per sample
            or (v.roles[k].role in ("index", "element") and v.sample_axis is not None and a.ndim == nd - 1)
            or (arg.broadcast == "var" and a.shape == lead.shape[:-1])  # one variance per sample
        )
        arrays[k] = a[n : n + 1] if full and a.ndim and a.shape[0] == lead.shape[0] else a
    return dataclasses.replace(case, arrays=arrays)


@guarded
def warns_as_specified(backend: Backend, case: Case, *, known_ok: bool = False) -> None:
    """torch's warnings are part of its contract: the backend emits a UserWarning exactly where the
    oracle does (``spec.Arg.broadcast == "warn"`` with a target of another shape;
    ``Variant.reduction_warnings``: kl_div with 'mean'), and none elsewhere. The message is not
    compared."""
    exp = expected(case)
    got = call(backend, case, check="warns_as_specified")
    if exp.warnings and not got.warnings:
        raise fail(
            backend, case, f"no warning, where torch's contract warns: {exp.warnings[0]!r}",
            check="warns_as_specified", what="warning",
        )  # fmt: skip
    if got.warnings and not exp.warnings:
        raise fail(
            backend, case, f"warned where torch's contract does not: {got.warnings[0]!r}",
            check="warns_as_specified", what="warning",
        )  # fmt: skip


#: check kind -> its function; the ``check=`` of a printed ``replay(...)`` line
def _second_order(backend: Backend, case: Case, **kwargs: Any) -> None:
    from conformance import second_order

    second_order.check(backend, case, **kwargs)


CHECKS: dict[str, Callable[..., None]] = {
    "oracle": oracle,
    "reductions_agree": reductions_agree,
    "shift_invariant": shift_invariant,
    "zero_at_target": zero_at_target,
    "grad_sums_to_zero": grad_sums_to_zero,
    "batch_is_per_sample": batch_is_per_sample,
    "rejects_bad_input": rejects_bad_input,
    "warns_as_specified": warns_as_specified,
    "second_order": _second_order,
}
