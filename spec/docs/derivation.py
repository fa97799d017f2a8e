"""The derivation of each gradient as SymPy performs it, in steps a reader can follow: the sum rule
over the expression's terms, the chain rule inside each (outer derivative times inner derivative),
SymPy's result, and its simplification; then the second derivatives."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from spec._core import Variant, j
from spec.derive import derive, merge_powers, tidy_sums, wrt

#: the second component index of a Hessian along an axis: ∂²ℓ/∂x_j∂x_l
m = sp.Symbol("l", integer=True, nonnegative=True)  # printed l


@dataclass(frozen=True)
class TermStep:
    """``∂term/∂s``, with the chain rule's pieces where the term is ``c · f(u)``."""

    term: sp.Expr
    const: sp.Expr | None  # c, where the chain rule applies
    outer: sp.Expr | None  # f'(u)
    inner: sp.Expr | None  # u
    d_inner: sp.Expr | None  # ∂u/∂s
    result: sp.Expr


@dataclass(frozen=True)
class Branch:
    """One branch of a piecewise expression (the whole expression when it is not piecewise)."""

    condition: sp.Basic | None
    steps: tuple[TermStep, ...]


@dataclass(frozen=True)
class Gradient:
    name: str
    at: sp.Basic  # the object differentiated against (x, or x_j along an axis)
    branches: tuple[Branch, ...]
    sympy: sp.Expr  # SymPy's derivative (sums tidied: Σ_k f δ_{k,j} collapsed)
    simplified: sp.Expr
    convention: str | None  # the declared convention replacing it, by name
    closed: sp.Expr  # what the oracle derives from (the convention's gradient where one is declared)


def simplest(e: sp.Expr) -> sp.Expr:
    """A readable equal form of ``e``, branch by branch: the shortest of cancelling, factoring and
    (for small expressions) ``sp.simplify``."""
    if isinstance(e, sp.Piecewise):
        return sp.Piecewise(*((simplest(x), c) for x, c in e.args))
    candidates = [e, sp.factor_terms(e)]
    if not e.has(sp.Sum):
        candidates += [sp.cancel(e), sp.factor(e)]
        if sp.count_ops(e) <= 40:
            simple = sp.simplify(e)
            candidates += [simple, sp.expand_log(simple, force=True)]
    return min(candidates, key=lambda x: (_big_numbers(x), sp.count_ops(x), len(str(x))))


def _big_numbers(e: sp.Expr) -> int:
    """How many numbers of more than 6 digits ``e`` holds (cancelling ``1/10^6`` out of a fraction
    multiplies everything by 10^6: not simpler to read)."""
    return sum(1 for r in e.atoms(sp.Rational) if max(abs(int(r.p)), int(r.q)) > 10**6)


def _d(e: sp.Expr, s: sp.Basic) -> sp.Expr:
    return tidy_sums(merge_powers(sp.diff(e, s)))


def _term(t: sp.Expr, s: sp.Basic) -> TermStep:
    result = _d(t, s)
    on = _on(s)
    const, dep = t.as_independent(on, as_Add=False) if not isinstance(t, sp.Sum) else (sp.S.One, t)
    f = dep
    inner: sp.Expr | None = None
    if isinstance(f, sp.Pow) and f.exp.is_number and f.base.has(on) and f.base != s:
        inner = f.base
    elif isinstance(f, sp.Function) and len(f.args) == 1 and f.args[0] != s and f.args[0].has(on):
        inner = f.args[0]
    if inner is None:
        return TermStep(t, None, None, None, None, result)
    u = sp.Dummy("u", real=True)
    g = u**f.exp if isinstance(f, sp.Pow) else f.func(u)
    outer = sp.diff(g, u).xreplace({u: inner})
    return TermStep(t, const, outer, inner, _d(inner, s), result)


def _on(s: sp.Basic) -> sp.Basic:
    """What a term must hold to depend on ``s``: along an axis, any component of its base."""
    return s.base if isinstance(s, sp.Indexed) else s


def _split(t: sp.Expr, s: sp.Basic) -> list[sp.Expr]:
    """The sum rule: ``c · (a + b)`` as ``c·a + c·b`` where the sum depends on ``s``; terms free of
    ``s`` (derivative 0) are left out."""
    if not t.has(_on(s)):
        return []
    if isinstance(t, sp.Sum):
        return [t]
    c, dep = t.as_independent(_on(s), as_Add=False)
    if isinstance(dep, sp.Add):
        return [c * u for part in dep.args for u in _split(part, s)]
    return [t]


def _steps(e: sp.Expr, s: sp.Basic) -> tuple[TermStep, ...]:
    return tuple(_term(u, s) for t in sp.Add.make_args(e) for u in _split(t, s))


def _branches(e: sp.Expr, s: sp.Basic) -> tuple[Branch, ...]:
    if isinstance(e, sp.Piecewise):
        return tuple(Branch(None if c == sp.true else c, _steps(x, s)) for x, c in e.args)
    return (Branch(None, _steps(e, s)),)


def gradient(v: Variant, name: str) -> Gradient:
    s = wrt(v, name)
    raw = _d(v.expr, s)
    conv = next((c.name for c in v.conventions if name in c.grads), None)
    return Gradient(
        name,
        s,
        _branches(v.expr, s),
        raw,
        simplest(raw),
        conv,
        derive(v).grads[name],
    )


def _second(v: Variant, name: str) -> sp.Basic:
    s = wrt(v, name)
    return s.base[m] if isinstance(s, sp.Indexed) else s  # type: ignore[attr-defined]


def hessian(v: Variant) -> list[tuple[str, str, sp.Basic, sp.Basic, sp.Expr]]:
    """``(a, b, ∂a, ∂b, ∂²ℓ/∂a∂b)`` for each pair of differentiable arguments (a before b), from the
    gradient's closed form; Dirac deltas (the kinks, where no second derivative exists) are
    dropped: the form holds away from them."""
    out = []
    names = v.differentiable
    forms = derive(v).grads
    for n, a in enumerate(names):
        for b in names[n:]:
            sb = _second(v, b)
            h = _d(forms[a], sb).replace(lambda x: isinstance(x, sp.DiracDelta), lambda x: sp.S.Zero)
            out.append((a, b, wrt(v, a), sb, simplest(sp.piecewise_fold(h)) if h != 0 else sp.S.Zero))
    return out


__all__ = ["Branch", "Gradient", "TermStep", "gradient", "hessian", "j", "m", "simplest"]
