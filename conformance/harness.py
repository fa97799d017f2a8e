"""Run one case on a backend, compare it with the oracle, and explain a failure.

Every check in the suite goes through :func:`run` (the backend call) and :func:`check` (the
comparison under ``conformance.errormodel``). A failure message is a minimal, copy-pasteable
reproduction: loss, options, dtype, device, inputs, expected, got, the bound and the seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

import oracle
from conformance.backends import Backend, DType, Layout
from conformance.errormodel import Mismatch, branch_tol, compare, underflow
from conformance.strategies import Case

if TYPE_CHECKING:  # the checks import this module at collection, which imports no SymPy
    from conformance.catalogue import VariantEntry
    from spec import Variant

Array = np.ndarray[Any, Any]

#: set by the plugin: the Hypothesis seed of this session, printed in reproductions
SESSION: dict[str, Any] = {"seed": None, "backend": None}
#: id(backend) -> conformance.isolate.IsolatedRunner, for backends whose calls run in a worker
RUNNERS: dict[int, Any] = {}


class ConformanceFailure(AssertionError):
    """A backend result outside the error model; the message is a reproduction. ``what`` names
    the comparison that failed ("value", "gradient w.r.t. input", ...) and ``got`` holds the
    backend's numbers there (None for a failure that is not a wrong number: an exception, a
    mutated input, a hang)."""

    def __init__(
        self, message: str, *, what: str | None = None, got: Any = None, outside: Any = None
    ) -> None:
        super().__init__(message)
        self.what = what
        self.got = got
        self.outside = outside  # the elements of ``got`` outside the bound (None: not known)


@dataclass
class Outcome:
    value: Array
    grads: dict[str, Array | None]
    mutated: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _tensors(backend: Backend, case: Case, wrt: Sequence[str], layout: Layout) -> dict[str, Any]:
    from spec import REGISTRY

    positional = REGISTRY[case.loss].tensors
    out = {}
    for name, arr in case.arrays.items():
        lay = layout if name in positional and arr.dtype.kind == "f" else "contiguous"
        out[name] = backend.tensor(arr, case.dtype, requires_grad=name in wrt, layout=lay)
    return out


def run(
    backend: Backend,
    case: Case,
    *,
    wrt: Sequence[str] = (),
    upstream: Array | None = None,
    layout: Layout = "contiguous",
    impl: Any = None,
) -> Outcome:
    """Call the backend's loss on ``case`` and, if ``wrt`` is given, its gradients (in the worker
    process of ``conformance.isolate`` for plug-in backends and --impl runs)."""
    runner = RUNNERS.get(id(backend))
    if runner is not None and impl is None:
        from conformance.isolate import RemoteError

        try:
            out: Outcome = runner.run(case, wrt, upstream, layout, SESSION.get("check"))
        except RemoteError as e:
            if e.bad_result:
                raise BadResult(str(e)) from None
            raise
        return out
    fn = impl or backend.loss(case.loss)
    if fn is None:
        raise LookupError(f"backend {backend.name} has no {case.loss}")
    t = _tensors(backend, case, wrt, layout)
    before = {k: backend.to_numpy(v) for k, v in t.items()}
    from spec import REGISTRY

    names = REGISTRY[case.loss].tensors  # positional, in torch.nn.functional order; the rest by keyword
    rest = {k: v for k, v in t.items() if k not in names}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*(t[n] for n in names), **rest, **backend_options(backend, case))
        _check_result(out, t[names[0]], case)
        grads: dict[str, Array | None] = {}
        if wrt:
            u = np.ones(np.shape(backend.to_numpy(out))) if upstream is None else upstream
            gs = backend.grad(out, [t[n] for n in wrt], u)
            grads = dict(zip(wrt, gs, strict=True))
    mutated = [k for k, v in t.items() if not np.array_equal(before[k], backend.to_numpy(v), equal_nan=True)]
    return Outcome(backend.to_numpy(out), grads, mutated, list(_user_warnings(caught)))


class BadResult(TypeError):
    """A loss returned something that is not a tensor of the input's kind and dtype."""


