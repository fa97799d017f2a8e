"""Closed forms of each loss's value and gradients, derived by SymPy from the spec's expression.

``derive(variant)`` differentiates the raw expression: this is what ground truth (mpmath) and the
generated docs use. The oracle calls the same function with its stable rewrite as ``transform``, so
both paths share one derivation; a declared :class:`~spec._core.Convention` replaces the derivative
of the argument it names, in both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import sympy as sp

from spec._core import NAMED_AXES, REGISTRY, Variant, j

Transform = Callable[[sp.Expr], sp.Expr]


@dataclass(frozen=True)
class ClosedForms:
    """The value and the gradient w.r.t. each differentiable argument of one variant.

    A gradient w.r.t. a class-axis argument is its component ``j``: ``grads["input"]`` is
    ``∂ℓ/∂input[j]``.
    """

    variant: Variant
    value: sp.Expr
    grads: Mapping[str, sp.Expr]


def wrt(variant: Variant, name: str) -> sp.Basic:
    """The SymPy object a gradient w.r.t. ``name`` is taken with respect to."""
    sym = variant.symbols[name]
    return sym[j] if variant.roles[name].role == "axis" else sym  # type: ignore[index]


def _masks_index(f: sp.Expr, d: sp.Symbol) -> bool:
    """``f`` (a sum) holds deltas only of the dummy ``d`` and a class-index argument (not another
    dummy, like the gradient component ``j``): a mask, not a component to collapse onto."""
    dummies = {x for ax in NAMED_AXES for x in ax.dummies}
    deltas = list(f.atoms(sp.KroneckerDelta))
    return all(d in kd.args and not (set(kd.args) - {d}) & dummies for kd in deltas)


def tidy_sums(e: sp.Expr) -> sp.Expr:
    """Put class-axis sums in the form the oracle lowers: one Sum per term, factors that do not
    depend on the dummy pulled out, and ``Σ_k f(k) δ(k, a)`` collapsed to ``f(a)``.

    The collapse assumes ``a`` lies in the summation range, which holds for the gradient component
    ``j`` and for class-index targets (validated before evaluation).
    """

    def one(function: sp.Expr, limit: tuple[sp.Basic, sp.Basic, sp.Basic]) -> sp.Expr:
        (d, lo, hi) = limit
        out: list[sp.Expr] = []
        # expand only what must be: terms with a delta on the dummy (to collapse) or free of it
        # (to pull out); (1 - y)·f(k) stays a product, not f(k) - y·f(k), which cancels
        terms = []
        for t in sp.Add.make_args(function):
            if t.has(sp.KroneckerDelta) or not t.has(d):
                # a mask 1 - δ(k, y) (y a class index: multi_margin_loss's k ≠ y) stays whole:
                # expanded, Σ_k f - f(y) would cancel where the masked term is large
                masks = {
                    f: sp.Dummy("mask")
                    for f in sp.Mul.make_args(t)
                    if isinstance(f, sp.Add) and f.has(sp.KroneckerDelta) and _masks_index(f, d)
                }
                expanded = sp.expand_mul(t.xreplace(masks)).xreplace({m: f for f, m in masks.items()})
                terms.extend(sp.Add.make_args(expanded))
            else:
                terms.append(t)
        for term in terms:
            indep, dep = term.as_independent(d, as_Add=False)
            deltas = [
                f for f in sp.Mul.make_args(dep) if isinstance(f, sp.KroneckerDelta) and d in f.free_symbols
            ]
            if deltas:
                kd = deltas[0]
                other = kd.args[0] if kd.args[1] == d else kd.args[1]
                out.append(indep * (dep / kd).subs(d, other))
            elif dep == 1:
                out.append(indep * (hi - lo + 1))
            else:
                out.append(indep * sp.Sum(dep, (d, lo, hi)))
        return sp.Add(*out)

    def visit(s: sp.Sum) -> sp.Expr:
        # SymPy writes Σ_k Σ_i f as one Sum with two limits, the innermost first: each in turn
        out = s.function
        for limit in s.limits:
            out = one(out, limit)
        return out

    return e.replace(lambda x: isinstance(x, sp.Sum), visit)


def merge_powers(e: sp.Expr) -> sp.Expr:
    """``|u|^p / |u|`` → ``|u|^(p - 1)``: SymPy writes the derivative of a symbolic power ``b^p`` as
    ``p·b^p/b``, which is 0/0 where ``b = 0`` although the derivative is defined there (the p-norm's
    ``|u_j|^(p-1)·sign(u_j)`` at ``u_j = 0``). Powers of one base in a product are merged."""

    def symbolic(m: sp.Basic) -> bool:
        return isinstance(m, sp.Mul) and any(isinstance(f, sp.Pow) and not f.exp.is_Number for f in m.args)

    return e.replace(symbolic, lambda m: sp.powsimp(m, combine="exp", deep=False))


def _identity(e: sp.Expr) -> sp.Expr:
    return e


def derive(variant: Variant, transform: Transform = _identity) -> ClosedForms:
    """Differentiate ``transform(variant.expr)`` w.r.t. each differentiable argument.

    ``transform`` must return an expression equal to its argument (the oracle passes its stable
    rewrite); it is applied to the value, to each derivative and to each convention's gradient.
    """
    value = transform(variant.expr)
    grads: dict[str, sp.Expr] = {}
    for name in variant.differentiable:
        override = variant.grad_override(name)
        g = override if override is not None else merge_powers(sp.diff(value, wrt(variant, name)))
        grads[name] = tidy_sums(transform(tidy_sums(g)))
    return ClosedForms(variant, tidy_sums(value), grads)


@cache
def raw(key: str) -> ClosedForms:
    """The raw (unrewritten) closed forms of the variant named ``key`` (``cross_entropy[probabilities]``)."""
    return derive(variant_by_key(key))


def variant_by_key(key: str) -> Variant:
    name, _, rest = key.partition("[")
    return REGISTRY[name].variant(rest.rstrip("]") or "default")


def all_variants() -> tuple[Variant, ...]:
    return tuple(v for loss in REGISTRY.values() for v in loss.variants)
