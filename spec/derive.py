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
from typing import Literal

import sympy as sp

from spec._core import NAMED_AXES, REAL, REGISTRY, Arg, Convention, Variant, j, l

Transform = Callable[[sp.Expr], sp.Expr]
Broadcast = Literal["same", "warn", "silent", "var", "input", "last_dim", "class"]


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


def _no_dirac(e: sp.Expr) -> sp.Expr:
    """The derivative of a sign or a step function is 0 (autograd's, and PyTorch's, convention:
    ``sgn``, comparisons and masks are differentiated as constants); SymPy's Dirac deltas there are
    dropped."""
    return (
        e.replace(lambda x: isinstance(x, sp.DiracDelta), lambda x: sp.S.Zero) if e.has(sp.DiracDelta) else e
    )


def derive(variant: Variant, transform: Transform = _identity) -> ClosedForms:
    """Differentiate ``transform(variant.expr)`` w.r.t. each differentiable argument.

    ``transform`` must return an expression equal to its argument (the oracle passes its stable
    rewrite); it is applied to the value, to each derivative and to each convention's gradient.
    """
    value = transform(variant.expr)
    grads: dict[str, sp.Expr] = {}
    for name in variant.differentiable:
        override = variant.grad_override(name)
        g = override if override is not None else _no_dirac(merge_powers(sp.diff(value, wrt(variant, name))))
        grads[name] = tidy_sums(transform(tidy_sums(g)))
    return ClosedForms(variant, tidy_sums(value), grads)


@cache
def raw(key: str) -> ClosedForms:
    """The raw (unrewritten) closed forms of the variant named ``key`` (``cross_entropy[probabilities]``)."""
    return derive(variant_by_key(key))


#: the suffix of a variant's name that makes it the directional derivative of its gradient
HVP = "@hvp"

_BROADCAST_OF_DIRECTION: dict[str, Broadcast] = {
    "same": "same",
    "warn": "input",
    "silent": "input",
    "input": "input",
    "var": "var",
}


def direction(name: str) -> str:
    """The argument a direction along ``name`` is passed as: ``v_input``."""
    return f"v_{name}"


_HVPS: dict[str, Variant] = {}


def hvp_variant(v: Variant, directed: tuple[str, ...] | None = None) -> Variant:
    """Second order as data: the variant whose per-element (per-sample) loss is the directional
    derivative of ``v``'s gradient, ``G = Σ_a ⟨∂ℓ/∂a, v_a⟩`` (``Σ_l ∂ℓ/∂a_l · v_a[l]`` along an axis),
    with one direction argument ``v_a`` per differentiable argument (its shape and role, not
    differentiable). Its gradients, which ``derive`` takes as for any variant, are the
    Hessian-vector products ``Σ_a ∂²ℓ/∂b∂a · v_a``; the first-order conventions are in ``G``
    (PyTorch's double backward differentiates its own backward). Reductions, mean weights and
    ignored samples are ``v``'s: for 'none' and 'sum', and a mean whose denominator does not depend
    on a direction, ``∂/∂b ⟨∇L·u, v⟩`` is exactly this variant's gradient under ``u``.

    ``directed`` (default: every differentiable argument) names the arguments with a direction:
    the others' terms are left out of ``G`` rather than multiplied by 0 (0·inf would be NaN where
    a second derivative is infinite: BCE's ∂²/∂x∂y at x = 0)."""
    directed = (
        tuple(v.differentiable) if directed is None else tuple(n for n in v.differentiable if n in directed)
    )
    suffix = HVP if directed == tuple(v.differentiable) else f"{HVP}:{','.join(directed)}"
    cache_key = v.key + suffix
    if cache_key in _HVPS:
        return _HVPS[cache_key]
    forms = derive(v)
    dirs: list[Arg] = []
    syms = dict(v.symbols)
    g = sp.S.Zero
    for name in directed:
        a = v.arg(name)
        d = direction(name)
        axis = a.axis in ("class", "feature")
        optional = a.optional or (not axis and a.broadcast != "same")
        dirs.append(
            Arg(
                d,
                REAL,
                axis=a.axis,
                optional=optional,
                broadcast=_BROADCAST_OF_DIRECTION.get(a.broadcast, a.broadcast),
            )
        )
        if axis:
            syms[d] = sp.IndexedBase(d, real=True)
            g += sp.Sum(forms.grads[name].xreplace({j: l}) * syms[d][l], (l, 0, NAMED_AXES[0].size - 1))  # type: ignore[index]
        else:
            syms[d] = sp.Symbol(d, real=True)
            g += forms.grads[name] * syms[d]
    declared = {k: h for c in v.conventions for k, h in c.hessian.items()}
    conventions: tuple[Convention, ...] = ()
    if declared:  # PyTorch's own second derivatives replace SymPy's, entry by entry
        grads = {}
        for b in v.differentiable:
            total = sp.S.Zero
            for src in directed:
                if (src, b) in declared:
                    h = declared[(src, b)]
                else:
                    h = _no_dirac(merge_powers(sp.diff(forms.grads[src], wrt(v, b))))
                total += h * syms[direction(src)]
            grads[b] = total
        names = ", ".join(f"∂²/∂{a}∂{b}" for a, b in declared)
        conventions = (
            Convention(
                "pytorch_double_backward",
                f"PyTorch's double backward of {v.key} declares {names} (spec: "
                + "; ".join(c.name for c in v.conventions if c.hessian)
                + "); the other second derivatives are SymPy's derivatives of the gradients.",
                grads=grads,
            ),
        )
    _HVPS[cache_key] = out = Variant(
        loss=v.loss,
        name=v.name + suffix,
        expr=g,
        args=(*v.args, *dirs),
        params=v.params,
        symbols=syms,
        conventions=conventions,
        mean_weight=v.mean_weight,
        ignore=v.ignore,
        doc=f"The directional derivative of the gradient of {v.key} (its Hessian-vector products).",
        properties=(),
        reductions=v.reductions,
        class_dim=v.class_dim,
        input_ndims=v.input_ndims,
        selects=v.selects,
    )
    return out


def variant_by_key(key: str) -> Variant:
    name, _, rest = key.partition("[")
    variant = rest.rstrip("]") or "default"
    if HVP in variant:
        base, _, directed = variant.partition(HVP)
        d = tuple(x for x in directed.lstrip(":").split(",") if x) if directed else None
        return hvp_variant(REGISTRY[name].variant(base), d)
    return REGISTRY[name].variant(variant)


def all_variants() -> tuple[Variant, ...]:
    return tuple(v for loss in REGISTRY.values() for v in loss.variants)