def _check_result(out: Any, like: Any, case: Case) -> None:
    if type(out) is not type(like) and not isinstance(out, type(like)):
        raise BadResult(
            f"returned a {type(out).__module__}.{type(out).__qualname__}, not a {type(like).__qualname__}"
        )
    got = getattr(out, "dtype", None)
    if got is not None and str(got).rsplit(".", 1)[-1] != case.dtype:
        raise BadResult(f"returned dtype {got} for {case.dtype} inputs")


def expected(
    case: Case, *, wrt: Sequence[str] = (), upstream: Array | None = None, branches: bool = True
) -> oracle.Evaluation:
    """The oracle's evaluation of ``case``, with the UserWarnings the contract emits on it.

    Without ``branches``, the bounds are those of the branches the exact arguments take, alone:
    the other side of each decision within the dtype's rounding of its boundary
    (``oracle.evaluate``'s ``branch_tol``) only widens what is accepted, so a result inside these
    bounds is accepted by the full ones, and a check evaluates those only where it is not."""
    with warnings.catch_warnings(record=True) as caught, outside_range_rejected():
        warnings.simplefilter("always")
        ev = oracle.evaluate(
            case.loss,
            **case.arrays,
            **case.options,
            reduction=case.reduction,
            wrt=tuple(wrt),
            upstream=upstream,
            branch_tol=branch_tol(case.dtype) if branches else None,
            underflow=underflow(case.dtype),
            bounds=True,
        )
    return dataclasses.replace(ev, warnings=_user_warnings(caught))


def output_shape(case: Case) -> tuple[int, ...]:
    """The shape of the loss's value on ``case`` (an upstream gradient's), without evaluating it."""
    return oracle.output_shape(case.loss, **case.arrays, **case.options, reduction=case.reduction)


@contextlib.contextmanager
def outside_range_rejected() -> Iterator[None]:
    """Input outside the range where the oracle is exact (``oracle.OracleRangeError``: a p-norm of
    differences whose squares underflow float64) cannot be judged: inside a Hypothesis test the
    example is rejected (``assume``), else (a replay, a fixed point) the check is skipped with the
    oracle's reason. Never a verdict from an answer the oracle knows to be wrong."""
    from hypothesis import assume
    from hypothesis.control import currently_in_test_context

    try:
        yield
    except oracle.OracleRangeError as e:
        if currently_in_test_context():
            assume(False)
        import pytest

        pytest.skip(f"outside the oracle's range: {e}")


def _user_warnings(caught: Sequence[warnings.WarningMessage]) -> tuple[str, ...]:
    """The messages of the UserWarnings among ``caught`` (not deprecations or NumPy's)."""
    return tuple(str(w.message) for w in caught if issubclass(w.category, UserWarning))


def _fmt(a: Any) -> str:
    """An array as NumPy source that recreates it exactly (17 significant digits)."""
    a = np.asarray(a)
    if a.size == 0:  # its shape is all there is to it, and np.array([]) would lose it
        return f"np.zeros({a.shape!r}{', dtype=np.int64' if a.dtype.kind in 'iu' else ''})"
    if a.dtype.kind in "iu":
        return f"np.array({a.tolist()!r}, dtype=np.int64)"
    with np.printoptions(precision=17, floatmode="unique", threshold=10_000, linewidth=10_000):
        body = np.array2string(a, separator=", ")
    return f"np.array({body})"


def _literal(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_literal(x)}" for k, x in v.items()) + "}"
    return _fmt(v) if isinstance(v, np.ndarray) else repr(v)


