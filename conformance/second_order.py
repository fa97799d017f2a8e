"""Second-order checks: the backend's double backward against the Hessian-vector products of
``oracle.hvp`` (the second derivatives SymPy derives from the same spec, with PyTorch's declared
second-order conventions), under the error model.

The check: for an upstream ``u`` and a direction ``v`` along each differentiable input, the
gradient w.r.t. each input ``b`` of ``⟨∇L·u, v⟩`` equals ``Σ_a ∂²L/∂b∂a · v_a``. It needs the
backend capability ``second_order`` (``grad_grad``)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import oracle
from conformance.backends import Backend
from conformance.errormodel import branch_tol, compare, underflow
from conformance.harness import (
    RUNNERS,
    SESSION,
    _tensors,
    backend_options,
    fail,
    guarded,
    outside_range_rejected,
    reject_known,
    require_capability,
)
from conformance.strategies import Case

Array = np.ndarray[Any, Any]

#: losses whose double backward torch does not implement, with its error (measured on torch
#: 2.13.0+cpu): the check expects exactly that error, and ends as an expected failure saying so
TORCH_UNSUPPORTED: dict[str, str] = {
    "multi_margin_loss": "derivative for aten::multi_margin_loss_backward is not implemented",
    "multilabel_margin_loss": "derivative for aten::multilabel_margin_loss_backward is not implemented",
}


def expected(
    case: Case, wrt: Sequence[str], upstream: Array, directions: Mapping[str, Array], *, branches: bool = True
) -> oracle.Evaluation:
    """The oracle's Hessian-vector products, with bounds; without ``branches``, those of the
    branches taken alone (``harness.expected``)."""
    with warnings.catch_warnings(), outside_range_rejected():
        warnings.simplefilter("ignore", UserWarning)  # the first-order checks judge the warnings
        return oracle.hvp(
            case.loss, **case.arrays, **case.options, directions=dict(directions),
            reduction=case.reduction, wrt=tuple(wrt), upstream=upstream,
            branch_tol=branch_tol(case.dtype) if branches else None, underflow=underflow(case.dtype),
            bounds=True,
        )  # fmt: skip


def contributions(
    case: Case, wrt: Sequence[str], upstream: Array, directions: Mapping[str, Array]
) -> dict[str, oracle.Evaluation]:
    """The Hessian-vector product's terms, one per direction (``oracle.hvp_contributions``)."""
    with warnings.catch_warnings(), outside_range_rejected():
        warnings.simplefilter("ignore", UserWarning)
        return oracle.hvp_contributions(
            case.loss, **case.arrays, **case.options, directions=dict(directions),
            reduction=case.reduction, wrt=tuple(wrt), upstream=upstream,
            branch_tol=branch_tol(case.dtype), underflow=underflow(case.dtype), bounds=True,
        )  # fmt: skip


def accumulated(exp: oracle.Evaluation, parts: Mapping[str, oracle.Evaluation], n: str) -> Array:
    """The error scale of ``∂/∂n ⟨∇L·u, v⟩`` as autograd computes it, a sum of one term per
    direction, each computed apart (``docs/error-model.md``, "Second order"): the form's own scale,
    each term's scale, and the accumulation's roundings, ``(k - 1)·Σ|term|`` for k terms. A term
    that is not finite (0 times an infinite second derivative) adds nothing."""
    k = len(parts)
    with np.errstate(all="ignore"):
        extra = sum(
            np.nan_to_num(np.asarray(p.grad_scale[n]) + (k - 1) * np.abs(p.grads[n]), nan=0.0, posinf=0.0)
            for p in parts.values()
        )
        return np.asarray(exp.grad_scale[n]) + extra


