"""Numerically stable SymPy nodes and the rewrite rules that introduce them.

The spec is written with elementary functions (``log(1 + exp(z))``, ``log(Σ exp(x_i))``, ...). Each
rule below replaces one such pattern by a node whose derivative is again a stable node and whose
NumPy lowering (see :mod:`oracle._lower`) is accurate at extreme arguments. Every node has
``rewrite("elementary")`` back to the pattern it replaced; ``tests/test_stable.py`` checks each rule
round-trips, symbolically and numerically at high precision.

Each node also states ``error_scale``: the magnitude of the terms that a correct float
implementation of it may combine (see ``docs/error-model.md``). For example, torch computes
softplus(x) inside binary_cross_entropy_with_logits as ``x - logsigmoid(x)``, combining terms of size
``|x|``; a bound that ignored them would raise false alarms.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.codegen.cfunctions import log1p

Rule = Callable[[sp.Expr], sp.Expr]


# ---------------------------------------------------------------------------------------------
# Nodes


class Softplus(sp.Function):
    """``Softplus(z) = log(1 + exp(z))``; lowered to ``numpy.logaddexp(0, z)``."""

    nargs = 1
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Sigmoid(self.args[0])

    def _eval_rewrite_as_elementary(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.log(1 + sp.exp(z))

    @staticmethod
    def error_scale(z: sp.Expr) -> sp.Expr:
        # value, plus |z|: "z + softplus(-z)" and "x - logsigmoid(x)" forms combine terms of size |z|
        return Softplus(z) + sp.Abs(z)


class Sigmoid(sp.Function):
    """``Sigmoid(z) = 1 / (1 + exp(-z))``; its derivative is ``Sigmoid(z) Sigmoid(-z)``."""

    nargs = 1
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        z = self.args[0]
        return Sigmoid(z) * Sigmoid(-z)

    def _eval_rewrite_as_elementary(self, z: sp.Expr, **kwargs: object) -> sp.Expr:
        return 1 / (1 + sp.exp(-z))

    @staticmethod
    def error_scale(z: sp.Expr) -> sp.Expr:
        # "1 - sigmoid(-z)" style implementations combine 1 and sigmoid(-z)
        return Sigmoid(z) + Sigmoid(-z)


def _class_index(s: sp.Basic, x: sp.Basic) -> sp.Basic | None:
    """The component index if ``s`` is ``x[index]``, else None."""
    if isinstance(s, sp.Indexed) and s.base == x:
        return s.indices[0]
    return None


class LogSumExp(sp.Function):
    """``LogSumExp(x) = log Σ_i exp(x[i])`` over the class axis, ``x`` an IndexedBase."""

    nargs = 1
    is_real = True

    def _eval_derivative(self, s: sp.Basic) -> sp.Expr:
        at = _class_index(s, self.args[0])
        return sp.S.Zero if at is None else Softmax(self.args[0], at)

    def _eval_rewrite_as_elementary(self, x: sp.Basic, **kwargs: object) -> sp.Expr:
        from spec import C, i

        return sp.log(sp.Sum(sp.exp(x[i]), (i, 0, C - 1)))

    @staticmethod
    def error_scale(x: sp.Basic) -> sp.Expr:
        # max-subtraction: m + log Σ exp(x - m) combines |m| and the log
        return sp.Abs(LogSumExp(x)) + MaxAbs(x)


class Softmax(sp.Function):
    """``Softmax(x, a) = exp(x[a]) / Σ_i exp(x[i])``."""

    nargs = 2
    is_real = True

    def _eval_derivative(self, s: sp.Basic) -> sp.Expr:
        x, a = self.args
        at = _class_index(s, x)
        if at is None:
            return sp.S.Zero
        return Softmax(x, a) * (sp.KroneckerDelta(a, at) - Softmax(x, at))

    def _eval_rewrite_as_elementary(self, x: sp.Basic, a: sp.Basic, **kwargs: object) -> sp.Expr:
        from spec import C, i

        return sp.exp(x[a]) / sp.Sum(sp.exp(x[i]), (i, 0, C - 1))

    @staticmethod
    def error_scale(x: sp.Basic, a: sp.Basic) -> sp.Expr:
        from spec import C

        # exp(x[a] - max x) turns the rounding of its argument (size |x[a]| + max|x|) into a
        # relative error; the normalising sum adds C roundings
        return (C + 2 + sp.Abs(x[a]) + MaxAbs(x)) * Softmax(x, a)


class NegLogSoftmax(sp.Function):
    """``NegLogSoftmax(x, a) = LogSumExp(x) - x[a]``, i.e. ``-log softmax(x)[a]``.

    Lowered as ``(m - x[a]) + log1p(Σ_{i ≠ argmax} exp(x[i] - m))`` with ``m = max x``: exact to a
    few ulp even when the result is tiny (logits [100, 0, 0], a = 0 gives 7.44e-44, not 0).
    """

    nargs = 2
    is_real = True

    def _eval_derivative(self, s: sp.Basic) -> sp.Expr:
        x, a = self.args
        at = _class_index(s, x)
        return sp.S.Zero if at is None else SoftmaxMinusDelta(x, at, a)

    def _eval_rewrite_as_elementary(self, x: sp.Basic, a: sp.Basic, **kwargs: object) -> sp.Expr:
        return LogSumExp(x).rewrite("elementary") - x[a]

    @staticmethod
    def error_scale(x: sp.Basic, a: sp.Basic) -> sp.Expr:
        # logsumexp(x) - x[a] combines |logsumexp| and |x[a]|
        return NegLogSoftmax(x, a) + sp.Abs(LogSumExp(x)) + sp.Abs(x[a]) + MaxAbs(x)


class SoftmaxMinusDelta(sp.Function):
    """``SoftmaxMinusDelta(x, b, a) = Softmax(x, b) - KroneckerDelta(b, a)``.

    At ``b = a`` it is lowered as ``-Σ_{i ≠ a} softmax_i``, exact where softmax_a rounds to 1.
    """

    nargs = 3
    is_real = True

    def _eval_derivative(self, s: sp.Basic) -> sp.Expr:
        x, b, _ = self.args
        return Softmax(x, b)._eval_derivative(s)

    def _eval_rewrite_as_elementary(self, x: sp.Basic, b: sp.Basic, a: sp.Basic, **kwargs: object) -> sp.Expr:
        return Softmax(x, b).rewrite("elementary") - sp.KroneckerDelta(b, a)

    def expand_delta(self) -> sp.Expr:
        x, b, a = self.args
        return Softmax(x, b) - sp.KroneckerDelta(b, a)

    @staticmethod
    def error_scale(x: sp.Basic, b: sp.Basic, a: sp.Basic) -> sp.Expr:
        from spec import C

        # "softmax - onehot" combines softmax_b (see Softmax.error_scale) and 1
        return (C + 2 + sp.Abs(x[b]) + MaxAbs(x)) * Softmax(x, b) + sp.KroneckerDelta(b, a)


class SquareOver(sp.Function):
    """``SquareOver(u, v) = u² / v``, lowered as ``u * (u / v)``: no overflow or underflow of ``u²``
    where the quotient is representable (smooth_l1's ``d² / (2β)`` at d = 1e285, β = 1e300)."""

    nargs = 2
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        u, v = self.args
        return 2 * u / v if argindex == 1 else -SquareOver(u, v) / v

    def _eval_rewrite_as_elementary(self, u: sp.Expr, v: sp.Expr, **kwargs: object) -> sp.Expr:
        return u**2 / v

    @staticmethod
    def error_scale(u: sp.Expr, v: sp.Expr) -> sp.Expr:
        return 2 * sp.Abs(SquareOver(u, v))


class LogAdd(sp.Function):
    """``LogAdd(a, b) = log(a + b)``, lowered as ``log(s) + e/s`` where ``s + e = a + b`` exactly
    (TwoSum): accurate where ``a + b`` rounds away the smaller term (poisson_nll_loss's
    ``log(x + eps)`` at x = 1e-300, eps = 1, is 1e-300, not log(1.0) = 0)."""

    nargs = 2
    is_real = True

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        a, b = self.args
        return 1 / (a + b)

    def _eval_rewrite_as_elementary(self, a: sp.Expr, b: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.log(a + b)

    @staticmethod
    def error_scale(a: sp.Expr, b: sp.Expr) -> sp.Expr:
        # log of the rounded sum (its relative error 1 ulp becomes an absolute ulp), the correction
        return sp.Abs(LogAdd(a, b)) + 2


class MaxAbs(sp.Function):
    """``max_i |x[i]|`` over the class axis: only used inside error scales."""

    nargs = 1
    is_real = True


NODES: tuple[type[sp.Function], ...] = (
    Softplus,
    Sigmoid,
    LogSumExp,
    Softmax,
    NegLogSoftmax,
    SoftmaxMinusDelta,
    SquareOver,
    LogAdd,
)


# ---------------------------------------------------------------------------------------------
# Rules. Each maps an expression to an equal one; ``RULES`` lists them with the pattern they match.


def _sigmoid(e: sp.Expr) -> sp.Expr:
    """``1 / (1 + exp(-z))`` → ``Sigmoid(z)``."""

    def match(p: sp.Basic) -> bool:
        if not (isinstance(p, sp.Pow) and p.exp == -1 and isinstance(p.base, sp.Add)):
            return False
        terms = p.base.args
        return len(terms) == 2 and sp.S.One in terms and any(isinstance(t, sp.exp) for t in terms)

    def build(p: sp.Pow) -> sp.Expr:
        (ex,) = [t for t in p.base.args if isinstance(t, sp.exp)]
        return Sigmoid(-ex.args[0])

    return e.replace(match, build)


def _one_minus_sigmoid(e: sp.Expr) -> sp.Expr:
    """``1 - Sigmoid(z)`` → ``Sigmoid(-z)``."""

    def match(a: sp.Basic) -> bool:
        if not isinstance(a, sp.Add) or sp.S.One not in a.args:
            return False
        return any(_neg_sigmoid(t) is not None for t in a.args)

    def build(a: sp.Add) -> sp.Expr:
        rest = list(a.args)
        rest.remove(sp.S.One)
        for t in rest:
            z = _neg_sigmoid(t)
            if z is not None:
                rest.remove(t)
                return sp.Add(Sigmoid(-z), *rest)
        raise AssertionError("unreachable")

    return e.replace(match, build)


def _neg_sigmoid(t: sp.Basic) -> sp.Expr | None:
    if isinstance(t, sp.Mul) and len(t.args) == 2 and t.args[0] == -1 and isinstance(t.args[1], Sigmoid):
        return t.args[1].args[0]
    return None


def _log_sigmoid(e: sp.Expr) -> sp.Expr:
    """``log(Sigmoid(z))`` → ``-Softplus(-z)``."""
    return e.replace(
        lambda p: isinstance(p, sp.log) and isinstance(p.args[0], Sigmoid),
        lambda p: -Softplus(-p.args[0].args[0]),
    )


def _log_one_plus_exp(e: sp.Expr) -> sp.Expr:
    """``log(1 + exp(z))`` → ``Softplus(z)`` (SymPy's ``log1p(exp(z))`` overflows at z = 1000)."""

    def match(p: sp.Basic) -> bool:
        if not (isinstance(p, sp.log) and isinstance(p.args[0], sp.Add)):
            return False
        terms = p.args[0].args
        return len(terms) == 2 and sp.S.One in terms and any(isinstance(t, sp.exp) for t in terms)

    def build(p: sp.log) -> sp.Expr:
        (ex,) = [t for t in p.args[0].args if isinstance(t, sp.exp)]
        return Softplus(ex.args[0])

    return e.replace(match, build)


def _logsumexp(e: sp.Expr) -> sp.Expr:
    """``log(Σ_i exp(x[i]))`` over the full class axis → ``LogSumExp(x)``."""
    from spec import C

    def match(p: sp.Basic) -> bool:
        if not (isinstance(p, sp.log) and isinstance(p.args[0], sp.Sum)):
            return False
        s = p.args[0]
        (d, lo, hi) = s.limits[0]
        f = s.function
        return (
            lo == 0
            and hi == C - 1
            and isinstance(f, sp.exp)
            and isinstance(f.args[0], sp.Indexed)
            and f.args[0].indices == (d,)
        )

    return e.replace(match, lambda p: LogSumExp(p.args[0].function.args[0].base))


def _exp_sum_base(p: sp.Basic) -> tuple[sp.Basic, int] | None:
    """``(x, n)`` if ``p`` is ``(Σ_i exp(x[i]))^-n`` over the full class axis, n >= 1."""
    from spec import C

    if not (isinstance(p, sp.Pow) and p.exp.is_Integer and p.exp < 0 and isinstance(p.base, sp.Sum)):
        return None
    s = p.base
    (d, lo, hi) = s.limits[0]
    f = s.function
    if len(s.limits) == 1 and lo == 0 and hi == C - 1 and isinstance(f, sp.exp):
        if isinstance(f.args[0], sp.Indexed) and f.args[0].indices == (d,):
            return f.args[0].base, int(-p.exp)
    return None


def _softmax(e: sp.Expr) -> sp.Expr:
    """``exp(x[a]) / Σ_i exp(x[i])`` → ``Softmax(x, a)``, and ``Σ_l g·exp(x[l]) / Σ_i exp(x[i])`` →
    ``Σ_l g·Softmax(x, l)``: one power of the normalising sum per pass (the first derivative of a
    softmax cross entropy written raw, differentiated again, has ``exp(x[j])·Σ_l exp(x[l])v[l] /
    (Σ_i exp(x[i]))²``: 0/0 where the exponentials underflow)."""

    def absorb(f: sp.Basic, x: sp.Basic) -> sp.Basic | None:
        if isinstance(f, sp.exp) and _class_index(f.args[0], x) is not None:
            return Softmax(x, _class_index(f.args[0], x))
        if isinstance(f, sp.Sum) and len(f.limits) == 1:
            d = f.limits[0][0]
            parts = sp.Mul.make_args(f.function)
            for n, g in enumerate(parts):
                if isinstance(g, sp.exp) and _class_index(g.args[0], x) == d:
                    rest = sp.Mul(*parts[:n], *parts[n + 1 :])
                    return sp.Sum(rest * Softmax(x, d), f.limits[0])
        return None

    def step(m: sp.Basic) -> sp.Basic | None:
        if not isinstance(m, sp.Mul):
            return None
        factors = list(m.args)
        for n, p in enumerate(factors):
            got = _exp_sum_base(p)
            if got is None:
                continue
            x, power = got
            for q, f in enumerate(factors):
                new = absorb(f, x) if q != n else None
                if new is not None:
                    factors[q] = new
                    factors[n] = p.base ** -(power - 1)
                    return sp.Mul(*factors)
        return None

    return e.replace(lambda m: step(m) is not None, lambda m: step(m))


def _neg_log_softmax(e: sp.Expr) -> sp.Expr:
    """``c·LogSumExp(x) - c·x[a]`` inside a sum → ``c·NegLogSoftmax(x, a)``."""

    def pair(a: sp.Add) -> tuple[sp.Expr, sp.Basic, sp.Basic] | None:
        lse = [t for t in a.args if t.as_coeff_Mul()[1].func is LogSumExp]
        for t in lse:
            c, node = t.as_coeff_Mul()
            x = node.args[0]
            for u in a.args:
                cu, ix = u.as_coeff_Mul()
                if isinstance(ix, sp.Indexed) and ix.base == x and cu == -c:
                    return t, u, c * NegLogSoftmax(x, ix.indices[0])
        return None

    def build(a: sp.Add) -> sp.Expr:
        t, u, node = pair(a)  # type: ignore[misc]
        rest = [v for v in a.args if v is not t and v is not u]
        return sp.Add(node, *rest)

    return e.replace(lambda a: isinstance(a, sp.Add) and pair(a) is not None, build)


def _log1p(e: sp.Expr) -> sp.Expr:
    """``log(1 + u)`` → ``log1p(u)`` (accurate for small u, e.g. ``log(1 - x)`` near x = 0)."""

    def match(p: sp.Basic) -> bool:
        return (
            isinstance(p, sp.log)
            and isinstance(p.args[0], sp.Add)
            and sp.S.One in p.args[0].args
            and not any(isinstance(t, sp.exp) for t in p.args[0].args)
        )

    return e.replace(match, lambda p: log1p(p.args[0] - 1))


def _log_add(e: sp.Expr) -> sp.Expr:
    """``log(a + b)`` of two terms, neither an exp nor the constant 1 → ``LogAdd(a, b)``."""

    def match(p: sp.Basic) -> bool:
        if not (isinstance(p, sp.log) and isinstance(p.args[0], sp.Add) and len(p.args[0].args) == 2):
            return False
        terms = p.args[0].args
        return sp.S.One not in terms and not any(t.has(sp.exp) or t.is_Number for t in terms)

    return e.replace(match, lambda p: LogAdd(*p.args[0].args))


def _is_half_power(f: sp.Basic) -> bool:
    """``±1/2^k``, k >= 1: a factor a divisor takes exactly."""
    return bool(f.is_Rational and abs(f.p) == 1 and f.q > 1 and (f.q & (f.q - 1)) == 0)


def _square_over(e: sp.Expr) -> sp.Expr:
    """``u² / v`` (v not a number) → ``SquareOver(u, v)``; ``u² / v²`` → ``SquareOver(u / v, 1)``."""

    def parts(m: sp.Basic) -> tuple[sp.Expr, sp.Expr, list[sp.Basic]] | None:
        if not isinstance(m, sp.Mul):
            return None
        fs = list(m.args)
        sq = [f for f in fs if isinstance(f, sp.Pow) and f.exp == 2]
        inv = [f for f in fs if isinstance(f, sp.Pow) and f.exp in (-1, -2) and not f.base.is_Number]
        if sq and not inv and any(_is_half_power(f) for f in fs):
            # u²/2^k (huber's d²/2): SquareOver(u, 1) then takes the 1/2^k into its divisor
            fs.remove(sq[0])
            return sq[0].base, sp.S.One, fs
        if not sq or not inv:
            return None
        fs.remove(sq[0])
        fs.remove(inv[0])
        if inv[0].exp == -2:  # u²/v² = (u/v)²: gaussian_nll_loss's var gradient
            return sq[0].base / inv[0].base, sp.S.One, fs
        return sq[0].base, inv[0].base, fs

    def build(m: sp.Mul) -> sp.Expr:
        u, v, rest = parts(m)  # type: ignore[misc]
        # a factor 1/2^k goes into the divisor, exactly: u²/(2v) = u·(u/(2v)) does not overflow
        # where u² does (gaussian_nll_loss's (x - y)²/(2 max(var, eps)) at |x - y| = 1.3e154)
        halves = [f for f in rest if _is_half_power(f)]
        if halves:
            rest.remove(halves[0])
            rest.append(sp.sign(halves[0]))
            v = v * halves[0].q
        return sp.Mul(SquareOver(u, v), *rest)

    return e.replace(lambda m: parts(m) is not None, build)


#: Applied in order, to a fixed point, by :func:`stabilize`.
RULES: tuple[Rule, ...] = (
    _sigmoid,
    _one_minus_sigmoid,
    _log_sigmoid,
    _log_one_plus_exp,
    _logsumexp,
    _softmax,
    _neg_log_softmax,
    _log1p,
    _log_add,
    _square_over,
)


def stabilize(e: sp.Expr) -> sp.Expr:
    """Apply every rule until none changes the expression."""
    for _ in range(10):
        before = e
        for rule in RULES:
            e = rule(e)
        if e == before:
            return e
    raise RuntimeError(f"stable rewrites did not converge on {e}")


def elementary(e: sp.Expr) -> sp.Expr:
    """Rewrite every stable node back to elementary functions (the inverse of :func:`stabilize`)."""
    from sympy.codegen.cfunctions import log1p as _log1p_node

    e = e.replace(lambda p: isinstance(p, _log1p_node), lambda p: sp.log(1 + p.args[0]))
    for _ in range(5):
        before = e
        e = e.replace(lambda p: isinstance(p, NODES), lambda p: p.rewrite("elementary"))
        if e == before:
            break
    return e