def reproduction(
    backend: Backend,
    case: Case,
    *,
    wrt: Sequence[str] = (),
    upstream: Array | None = None,
    layout: Layout = "contiguous",
    check: str = "oracle",
    params: Mapping[str, Any] | None = None,
) -> str:
    """Python that replays ``case`` on the backend through the same check, and fails as it did."""
    arrays = ", ".join(f"{k!r}: {_fmt(v)}" for k, v in case.arrays.items())
    up = "None" if upstream is None else _fmt(upstream)
    base, impl = backend, ""
    overrides = getattr(backend, "overrides", {})
    if overrides:  # an implementation plugged into a backend: name it by module:attribute
        base = backend.base  # type: ignore[attr-defined]
        refs = {
            k: f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', '?')}"
            for k, f in overrides.items()
        }
        impl = f", impl={refs!r}"
    kind = "" if check == "oracle" else f",\n       check={check!r}"
    kind += "".join(f", {k}={_literal(v)}" for k, v in (params or {}).items())
    return (
        "import numpy as np\n"
        "from conformance.harness import replay\n"
        f"replay({base.name!r}, {case.loss!r}, variant={case.variant!r}, dtype={case.dtype!r}, "
        f"reduction={case.reduction!r},\n"
        f"       arrays={{{arrays}}},\n"
        f"       options={case.options!r}, wrt={tuple(wrt)!r}, upstream={up}, layout={layout!r}{impl}{kind})"
    )


def replay(
    backend: str | Backend,
    loss: str,
    *,
    dtype: DType,
    reduction: str,
    arrays: Mapping[str, Array],
    options: Mapping[str, Any],
    wrt: Sequence[str] = (),
    upstream: Array | None = None,
    layout: Layout = "contiguous",
    variant: str | None = None,
    impl: Mapping[str, str] | None = None,
    check: str = "oracle",
    **params: Any,
) -> None:
    """Re-run a reported case through the check that reported it (``check``, one of
    ``conformance.checks.CHECKS``; ``params`` are its own arguments, such as ``shift``).

    Raises the same :class:`ConformanceFailure` as the failing run when the backend still does not
    conform (known divergences are not excused here); prints ``conforms`` and returns otherwise.
    ``impl`` maps a loss name to the ``module:attribute`` of an implementation that replaces the
    backend's own (as the failing run did)."""
    from conformance.backends import resolve
    from conformance.backends.override import OverrideBackend
    from conformance.checks import CHECKS

    b = resolve(backend) if isinstance(backend, str) else backend
    if impl:
        from pathlib import Path

        from conformance import impl as impl_mod

        impls = {k: impl_mod.load(f"{k}={v}", Path.cwd()) for k, v in impl.items()}
        b = OverrideBackend(b, {k: i.fn for k, i in impls.items()}, impls=impls)
    if check not in CHECKS:
        raise ValueError(f"check: expected one of {sorted(CHECKS)}, got {check!r}")
    if variant is None:
        from spec import REGISTRY

        variant = oracle.select_variant(REGISTRY[loss], arrays).name
    case = Case(loss, variant, dtype, dict(arrays), dict(options), reduction)
    kind: Callable[..., None] = CHECKS[check]
    if check == "oracle":
        kind(b, case, wrt=wrt, upstream=upstream, layout=layout, known_ok=True, **params)
    elif check == "second_order":
        kind(b, case, wrt=wrt, upstream=upstream, known_ok=True, **params)
    else:
        kind(b, case, known_ok=True, **params)
    print(f"conforms: {loss} on {b.name}, check {check!r}")


def seed_line() -> str:
    """How a failing run replays: its one Hypothesis seed, or the derandomised profile (empty
    outside a run of the suite)."""
    seed = SESSION.get("seed")
    if seed is None:
        profile = SESSION.get("profile")
        if profile is None:
            return ""  # a direct call (replay, a script): no seed to show
        return f"hypothesis profile {profile!r}: derandomized (every run draws the same examples)"
    return f"hypothesis seed {seed} (the whole run replays with --hypothesis-seed={seed})"


def fail(
    backend: Backend,
    case: Case,
    problem: str,
    *,
    wrt: Sequence[str] = (),
    upstream: Array | None = None,
    layout: Layout = "contiguous",
    exp: Any = None,
    got: Any = None,
    check: str = "oracle",
    params: Mapping[str, Any] | None = None,
    what: str | None = None,
    outside: Any = None,
) -> ConformanceFailure:
    device = SESSION.get("device") or dict(backend.describe()).get("device") or backend.name
    lines = [
        f"{case.loss} ({case.variant or 'default'}) does not conform on {backend.name} "
        f"[{device}], dtype {case.dtype}, reduction={case.reduction!r}, "
        f"options {case.options}, layout {layout}",
        f"  {problem}",
    ]
    if exp is not None:
        lines.append(f"  expected: {_fmt(exp)}")
    if got is not None:
        lines.append(f"  got:      {_fmt(got)}")
    seed = seed_line()
    lines += [
        *([f"  {seed}"] if seed else []),
        "  reproduce with (paste into python):",
        reproduction(backend, case, wrt=wrt, upstream=upstream, layout=layout, check=check, params=params),
    ]
    return ConformanceFailure("\n".join(lines), what=what, got=got, outside=outside)


