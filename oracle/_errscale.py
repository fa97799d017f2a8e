"""The error scale of an expression: the magnitudes a float evaluation of it combines.

``scale(e)`` builds a SymPy expression ``S`` such that an evaluation of ``e`` in a floating-point
type with unit roundoff ``u`` has absolute error at most about ``u·S`` (first order). Inputs are
exact (the backend and the oracle see the same already-rounded values), so leaves contribute 0; every
rounded operation contributes the magnitude of its result, and errors of its operands propagate
through its derivative:

Every rounded operation also adds ``UNDERFLOW`` (the smallest subnormal in units of epsilon), so
that intermediates in the subnormal range, amplified by a later division, stay inside the bound.

* ``a + b``: ``S(a) + S(b) + |a + b|`` (and ``+ (n-2)·Σ|t|`` for n > 2 terms, whose partial sums may
  exceed the result);
* ``a·b``: ``S(a)|b| + |a|S(b) + |ab|`` (products by ±2^k are exact);
* ``f(u)``: ``|f'(u)|·S(u) + |f(u)|``;
* a branch (``Piecewise``): the scale of the branch taken; ``Max(a, b)``/``Min``: ``S(a) + S(b)``
  (a decision on operands within their errors of each other may go either way);
* a sum of n terms over a dummy: ``Σ S(f) + (n - 1)·Σ|f|`` (any summation order; several
  dummies: one sum inside the next);
* a stable node: its own ``error_scale`` (the terms an implementation of it may combine).

The conformance error model (``docs/error-model.md``) multiplies this by the dtype's epsilon and a
fixed allowance for the elementary functions.
"""

from __future__ import annotations

from functools import cache

import sympy as sp
from sympy.codegen.cfunctions import log1p

from oracle._stable import NODES, Sigmoid, Softplus, SquareOver
from spec._core import clamped, hinge, root, xlogy

_EXACT_FUNCS = (sp.sign, sp.KroneckerDelta, sp.Heaviside)  # a step's decision: its Max's scale

#: Absolute error of one rounded operation from underflow, in units of the dtype's epsilon:
#: (smallest subnormal) / eps. An argument of every lowered scale (``_underflow``; 0 by default).
UNDERFLOW = sp.Symbol("_underflow", nonnegative=True)


def _is_exact_coeff(c: sp.Expr) -> bool:
    if not c.is_Rational or c == 0:
        return False
    a = abs(c)
    p, q = a.p, a.q
    return (p & (p - 1)) == 0 and (q & (q - 1)) == 0  # ±2^k


def _through_base(b: sp.Expr, p: sp.Expr) -> sp.Expr:
    """The base's error through ``b^p`` (b >= 0): |p b^(p-1)|·err(b), and, for 0 < p < 1, at most
    err(b)^p (t^p is subadditive), which stays finite at b = 0, where the derivative is infinite
    (|u|^(p-1) in a p-norm's gradient, 1 < p < 2, at u = 0; inf·0 would be NaN)."""
    sb = scale(b)
    if sb == 0:
        return sp.S.Zero
    lin = sp.Abs(p * b ** (p - 1)) * sb
    if p.is_Number:
        return sp.Min(lin, sb**p) if 0 < p < 1 else lin
    if p.is_nonnegative is False or p.is_positive is False:
        return lin
    return sp.Piecewise((sp.Piecewise((sp.Min(lin, sb**p), p > 0), (lin, True)), p < 1), (lin, True))