def double_backward(
    backend: Backend, case: Case, wrt: Sequence[str], upstream: Array, directions: Mapping[str, Array]
) -> list[Array]:
    """The backend's ``∂/∂b ⟨∇L·u, v⟩`` for each ``b`` of ``wrt`` (in this process). Raises
    ``SecondOrderUnsupported`` where the gradients are not connected to the inputs."""
    from spec import REGISTRY

    fn = backend.loss(case.loss)
    if fn is None:
        raise LookupError(f"backend {backend.name} has no {case.loss}")
    names = REGISTRY[case.loss].tensors
    t = _tensors(backend, case, wrt, "contiguous")
    rest = {k: x for k, x in t.items() if k not in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the first-order checks judge the warnings
        out = fn(*(t[n] for n in names), **rest, **backend_options(backend, case))
    return backend.grad_grad(out, [t[n] for n in wrt], upstream, [np.asarray(directions[n]) for n in wrt])  # type: ignore[attr-defined, no-any-return]


@guarded
def check(
    backend: Backend,
    case: Case,
    *,
    wrt: Sequence[str],
    upstream: Array,
    directions: Mapping[str, Array],
    known_ok: bool = False,
) -> None:
    """Assert the backend's double backward of ``case`` conforms (see the module docstring), in
    the worker process for plug-in backends and --impl. ``known_ok``: the case is not rejected for
    a known divergence (a replay)."""
    import pytest

    from conformance.backends import SecondOrderUnsupported
    from conformance.isolate import RemoteError

    require_capability(backend, "second_order")
    if not known_ok:
        reject_known(backend, case, wrt, order=2)
    if backend.loss(case.loss) is None:
        pytest.skip(f"backend {backend.name} has no {case.loss}")
    shown = {n: np.asarray(directions[n]) for n in wrt}
    dirs = {k: d.tolist() for k, d in shown.items()}
    where = f"upstream {np.asarray(upstream).tolist()}, directions {dirs}"
    own = case.loss not in getattr(backend, "overrides", {})
    unsupported = TORCH_UNSUPPORTED.get(case.loss) if own and backend.name.startswith("torch") else None

    def failure(problem: str, **kw: Any) -> Exception:
        return fail(
            backend, case, problem, wrt=wrt, upstream=upstream, check="second_order",
            params={"directions": shown}, **kw,
        )  # fmt: skip

    detached = None
    runner = RUNNERS.get(id(backend))
    try:
        if runner is not None:
            hs = runner.second_order(case, wrt, upstream, shown, SESSION.get("check"))
        else:
            hs = double_backward(backend, case, wrt, upstream, shown)
    except (SecondOrderUnsupported, RemoteError, Exception) as e:
        kind = e.kind if isinstance(e, RemoteError) else type(e).__name__
        if kind == SecondOrderUnsupported.__name__:
            # gradients not connected to the inputs: a second derivative of 0, right where the
            # spec's is 0 (a loss linear in them), and otherwise the reason the check fails
            detached = str(e)
            hs = [np.zeros(np.shape(case.arrays[n])) for n in wrt]
        elif unsupported is not None and re.search(re.escape(unsupported), str(e)):
            pytest.xfail(f"{backend.name} has no double backward for {case.loss} (documented): {unsupported}")
        else:
            raise failure(f"second order ({where}): raised {kind}: {e}") from e
    if unsupported is not None:
        raise failure(
            f"second order: expected the documented error {unsupported!r}, but it ran: "
            "update conformance.second_order.TORCH_UNSUPPORTED"
        )
    if detached is not None:
        where += f"; {detached}"
    # the branches taken alone first: where they suffice, the other sides of near decisions (many
    # evaluations of the form for a triplet in bfloat16) could only widen what is accepted
    exp = expected(case, wrt, upstream, directions, branches=False)
    if any(
        compare(h, exp.grads[n], exp.grad_lo[n], exp.grad_hi[n], exp.grad_scale[n], case.dtype, what="")
        for n, h in zip(wrt, hs, strict=True)
    ):
        exp = expected(case, wrt, upstream, directions)
    parts: dict[str, oracle.Evaluation] | None = None
    for n, h in zip(wrt, hs, strict=True):
        what = f"second order: ∂/∂{n} of ⟨∇L·u, v⟩"
        m = compare(h, exp.grads[n], exp.grad_lo[n], exp.grad_hi[n], exp.grad_scale[n], case.dtype, what=what)
        if (
            m
            and sum(bool(np.any(np.asarray(d) != 0)) for d in directions.values()) > 1
            and not _nan_only(m, h, exp.grads[n])
        ):
            # the bound of the terms autograd accumulates, one per direction (computed where the
            # form's own scale does not suffice: it only adds to it)
            parts = parts or contributions(case, wrt, upstream, directions)
            m = compare(
                h, exp.grads[n], exp.grad_lo[n], exp.grad_hi[n], accumulated(exp, parts, n), case.dtype,
                what=what,
            )  # fmt: skip
        if m:
            raise failure(
                m.describe() + f" ({where})", exp=exp.grads[n], got=h, what=m.reason, outside=m.outside
            )


def _nan_only(m: Any, got: Array, exp: Array) -> bool:
    """Every element outside the bound is NaN where the oracle's is not, or not where it is: no
    wider scale accepts those (the accumulation's terms are not evaluated for them)."""
    got, exp = np.broadcast_arrays(np.asarray(got, np.float64), np.asarray(exp, np.float64))
    return m.outside is not None and bool(np.all((np.isnan(got) != np.isnan(exp))[m.outside]))