#: divergences of the base backend hit by the cases of the check now running (``guarded``)
_shared: list[Any] = []


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A check kind whose failure, on an implementation replacing the backend's loss (``--impl``),
    inside a known divergence of the backend's own loss, is an expected failure that names that
    divergence ("also a known divergence of torch-cpu"), or a failure under --conformance-strict.
    Cases outside every divergence's region fail as usual."""

    @functools.wraps(fn)
    def wrapper(backend: Backend, case: Case, *args: Any, **kwargs: Any) -> Any:
        global _shared
        saved, _shared = _shared, []
        try:
            return fn(backend, case, *args, **kwargs)
        except ConformanceFailure as e:
            if not _shared:
                raise
            d, base = _shared[0], backend.base  # type: ignore[attr-defined]
            _shared = []
            if e.got is None or e.what is None:
                raise  # an exception, a mutation, a hang: unrelated to what the divergence records
            if not _fails_alike(e, lambda: fn(base, case, *args, **{**kwargs, "known_ok": True}), case):
                raise ConformanceFailure(
                    f"{e}\n  (inside {base.name}'s known divergence {d.id}, but this result is not "
                    f"{base.name}'s: a failure)", what=e.what, got=e.got,
                ) from None  # fmt: skip
            note = f"also a known divergence of {base.name}: {d.id}"
            if SESSION.get("strict"):
                raise ConformanceFailure(
                    f"{e}\n  ({note}; a failure under --conformance-strict)", what=e.what, got=e.got
                ) from None
            expected_failure(case, f"{note} ({d.reason})\n{e}")
        finally:
            _shared = saved

    return wrapper


def _fails_alike(failure: ConformanceFailure, on_base: Callable[[], Any], case: Case) -> bool:
    """Whether the base backend fails the same comparison with the same numbers (within the error
    model's bound of its own result: NaN where it has NaN, the same infinities)."""
    if failure.got is None or failure.what is None:
        return False  # an exception, a mutation, a hang: not what the divergence records
    try:
        on_base()
    except ConformanceFailure as b:
        if b.what != failure.what or b.got is None:
            return False
        theirs = np.asarray(b.got, np.float64)
        ours = np.asarray(failure.got, np.float64)
        if theirs.shape != ours.shape:
            return False
        # the elements this result gets wrong must be the base backend's own numbers there; the
        # ones it gets right (within the error model) need not equal the base backend's
        wrong = np.ones(ours.shape, bool) if failure.outside is None else np.asarray(failure.outside, bool)
        if wrong.shape != ours.shape:
            wrong = np.ones(ours.shape, bool)
        o, t = ours[wrong], theirs[wrong]
        return compare(o, t, t, t, np.abs(t), case.dtype, what="") is None
    return False  # the base backend conforms on this case: nothing shared


def expected_failure(case: Case, message: str) -> None:
    """Record an expected failure of the running check (the smallest case is kept; the plugin turns
    the record into an xfail when the check ends without a real failure) and reject the example."""
    from hypothesis import assume
    from hypothesis.control import currently_in_test_context

    pending = SESSION.setdefault("expected_failures", {})
    key = SESSION.get("check") or ""
    size = sum(a.size for a in case.arrays.values())
    if key not in pending or size < pending[key][0]:
        pending[key] = (size, message)
    if currently_in_test_context():
        assume(False)
    import pytest

    pending.pop(key, None)
    pytest.xfail(message)