@cache
def scale(e: sp.Expr) -> sp.Expr:
    """The error scale of ``e`` (an expression, to be lowered like ``e`` itself). Memoised: a
    derived form shares subexpressions (a second derivative repeats the first's factors), which
    a plain recursion would visit once per path to them."""
    if e.is_Number or isinstance(e, (sp.Symbol, sp.Indexed, sp.IndexedBase)) or e.is_NumberSymbol:
        return sp.S.Zero
    if isinstance(e, _EXACT_FUNCS):
        return sp.S.Zero
    if isinstance(e, sp.Add):
        terms = e.args
        out = sp.Add(*(scale(t) for t in terms)) + sp.Abs(e) + UNDERFLOW
        if len(terms) > 2:
            out += (len(terms) - 2) * sp.Add(*(sp.Abs(t) for t in terms))
        return out
    if isinstance(e, sp.Mul):
        coeff, rest = e.as_coeff_Mul()
        factors = sp.Mul.make_args(rest)
        out = sp.Add(
            *(
                scale(f) * sp.Mul(*(sp.Abs(g) for n, g in enumerate(factors) if n != m))
                for m, f in enumerate(factors)
            )
        ) * abs(coeff)
        rounded = len(factors) - 1 + (0 if _is_exact_coeff(coeff) else 1)
        # a partial product that underflows is amplified by the factors applied after it
        amplified = UNDERFLOW * sp.Mul(*(sp.Max(1, sp.Abs(f)) for f in factors)) if rounded else 0
        return out + rounded * (sp.Abs(e) + amplified)
    if isinstance(e, sp.Pow):
        b, p = e.args
        if p.is_Number:
            ops = 1 if p in (-1, 2, sp.Rational(1, 2)) else 2
            return _through_base(b, p) + ops * (sp.Abs(e) + UNDERFLOW)
        # a symbolic exponent (an option: multi_margin_loss's p, a p-norm's p and 1/p): pow rounds
        # like exp(p·log b), twice; the base's error through the derivative, the exponent's (1/p is
        # rounded) through log b
        sp_ = scale(p)
        via_exp = sp.Abs(xlogy(e, b)) * sp_ if sp_ != 0 else sp.S.Zero  # 0 where b^p is 0
        return _through_base(b, p) + via_exp + 2 * (sp.Abs(e) + UNDERFLOW)
    if isinstance(e, sp.Abs):
        return scale(e.args[0])
    if isinstance(e, (sp.exp, sp.log, log1p, Softplus, Sigmoid)):
        (u,) = e.args
        du = sp.Abs(e.fdiff())
        own = type(e).error_scale(u) if isinstance(e, (Softplus, Sigmoid)) else sp.Abs(e)
        su = scale(u)
        return (du * su if su != 0 else sp.S.Zero) + own + UNDERFLOW
    if isinstance(e, (sp.Max, sp.Min)):
        # either side's error: where a and b are within their errors of each other, the decision
        # itself may be wrong, by at most |a - b| <= err(a) + err(b) (margin_ranking_loss at
        # -y(x1 - x2) + margin = (1e-300 - 1) + 1, which rounds to 0 where it is 1e-300)
        a, *rest = e.args
        b = rest[0] if len(rest) == 1 else e.func(*rest)
        return scale(a) + scale(b)
    if isinstance(e, sp.Piecewise):
        return sp.Piecewise(*((scale(v), c) for v, c in e.args))
    if isinstance(e, sp.Sum):
        # Σ over several dummies: the last limit is the outermost sum, of the sum over the others
        (d, lo, hi) = e.limits[-1]
        f = sp.Sum(e.function, *e.limits[:-1]) if len(e.limits) > 1 else e.function
        n = hi - lo + 1  # the terms summed: n - 1 additions, each rounding a partial sum of them
        return sp.Sum(scale(f), (d, lo, hi)) + (n - 1) * sp.Sum(sp.Abs(f), (d, lo, hi))
    if isinstance(e, hinge):  # max(0, v): as Max, a decision either way within v's error
        return scale(e.args[0])
    if isinstance(e, clamped):  # max(v, lo), continuous: v's error (lo is an exact constant)
        return scale(e.args[0]) + scale(e.args[1])
    if isinstance(e, root):
        # s^(1/p): pow's two roundings, s's error through the derivative, and 1/p's rounding
        # through log s (0 at s = 0, where the root is 0)
        s_, p = e.args
        exp_err = sp.Piecewise((sp.Abs(e * sp.log(s_) / p), s_ > 0), (0, True))
        return sp.Abs(e.fdiff(1)) * scale(s_) + exp_err + 2 * (sp.Abs(e) + UNDERFLOW)
    if isinstance(e, xlogy):
        # x·log(y): the product's and the log's roundings; its operands' errors through its
        # derivatives (0 where they are exact arguments)
        x, y = e.args
        sx, sy = scale(x), scale(y)
        prop = sp.Abs(sp.log(y)) * sx + sp.Abs(x / y) * sy if (sx != 0 or sy != 0) else sp.S.Zero
        return prop + 2 * sp.Abs(e) + UNDERFLOW
    if isinstance(e, SquareOver):
        u, v = e.args
        su, sv = scale(u), scale(v)
        prop = sp.Abs(2 * u / v) * su + sp.Abs(e / v) * sv if (su != 0 or sv != 0) else sp.S.Zero
        # u·u (or u/v) may underflow before the division by v amplifies it
        return (
            prop
            + SquareOver.error_scale(u, v)
            + 2 * UNDERFLOW * sp.Max(1, sp.Abs(u)) * sp.Max(1, 1 / sp.Abs(v))
        )
    if isinstance(e, NODES):
        for a in e.args:
            if not (isinstance(a, (sp.Symbol, sp.IndexedBase, sp.Indexed)) or a.is_Number):
                raise NotImplementedError(f"class-axis node of a computed argument: {e}")
        return type(e).error_scale(*e.args) + UNDERFLOW
    raise NotImplementedError(f"no error scale rule for {type(e).__name__}: {e}")