def reject_known(
    backend: Backend, case: Case, wrt: Sequence[str] = (), layout: str = "contiguous", order: int = 1
) -> None:
    """Reject (``hypothesis.assume``) a case that hits a known divergence of ``backend`` (in a
    check of derivatives up to ``order``); its witness is checked on its own in
    test_divergences.py."""
    from hypothesis import assume
    from hypothesis.control import currently_in_test_context

    from conformance.divergences import known

    unsupported = _unsupported(backend, case)
    if unsupported:
        if currently_in_test_context():
            assume(False)
        import pytest

        why = getattr(backend, "impls", {})[case.loss].unchecked.get(unsupported, "")
        pytest.skip(
            f"the implementation of {case.loss} does not take {unsupported!r} ({why}): left unchecked"
        )
    if case.loss in getattr(backend, "overrides", {}):
        shared = known(backend.base, case, wrt, layout, order)  # type: ignore[attr-defined]
        if shared is not None:  # judged by ``guarded`` if the implementation fails here
            _shared.append(shared)
        return
    d = known(backend, case, wrt, layout, order)
    if d is None:
        return
    if currently_in_test_context():
        # remembered: a check whose every example is rejected ends as an xfail naming it
        SESSION.setdefault("rejected_by", {})[SESSION.get("check") or ""] = d
        assume(False)
    import pytest

    pytest.xfail(f"known divergence {d.id}: {d.reason}")  # a fixed special point that hits one


def fixed_options(backend: Backend, loss: str) -> frozenset[str]:
    """The options of ``loss`` that the backend's --impl does not take (drawn at their defaults)."""
    impl = getattr(backend, "impls", {}).get(loss)
    return frozenset(impl.unchecked) if impl is not None else frozenset()


def unselectable(backend: Backend, variant: Variant | VariantEntry) -> str | None:
    """Why ``variant`` cannot be checked on ``backend``: an option that selects it (a function the
    spec names, ``Variant.selects``) that the --impl does not take, or that the backend has no form
    of (capability "functions"); None when it can. Asked at collection, of the catalogue's entry."""
    from conformance.backends import missing_capability

    for option, name in variant.selects.items():
        impl = getattr(backend, "impls", {}).get(variant.loss)
        if impl is not None and not impl.supports(option):
            return (
                f"the implementation of {variant.loss} does not take {option!r} "
                f"({impl.unchecked[option]}): {variant.key} left unchecked"
            )
        why = missing_capability(backend, "functions")
        if why is not None:
            return f"{variant.key} needs {option}={name!r}: {why}"
        if backend.function(name) is None:  # type: ignore[attr-defined]
            return f"backend {backend.name} has no function {name!r}: {variant.key} left unchecked"
    return None


def backend_options(backend: Backend, case: Case) -> dict[str, Any]:
    """The case's options and reduction as the backend takes them: an option that names a spec
    function (``Variant.selects``) becomes the backend's own callable for it."""
    from spec import REGISTRY

    kw = case.kwargs()
    loss = REGISTRY.get(case.loss)
    if loss is not None:
        for option in loss.variant(case.variant).selects:
            if isinstance(kw.get(option), str):
                kw[option] = backend.function(kw[option])  # type: ignore[attr-defined]
    return kw


def require_capability(backend: Backend, name: str) -> None:
    """Skip a check that needs capability ``name`` (``conformance.backends.CAPABILITIES``) when the
    backend lacks it, with that reason."""
    from conformance.backends import missing_capability

    why = missing_capability(backend, name)
    if why is not None:
        import pytest

        pytest.skip(why)


def require(backend: Backend, loss: str, option: str) -> None:
    """Skip a check that needs ``option`` when the --impl of ``loss`` does not take it."""
    impl = getattr(backend, "impls", {}).get(loss)
    if impl is not None and not impl.supports(option):
        import pytest

        why = impl.unchecked[option]
        pytest.skip(f"the implementation of {loss} does not take {option!r} ({why}): left unchecked")


def _unsupported(backend: Backend, case: Case) -> str | None:
    """The first option ``case`` sets away from its default that the --impl of its loss lacks."""
    impl = getattr(backend, "impls", {}).get(case.loss)
    if impl is None or not impl.unchecked:
        return None
    from conformance.impl import _options

    defaults = _options(case.loss)
    used = {**{k: v for k, v in case.options.items()}, "reduction": case.reduction}
    for k, v in used.items():
        if not impl.supports(k) and v != defaults.get(k):
            return k
    from spec import REGISTRY

    for k in case.arrays:
        if k not in REGISTRY[case.loss].tensors and not impl.supports(k):
            return k
    return None


@guarded
def check(
    backend: Backend,
    case: Case,
    *,
    wrt: Sequence[str] = (),
    upstream: Array | None = None,
    layout: Layout = "contiguous",
    known_ok: bool = False,
) -> tuple[Outcome, oracle.Evaluation]:
    """Run ``case`` and assert the value (and the gradients of ``wrt``) conform.

    A case that hits a known divergence of this backend (``conformance.divergences``) is rejected
    with ``hypothesis.assume`` (its witness is checked on its own), unless ``known_ok``.
    """
    if not known_ok:
        reject_known(backend, case, wrt, layout)
    exp = expected(case, wrt=wrt, upstream=upstream, branches=False)
    got = call(backend, case, wrt=wrt, upstream=upstream, layout=layout)
    for n in wrt:
        if got.grads.get(n) is None:
            missing = f"no gradient for {n!r} (expected one)"
            raise fail(backend, case, missing, wrt=wrt, upstream=upstream, layout=layout)
    if _mismatches(got, exp, case, wrt):  # (the other sides of near decisions: see ``expected``)
        exp = expected(case, wrt=wrt, upstream=upstream)
    problems = _mismatches(got, exp, case, wrt)
    if problems:
        worst, want, have = problems[0]
        raise fail(
            backend, case, worst.describe(), wrt=wrt, upstream=upstream, layout=layout, exp=want, got=have,
            what=worst.reason, outside=worst.outside,
        )  # fmt: skip
    return got, exp


def _mismatches(
    got: Outcome, exp: oracle.Evaluation, case: Case, wrt: Sequence[str]
) -> list[tuple[Mismatch, Any, Any]]:
    """``check``'s comparisons: the value's, then each gradient's."""
    problems: list[tuple[Mismatch, Any, Any]] = []
    m = compare(got.value, exp.value, exp.value_lo, exp.value_hi, exp.value_scale, case.dtype, what="value")
    if m:
        problems.append((m, exp.value, got.value))
    for n in wrt:
        g = got.grads[n]
        m = compare(
            g, exp.grads[n], exp.grad_lo[n], exp.grad_hi[n], exp.grad_scale[n], case.dtype,
            what=f"gradient w.r.t. {n}", alt=exp.grad_alt.get(n),
        )  # fmt: skip
        if m:
            problems.append((m, exp.grads[n], g))
    return problems


def call(
    backend: Backend,
    case: Case,
    *,
    wrt: Sequence[str] = (),
    upstream: Array | None = None,
    layout: Layout = "contiguous",
    reproduce: Case | None = None,
    check: str = "oracle",
    params: Mapping[str, Any] | None = None,
) -> Outcome:
    """:func:`run`, with every misbehaviour of the implementation (raising on valid input, a
    non-tensor or wrong-dtype result, a hang, modifying an input) a failure of the check ``check``,
    whose reproduction replays ``reproduce`` (default ``case``) through that check."""
    shown = reproduce if reproduce is not None else case
    where: dict[str, Any] = dict(wrt=wrt, upstream=upstream, layout=layout, check=check, params=params)
    if check != "oracle":
        where.update(wrt=(), upstream=None, layout="contiguous")
    try:
        got = run(backend, case, wrt=wrt, upstream=upstream, layout=layout)
    except BadResult as e:
        raise fail(backend, shown, str(e), **where) from e
    except RuntimeError as e:
        from conformance.isolate import Hang, RemoteError

        if isinstance(e, Hang):
            raise fail(backend, shown, str(e), **where) from None
        kind = e.kind if isinstance(e, RemoteError) else type(e).__name__
        raise fail(backend, shown, f"raised {kind}: {e}", **where) from e
    except Exception as e:  # the backend raised on valid input
        raise fail(backend, shown, f"raised {type(e).__name__}: {e}", **where) from e
    if got.mutated:
        raise fail(backend, shown, f"modified its input argument(s) in place: {got.mutated}", **where)
    return got
