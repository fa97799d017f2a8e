"""Lowering of derived SymPy expressions to vectorised NumPy functions, with labelled axes.

``lambdify`` prints a class-axis ``Sum`` as a Python generator loop, per call and per sample. This
lowering instead gives every subexpression an array whose leading dims are the batch and whose
trailing dims are **labelled** by the summation dummies free in it (``spec.NAMED_AXES``: ``k``,
``i``, ``j`` along the class axis, each its own dim), in one canonical order:

* ``x[k]`` is the array ``x`` of shape ``(..., C)`` with its last dim labelled ``k``; ``x[i]`` is the
  same array labelled ``i``;
* an operation aligns its operands' labels as einsum does: ``x[i] * x[k]`` is
  ``x[..., :, None] * x[..., None, :]``, labelled ``(k, i)``;
* ``Sum(f, (k, 0, C - 1))`` sums over the dim labelled ``k`` (the label goes); a sum of something
  that does not depend on ``k`` is ``C`` times it; several limits are several sums;
* ``x[target]`` (``target`` a class-index argument, one per sample) takes along the class dim, and
  ``KroneckerDelta(j, target)`` is the one-hot array of ``target``, labelled ``j``.

Anything the lowering does not know (a partial sum, a dummy used as a number, an unknown function)
raises ``NotImplementedError`` at lowering time: nothing is printed that does not carry its labels.

Branches (``Piecewise``, ``Max``, ``Min``) lower to ``numpy.where`` on a condition that can be
flipped per element, so that the conformance harness can evaluate the other side of a branch whose
condition lies within rounding of its boundary (see ``docs/error-model.md``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from oracle import _kernels
from oracle._stable import (
    NODES,
    LogSumExp,
    MaxAbs,
    NegLogSoftmax,
    Sigmoid,
    Softmax,
    SoftmaxMinusDelta,
    Softplus,
    SquareOver,
)
from spec import NAMED_AXES
from spec._core import clamped, root

Array = np.ndarray[Any, Any]
Labels = tuple[sp.Symbol, ...]

#: summation dummy -> (its axis's size symbol, its rank in the canonical label order)
_DUMMIES: dict[sp.Symbol, tuple[sp.Symbol, int]] = {
    d: (ax.size, n) for n, (ax, d) in enumerate((ax, d) for ax in NAMED_AXES for d in ax.dummies)
}
_SIZES: dict[sp.Symbol, str] = {ax.size: f"_{ax.size.name}" for ax in NAMED_AXES}

_FUNCS: dict[type[sp.Basic], str] = {
    sp.exp: "numpy.exp",
    sp.log: "numpy.log",
    sp.Abs: "numpy.abs",
    sp.tanh: "numpy.tanh",
    sp.cosh: "numpy.cosh",
    sp.sinh: "numpy.sinh",
    sp.atan: "numpy.arctan",
    sp.floor: "numpy.floor",
    sp.ceiling: "numpy.ceil",
    log1p: "numpy.log1p",
    expm1: "numpy.expm1",
    Softplus: "_k.softplus",
    Sigmoid: "_k.sigmoid",
}
_RELATIONS: dict[type[sp.Basic], str] = {
    sp.StrictGreaterThan: "numpy.greater",
    sp.GreaterThan: "numpy.greater_equal",
    sp.StrictLessThan: "numpy.less",
    sp.LessThan: "numpy.less_equal",
    sp.Equality: "numpy.equal",
    sp.Unequality: "numpy.not_equal",
}


def _order(labels: set[sp.Symbol] | Labels) -> Labels:
    return tuple(sorted(labels, key=lambda d: _DUMMIES[d][1]))


@dataclass(frozen=True)
class _Code:
    """A lowered subexpression: NumPy source, and the labels of its trailing dims."""

    src: str
    labels: Labels = ()
    literal: bool = False  # a Python number: broadcasts as it is


class _Lowerer:
    def __init__(self, index_args: frozenset[str], options: frozenset[str] = frozenset()) -> None:
        self.index_args = index_args
        self.options = options  # scalar options: a product with one that is 0 is not evaluated
        self.switches: list[sp.Expr] = []  # the margin (signed distance to the boundary) of each branch
        self.keyed: dict[tuple[Any, ...], int] = {}  # steps' conditions -> their switch
        self.temps: dict[sp.Symbol, Labels] = {}  # common subexpressions: their labels
        self.temp_exprs: dict[sp.Symbol, sp.Expr] = {}  # and what they stand for
        self.norm_sums: frozenset[sp.Expr] = frozenset()  # sums of powers under a norm's root

    # -- alignment ----------------------------------------------------------------------------
    @staticmethod
    def align(c: _Code, to: Labels) -> str:
        """``c`` with a dim for every label of ``to`` (size 1 where ``c`` lacks it), in order."""
        if c.literal or c.labels == to:
            return c.src if c.literal else f"({c.src})"
        missing = [d for d in c.labels if d not in to]
        if missing:
            raise NotImplementedError(f"labels {c.labels} do not fit in {to}")
        idx = ", ".join(":" if d in c.labels else "None" for d in to)
        if not c.labels:  # may be a Python scalar (1.0 / _C): as an array, 0-d or batched
            return f"numpy.asarray({c.src})[..., {idx}]"
        return f"({c.src})[..., {idx}]"

    def combine(self, parts: Sequence[_Code]) -> tuple[list[str], Labels]:
        to = _order({d for p in parts for d in p.labels})
        return [self.align(p, to) for p in parts], to

    # -- the recursion --------------------------------------------------------------------------
    def lower(self, e: sp.Basic) -> _Code:
        if e.is_Number or e.is_NumberSymbol:
            return self.number(e)
        if isinstance(e, sp.Symbol):
            return self.symbol(e)
        if isinstance(e, sp.Indexed):
            return self.indexed(e)
        if isinstance(e, (sp.Add, _Compensated)):
            terms = [t for a in e.args for t in (_split_inexact(a) if isinstance(e, _Compensated) else (a,))]
            parts = [self.lower(a) for a in terms]
            srcs, to = self.combine(parts)
            if isinstance(e, _Compensated):
                return _Code(f"_k.add({', '.join(srcs)})", to)
            return _Code(" + ".join(srcs), to)
        if isinstance(e, sp.Mul):
            return self.mul(e)
        if isinstance(e, sp.Pow):
            return self.pow(e)
        if isinstance(e, (sp.Sum, _AxisSum)):
            return self.sum(e)
        if isinstance(e, sp.KroneckerDelta):
            return self.delta(e)
        if isinstance(e, (sp.Piecewise, sp.Max, sp.Min, _Max, _Min)):
            return self.branch(e)
        if isinstance(e, sp.Heaviside):
            return self.step(e)
        if isinstance(e, sp.sign):
            return self.sign(e)
        if isinstance(e, sp.core.relational.Relational):
            (a, b), to = self.combine([self.lower(e.lhs), self.lower(e.rhs)])
            return _Code(f"{_RELATIONS[type(e)]}({a}, {b})", to)
        if isinstance(e, (sp.And, sp.Or, sp.Not)):
            op = {sp.And: "numpy.logical_and", sp.Or: "numpy.logical_or", sp.Not: "numpy.logical_not"}
            srcs, to = self.combine([self.lower(a) for a in e.args])
            out = srcs[0]
            for s in srcs[1:]:
                out = f"{op[type(e)]}({out}, {s})"
            return _Code(out if len(srcs) > 1 else f"{op[type(e)]}({out})", to)
        if e in (sp.true, sp.false):
            return _Code(str(bool(e)), (), literal=True)
        if isinstance(e, sp.conjugate):  # SymPy's Abs of a power of unknown sign: every value is real
            return self.lower(e.args[0])
        special = getattr(self, f"node_{type(e).__name__}", None)
        if special is not None:
            return special(e)  # type: ignore[no-any-return]
        if type(e) in _FUNCS:
            (arg,) = (self.lower(x) for x in e.args)
            return _Code(f"{_FUNCS[type(e)]}({self.align(arg, arg.labels)})", arg.labels)
        raise NotImplementedError(f"the lowering does not know {type(e).__name__}: {e}")

    def number(self, e: sp.Basic) -> _Code:
        if e is sp.nan:
            return _Code("numpy.nan", (), literal=True)
        if e in (sp.oo, -sp.oo):
            return _Code("numpy.inf" if e is sp.oo else "(-numpy.inf)", (), literal=True)
        if e is sp.zoo:
            raise NotImplementedError("complex infinity in a loss expression")
        if e.is_Integer:
            return _Code(f"{int(e)}.0" if abs(int(e)) < 2**53 else repr(float(e)), (), literal=True)
        return _Code(repr(float(e)), (), literal=True)  # a Rational rounded once, to nearest

    def symbol(self, s: sp.Symbol) -> _Code:
        if s in _SIZES:
            return _Code(_SIZES[s], (), literal=True)  # a Python int: broadcasts as it is
        if s in _DUMMIES:
            raise NotImplementedError(f"a summation dummy used as a number: {s}")
        if s in self.temps:
            return _Code(s.name, self.temps[s])
        return _Code(s.name)

    def _array(self, base: sp.Basic) -> str:
        if not isinstance(base, sp.IndexedBase):
            raise NotImplementedError(f"not an argument's array: {base}")
        return str(base.label)

    def indexed(self, e: sp.Indexed) -> _Code:
        if len(e.indices) != 1:
            raise NotImplementedError(f"only one index per argument lowers: {e}")
        (at,) = e.indices
        name = self._array(e.base)
        if at in _DUMMIES:
            return _Code(name, (at,))
        if isinstance(at, sp.Symbol) and at.name in self.index_args:
            return _Code(f"_k.take({name}, {at.name})")
        raise NotImplementedError(f"an index that is neither a dummy nor a class-index argument: {e}")

    def mul(self, e: sp.Mul) -> _Code:
        num: list[sp.Basic] = []
        den: list[sp.Basic] = []
        for f in e.args:
            if isinstance(f, sp.Pow) and f.exp.is_Number and f.exp < 0:
                den.append(f.base ** (-f.exp))
            else:
                num.append(f)
        parts = [self.lower(f) for f in (*num, *den)]
        srcs, to = self.combine(parts)
        top = " * ".join(srcs[: len(num)]) or "1.0"
        out = top if not den else f"({top}) / ({' * '.join(srcs[len(num) :])})"
        # A term weighted by an option that is 0 (cross_entropy's label_smoothing ε·Σ_c w_c·(-log p_c)
        # at the default ε = 0) is 0, as in torch, which does not compute it: not evaluated (nor
        # NaN where the term is not finite).
        zero = [str(f) for f in num if isinstance(f, sp.Symbol) and str(f) in self.options]
        if zero:
            return _Code(f"(numpy.float64(0.0) if {zero[0]} == 0 else {out})", to)
        return _Code(out, to)

    def pow(self, e: sp.Pow) -> _Code:
        b, p = e.args
        base = self.lower(b)
        src = self.align(base, base.labels)
        if p == sp.Rational(1, 2):
            return _Code(f"numpy.sqrt({src})", base.labels)
        if p == -1:
            return _Code(f"1.0 / {src}", base.labels)
        if p == 2:
            return _Code(f"{src} * {src}", base.labels)
        (bs, ps), to = self.combine([base, self.lower(p)])
        return _Code(f"{bs} ** {ps}", to)

    def _power_base(self, f: sp.Expr) -> tuple[sp.Expr, sp.Expr] | None:
        """``(b, p)`` where ``f`` (through the temporaries) is ``|b|^p`` or ``b^(2k)``: a sum of
        powers, whose range the oracle checks (``_k.power_sum``)."""
        while isinstance(f, sp.Symbol) and f in self.temp_exprs:
            f = self.temp_exprs[f]
        if not isinstance(f, sp.Pow):
            return None
        b, p = f.args  # b itself (a temporary, or an expression of them): max |b| is all it needs
        full = b
        while isinstance(full, sp.Symbol) and full in self.temp_exprs:
            full = self.temp_exprs[full]
        return (b, p) if isinstance(full, sp.Abs) or (p.is_Integer and p.is_even and p > 0) else None

    def sum(self, e: sp.Sum | _AxisSum) -> _Code:
        body = self.lower(e.function)
        src, labels = self.align(body, body.labels), body.labels
        base = self._power_base(e.function) if len(e.limits) == 1 else None
        if base is not None:  # a sum of powers whose p-th root is a norm, not one clamped below
            full = e
            while full.has(*self.temp_exprs):
                full = full.xreplace(self.temp_exprs)
            base = base if full in self.norm_sums else None
        for d, lo, hi in e.limits:
            if d not in _DUMMIES:
                raise NotImplementedError(f"a sum over {d}, not a dummy of a named axis: {e}")
            size = _DUMMIES[d][0]
            if lo != 0 or sp.simplify(hi - (size - 1)) != 0:
                raise NotImplementedError(f"only full sums over an axis lower ({d} in [0, {size} - 1]): {e}")
            if d not in labels:
                src = f"({_SIZES[size]} * {src})"
                continue
            axis = labels.index(d) - len(labels)
            b, p = (self.lower(base[0]), self.lower(base[1])) if base is not None else (None, None)
            if b is not None and p is not None and set(b.labels) <= set(labels) and not p.labels:
                # a sum of powers under a norm: its range checked
                src = f"_k.power_sum({src}, {self.align(b, labels)}, {p.src}, axis={axis})"
            else:
                src = f"numpy.add.reduce({src}, axis={axis})"  # (numpy.sum without its wrappers)
            labels = tuple(x for x in labels if x != d)
        return _Code(src, labels)

    def delta(self, e: sp.KroneckerDelta) -> _Code:
        a, b = e.args
        dummies = [t for t in (a, b) if t in _DUMMIES]
        index = [t for t in (a, b) if isinstance(t, sp.Symbol) and t.name in self.index_args]
        if len(dummies) == 1 and len(index) == 1:
            return _Code(f"_k.onehot({index[0].name}, {_SIZES[_DUMMIES[dummies[0]][0]]})", (dummies[0],))
        if len(dummies) == 2 and _DUMMIES[a][0] == _DUMMIES[b][0]:
            return _Code(f"_k.eye({_SIZES[_DUMMIES[a][0]]})", _order({a, b}))  # symmetric
        raise NotImplementedError(f"KroneckerDelta must pair a dummy with a class index or a dummy: {e}")

    # -- stable nodes (their array argument is a whole IndexedBase along the class axis) ------------
    def _component(self, full: str, at: sp.Basic) -> _Code:
        """Component ``at`` of a kernel's ``(..., C)`` result: labelled by a dummy, or taken."""
        if at in _DUMMIES:
            return _Code(full, (at,))
        if isinstance(at, sp.Symbol) and at.name in self.index_args:
            return _Code(f"_k.take({full}, {at.name})")
        raise NotImplementedError(f"a component that is neither a dummy nor a class index: {at}")

    def node_LogSumExp(self, e: LogSumExp) -> _Code:
        return _Code(f"_k.logsumexp({self._array(e.args[0])})")

    def node_MaxAbs(self, e: MaxAbs) -> _Code:
        return _Code(f"numpy.max(numpy.abs({self._array(e.args[0])}), axis=-1)")

    def node_Softmax(self, e: Softmax) -> _Code:
        x, a = e.args
        return self._component(f"_k.softmax({self._array(x)})", a)

    def node_NegLogSoftmax(self, e: NegLogSoftmax) -> _Code:
        x, a = e.args
        name = self._array(x)
        if isinstance(a, sp.Symbol) and a.name in self.index_args:
            return _Code(f"_k.neg_log_softmax_at({name}, {a.name})")
        return self._component(f"_k.neg_log_softmax_all({name})", a)

    def node_SoftmaxMinusDelta(self, e: SoftmaxMinusDelta) -> _Code:
        x, b, a = e.args
        if not (isinstance(a, sp.Symbol) and a.name in self.index_args):
            raise NotImplementedError(f"expand SoftmaxMinusDelta over a dummy before lowering: {e}")
        return self._component(f"_k.softmax_minus_onehot({self._array(x)}, {a.name})", b)

    def node_LogAdd(self, e: sp.Function) -> _Code:
        (a, b), to = self.combine([self.lower(x) for x in e.args])
        return _Code(f"_k.log_add({a}, {b})", to)

    def node_xlogy(self, e: sp.Function) -> _Code:
        (x, y), to = self.combine([self.lower(a) for a in e.args])
        return _Code(f"_k.xlogy({x}, {y})", to)

    def node_SquareOver(self, e: SquareOver) -> _Code:
        (u, v), to = self.combine([self.lower(a) for a in e.args])
        return _Code(f"{u} * ({u} / {v})", to)

    # -- branches -----------------------------------------------------------------------------------
    def _switch(
        self, margin: sp.Expr, cond: _Code, then: _Code, other: _Code, key: tuple[Any, ...] | None = None
    ) -> _Code:
        # a step on the same condition (``key``) anywhere in the expression is one decision: one
        # switch, flipped everywhere at once
        n = self.keyed.get(key, len(self.switches)) if key is not None else len(self.switches)
        if n == len(self.switches):
            self.switches.append(margin)
            if key is not None:
                self.keyed[key] = n
        flipped = _Code(f"_k.flip(_flips, {n}, {self.align(cond, cond.labels)})", cond.labels)
        (c, t, o), to = self.combine([flipped, then, other])
        return _Code(f"numpy.where({c}, {t}, {o})", to)

    def step(self, e: sp.Heaviside) -> _Code:
        """``Heaviside(z, h0)``, its value at 0 stated (0 or 1: a kink's convention; ½: the tie of
        a Min's derivative, torch.minimum's split): a branch on z like a Piecewise's.

        Written on a canonical sign of its argument (``H(-z, h0) = 1 - H(z, 1 - h0)``), with one
        switch per condition: the two sides of a Min's derivative, H(b - a) and H(a - b), are one
        decision, and ½ = ½(H(z, 0) + H(z, 1)) two switches, so that a tie is reachable too."""
        w, *h0 = e.args
        at0 = h0[0] if h0 else sp.S.Half
        if at0 not in (0, sp.S.Half, 1):
            raise NotImplementedError(f"Heaviside's value at 0 must be 0, 1/2 or 1: {e}")
        full = w.xreplace(self.temp_exprs) if self.temp_exprs else w
        while full.has(*self.temp_exprs):
            full = full.xreplace(self.temp_exprs)
        # the sign is made canonical on the products distributed: SymPy writes the same condition
        # as -(x/p - y/a)/n in one term of a gradient and -(-x/p + y/a)/n (its negation) in another
        pos, neg = sp.expand_mul(full), sp.expand_mul(-full)
        flip_sign = sp.default_sort_key(neg) < sp.default_sort_key(pos)
        z = -w if flip_sign else w
        zfull = -full if flip_sign else full
        canon = neg if flip_sign else pos
        at = 1 - at0 if flip_sign else at0
        arg = self.lower(z)
        zs = self.align(arg, arg.labels)
        one, zero = _Code("1.0", (), literal=True), _Code("0.0", (), literal=True)

        def switch(op: str) -> _Code:
            return self._switch(zfull, _Code(f"{op}({zs}, 0.0)", arg.labels), one, zero, key=(canon, op))

        if at == sp.S.Half:
            (a, b), to = self.combine([switch("numpy.greater"), switch("numpy.greater_equal")])
            code = _Code(f"0.5 * ({a} + {b})", to)
        else:
            code = switch("numpy.greater_equal" if at == 1 else "numpy.greater")
        return _Code(f"(1.0 - {self.align(code, code.labels)})", code.labels) if flip_sign else code

    def sign(self, e: sp.sign) -> _Code:
        """``sign(z)`` = [z > 0] - [z < 0], two branches on z: a sign decided within rounding of 0
        (a p-norm's ``|u|`` at u = a - b + eps ≈ 0) may be taken either way."""
        (z,) = e.args
        arg = self.lower(z)
        zs = self.align(arg, arg.labels)
        full = z
        while full.has(*self.temp_exprs):
            full = full.xreplace(self.temp_exprs)
        if _one_rounding(full):  # a correctly rounded operation keeps the sign of its exact result
            return _Code(f"numpy.sign({zs})", arg.labels)
        one, zero = _Code("1.0", (), literal=True), _Code("0.0", (), literal=True)
        pos = self._switch(z, _Code(f"numpy.greater({zs}, 0.0)", arg.labels), one, zero)
        neg = self._switch(-z, _Code(f"numpy.less({zs}, 0.0)", arg.labels), one, zero)
        (a, b), to = self.combine([pos, neg])
        return _Code(f"({a} - {b})", to)

    def node_hinge(self, e: sp.Function) -> _Code:
        v, at0 = e.args
        arg = self.lower(v)
        op = "numpy.greater_equal" if at0 == 1 else "numpy.greater"
        cond = _Code(f"{op}({self.align(arg, arg.labels)}, 0.0)", arg.labels)
        return self._switch(v, cond, arg, _Code("0.0", (), literal=True))

    def node_ExactSum(self, e: sp.Function) -> _Code:
        (a, b), to = self.combine([self.lower(x) for x in e.args])
        return _Code(f"_k.exact_sum({a}, {b})", to)

    def node_clamped(self, e: sp.Function) -> _Code:
        # max(v, lo) is continuous and its derivative is stated (1): no decision to keep
        (v, lo), to = self.combine([self.lower(a) for a in e.args])
        return _Code(f"numpy.maximum({v}, {lo})", to)

    def node_root(self, e: sp.Function) -> _Code:
        (s_, p), to = self.combine([self.lower(a) for a in e.args])
        return _Code(f"{s_} ** (1.0 / {p})", to)

    def branch(self, e: sp.Basic) -> _Code:
        if isinstance(e, sp.Piecewise):
            (then, cond), *rest = e.args
            other = rest[0][0] if len(rest) == 1 and rest[0][1] == sp.true else sp.Piecewise(*rest)
            # a condition repeated in the expression is a temporary (a boolean symbol, like a
            # flag's): what it stands for decides whether it is a comparison, with a tolerance
            full = cond
            while full.has(*self.temp_exprs):
                full = full.xreplace(self.temp_exprs)
            if _is_flag_condition(full) or isinstance(full, (sp.And, sp.Or, sp.Not)):
                # the caller's choice of formula (a flag, or options: swap & (1 < p < 2)): no
                # branch tolerance
                (c, t, o), to = self.combine([self.lower(cond), self.lower(then), self.lower(other)])
                return _Code(f"numpy.where({c}, {t}, {o})", to)
            if not isinstance(full, sp.core.relational.Relational):
                raise NotImplementedError(f"Piecewise condition must be a comparison or a flag: {full}")
            # the same condition in several Piecewises is one decision: one switch for all
            return self._switch(
                full.lhs - full.rhs,
                self.lower(cond),
                self.lower(then),
                self.lower(other),
                key=("where", full),
            )
        a, *rest = e.args
        b = rest[0] if len(rest) == 1 else e.func(*rest)
        la, lb = self.lower(a), self.lower(b)
        op = "numpy.greater_equal" if isinstance(e, (sp.Max, _Max)) else "numpy.less_equal"
        (sa, sb), to = self.combine([la, lb])
        return self._switch(a - b, _Code(f"{op}({sa}, {sb})", to), la, lb)


class ExactSum(sp.Function):
    """``ExactSum(a, b)``: true where float64's ``a + b`` is exact (``_kernels.exact_sum``)."""

    nargs = 2


def exact_boundary(m: sp.Expr) -> sp.Expr | None:
    """For a branch margin ``a + b`` or ``±f(a + b) ∓ r`` (``f`` the identity or Abs; ``a``, ``b``,
    ``r`` arguments, options or exact numbers): ``ExactSum(a, b)``, where the margin's 0 is the exact
    boundary. Rounding is monotonic, so a decision ``|x - y| < β`` can be taken the other way only
    where ``x - y`` rounds onto β: computed exactly and on the boundary, it is the exact decision
    (smooth_l1's kink at x - y = β exactly takes the linear branch, as torch's ``<`` does). Else
    None."""
    terms = sp.Add.make_args(m)
    if len(terms) != 2:
        return None

    def bare(t: sp.Basic) -> sp.Basic:
        return t.args[1] if isinstance(t, sp.Mul) and len(t.args) == 2 and t.args[0] == -1 else t

    def atom(t: sp.Basic) -> bool:
        t = bare(t)
        return isinstance(t, (sp.Symbol, sp.Indexed)) or (t.is_Rational and not _inexact(t))

    if all(atom(t) for t in terms):  # a + b itself (cosine_embedding's 1 + y): one rounding, 0 only if exact
        return ExactSum(*terms)
    for d, r in (terms, terms[::-1]):
        inner = bare(d)
        inner = inner.args[0] if isinstance(inner, sp.Abs) else inner
        if (
            atom(r)
            and isinstance(inner, sp.Add)
            and len(inner.args) == 2
            and all(atom(t) for t in inner.args)
        ):
            return ExactSum(*inner.args)
    return None


def _one_rounding(z: sp.Basic) -> bool:
    """``z`` is an argument, or one operation (a sum of two, a product) of arguments and exact
    numbers: its float value has the sign of its exact value (``x - y``, L1's difference)."""

    def atom(a: sp.Basic) -> bool:
        return isinstance(a, (sp.Symbol, sp.Indexed)) or (a.is_Integer and abs(int(a)) < 2**53)

    if atom(z):
        return True
    if isinstance(z, sp.Mul) and len(z.args) == 2 and z.args[0] in (-1, 1) and atom(z.args[1]):
        return True  # -x: exact
    parts = [
        a.args[1] if isinstance(a, sp.Mul) and len(a.args) == 2 and a.args[0] == -1 else a for a in z.args
    ]
    return isinstance(z, (sp.Add, sp.Mul)) and len(z.args) == 2 and all(atom(a) for a in parts)


def _is_flag_condition(cond: sp.Basic) -> bool:
    """A condition built only from boolean symbols (flag options: ``log_target``, ``Not(full)``)."""
    if isinstance(cond, sp.Symbol):
        return cond.is_real is not True and cond.is_integer is not True
    if isinstance(cond, (sp.And, sp.Or, sp.Not)):
        return all(_is_flag_condition(a) for a in cond.args)
    return False


class _Compensated(sp.Function):
    """A sum of three or more computed terms, evaluated compensated (``_kernels.add``): SymPy
    orders an Add's terms its own way, so ``a - b + eps`` may be computed as ``(eps + a) - b``,
    which loses eps where a = b is large. Wrapped before common subexpressions are taken, so that
    they do not split it."""


class _AxisSum(sp.Function):
    """``Σ_d body`` over the whole of ``d``'s axis (args ``(body, d)``), its dummy canonical (the
    first of the axis's dummies that ``body`` does not hold otherwise): a ``Sum`` whose limits hold
    no size symbol, which common subexpressions take (``cse`` ignores whatever holds a size), and
    the same sum written with another dummy is one node. Without it every occurrence of a sum is
    computed again: a triplet loss's second-order error scale held 6548 sums of powers."""

    @property
    def function(self) -> sp.Expr:
        return self.args[0]  # type: ignore[no-any-return]

    @property
    def limits(self) -> tuple[tuple[sp.Basic, sp.Basic, sp.Basic], ...]:
        d = self.args[1]
        return ((d, sp.S.Zero, _DUMMIES[d][0] - 1),)

    def as_sum(self) -> sp.Sum:
        return sp.Sum(self.function, *self.limits)


def _axis_sum(e: sp.Sum) -> sp.Expr:
    """``e`` as nested :class:`_AxisSum` (innermost limit first), where each limit is a whole axis;
    otherwise ``e`` itself (the lowering then says which limit it does not take)."""
    for d, lo, hi in e.limits:
        if d not in _DUMMIES or lo != 0 or sp.simplify(hi - (_DUMMIES[d][0] - 1)) != 0:
            return e
    body = e.function
    for d, _, _ in e.limits:
        size = _DUMMIES[d][0]
        held = body.atoms(sp.Symbol) - {d}
        free = [c for c, (s, _) in _DUMMIES.items() if s == size and c not in held]
        c = free[0] if free else d
        body = _AxisSum(body.xreplace({d: c}) if c != d else body, c)
    return body


def _inexact(a: sp.Basic) -> bool:
    """A rational number that float64 does not hold exactly (``1 + 10**-12``)."""
    return bool(a.is_Rational) and sp.Rational(float(a)) != a


def _split_inexact(a: sp.Basic) -> tuple[sp.Basic, ...]:
    """An inexact rational as the two doubles of its double-double sum ``hi + lo``."""
    if not _inexact(a):
        return (a,)
    hi = sp.Rational(float(a))
    return (hi, sp.Rational(float(a - hi)))


class _Max(sp.Function):
    """``Max``, unevaluated while lowering: SymPy's Max compares its arguments pairwise each time
    an expression holding it is rebuilt (by ``cse``, ``xreplace``): minutes for a triplet loss's
    second derivatives, where the lowering takes a second."""


class _Min(sp.Function):
    """``Min``, unevaluated while lowering (see ``_Max``)."""


_LAZY = {sp.Max: _Max, sp.Min: _Min}
_EAGER = {_Max: sp.Max, _Min: sp.Min}


def _rebuild(e: sp.Basic, f: Callable[[sp.Basic], sp.Basic], memo: dict[sp.Basic, sp.Basic]) -> sp.Basic:
    """``e`` with ``f`` applied to each node, bottom up, each shared subexpression once (SymPy's
    ``replace`` visits one once per path to it, and rebuilds every ``Sum`` above a change)."""
    got = memo.get(e)
    if got is not None:
        return got
    if e.args and not isinstance(e, (sp.Symbol, sp.Indexed, sp.IndexedBase)):
        args = tuple(_rebuild(a, f, memo) for a in e.args)
        node = e.func(*args) if any(a is not b for a, b in zip(args, e.args, strict=True)) else e
    else:
        node = e
    memo[e] = out = f(node)
    return out


def _norm_sums(e: sp.Expr) -> frozenset[sp.Expr]:
    """The sums ``s`` of ``root(s, p)`` (a p-norm) in ``e`` whose root is not clamped below
    (``clamped(root(s, 2), eps)``, cosine_similarity's norm, is at least eps however ``s``
    underflows, and its gradient's ``s^(-1/2)`` term is multiplied by the vector again): where such
    an ``s`` underflows, the norm's gradient ``u / ||u||`` is lost (``_k.power_sum``)."""
    under_clamp = {c.args[0] for c in e.atoms(clamped) if isinstance(c.args[0], root)}
    return frozenset(
        r.args[0] for r in e.atoms(root) if r not in under_clamp and isinstance(r.args[0], (sp.Sum, _AxisSum))
    )


def _wrap_sums(e: sp.Expr) -> sp.Expr:
    """Sums of three or more computed terms, and sums of an inexact constant and a computed term
    (SymPy folds ``1 - x + eps`` into ``(1 + eps) - x``, and ``1 + eps`` rounded loses eps where
    x = 1: BCE's double backward), become compensated sums; the constant is summed as the two
    doubles of its double-double value. Max and Min become their unevaluated forms."""

    def wrap(x: sp.Basic) -> sp.Basic:
        if type(x) in _LAZY:
            return _LAZY[type(x)](*x.args)
        if isinstance(x, sp.Sum):
            return _axis_sum(x)
        if not isinstance(x, sp.Add):
            return x
        computed = sum(not a.is_Number for a in x.args)
        if (len(x.args) >= 3 and computed >= 2) or (computed >= 1 and any(_inexact(a) for a in x.args)):
            return _Compensated(*x.args)
        return x

    return _rebuild(e, wrap, {})  # type: ignore[return-value]


def _unwrap_sums(e: sp.Expr) -> sp.Expr:
    def unwrap(x: sp.Basic) -> sp.Basic:
        if isinstance(x, _Compensated):
            return sp.Add(*x.args)
        if isinstance(x, _AxisSum):
            return x.as_sum()
        return _EAGER[type(x)](*x.args) if type(x) in _EAGER else x

    return _rebuild(e, unwrap, {})  # type: ignore[return-value]


_NAMESPACE = {"numpy": np, "_k": _kernels}


@dataclass(frozen=True)
class Lowered:
    """One expression as a NumPy function of named arrays, with its branch switches.

    ``fn(env, flips)`` evaluates the expression; its result's trailing dims are labelled by
    ``labels`` (the dummies still free in it, e.g. the gradient component ``j``). ``flips`` maps a
    switch number to a boolean mask of elements whose branch is taken the other way. ``switches``
    are the margins of the branches, in the same numbering, as SymPy expressions.

    A copy from the disk cache (``oracle._compile``) is its source alone: ``expr`` and ``switches``
    are None there. Only building a variant's forms needs them, and unpickling SymPy expressions
    is slow (they are rebuilt node by node: 20 s for triplet_margin_loss's second-order entry).
    """

    expr: sp.Expr | None
    source: str
    fn: Callable[[Mapping[str, Array], Mapping[int, Array]], Array]
    switches: tuple[sp.Expr, ...] | None
    labels: Labels = ()

    def __call__(
        self,
        env: Mapping[str, Array],
        flips: Mapping[int, Array] | None = None,
        on_overflow: Callable[[str, int], object] | None = None,
    ) -> Array:
        """Evaluate at ``env`` (with the branch switches ``flips`` taken the other way);
        ``on_overflow`` is called where an intermediate overflows (the kernels of ``_k`` leave
        overflow to this setting)."""
        if on_overflow is None:
            with np.errstate(all="ignore"):
                return self.fn(env, flips or {})
        with np.errstate(all="ignore"), np.errstate(over="call", call=on_overflow):
            return self.fn(env, flips or {})

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as its source (see oracle._compile's cache)
        return (_from_source, (self.source, self.labels))


def _exec(source: str) -> Callable[[Mapping[str, Array], Mapping[int, Array]], Array]:
    ns = dict(_NAMESPACE)
    exec(compile(source, "<lowered>", "exec"), ns)  # (printing a large expr for a name: minutes)
    return ns["_lowered"]  # type: ignore[return-value]


def _from_source(source: str, labels: Labels = ()) -> Lowered:
    return Lowered(None, source, _exec(source), None, labels)


@functools.cache  # a form's switches and their scales repeat across a variant's forms
def lower(
    expr: sp.Expr,
    names: tuple[str, ...],
    index_args: frozenset[str],
    out: Labels | None = None,
    options: frozenset[str] = frozenset(),
) -> Lowered:
    """Compile ``expr`` into a vectorised NumPy function of the arrays named ``names``.

    ``out`` is the labels the result must carry as its trailing dims (``(j,)`` for the class-axis
    variants, whose values are then ``(..., 1)`` and input gradients ``(..., C)``); None keeps the
    expression's own. A dummy free in ``expr`` but not in ``out`` raises ``NotImplementedError``.
    ``options`` name scalar options: a term they multiply is skipped where one is 0.
    """
    lw = _Lowerer(index_args, options)
    # Common subexpressions are computed once (error scales repeat their operands many times), those
    # holding a summation dummy too: a temporary is an array labelled like what it stands for, and
    # the same labelled array under two sums over the same dummy has the same values. Sizes stay
    # out of temporaries, so that every sum's limits keep their literal form.
    wrapped = _wrap_sums(expr)
    lw.norm_sums = _norm_sums(wrapped)
    temps, (reduced,) = sp.cse(wrapped, symbols=sp.numbered_symbols("_t"), ignore=tuple(_SIZES))
    lines = []
    for t, e in temps:
        c = lw.lower(e)
        lw.temps[t] = c.labels
        lw.temp_exprs[t] = e
        lines.append(f"    {t} = {c.src}")
    body = lw.lower(reduced)
    want = body.labels if out is None else _order(out)
    if not set(body.labels) <= set(want):
        raise NotImplementedError(f"free dummies {body.labels} of {expr} are not in the result's {want}")
    result = lw.align(body, want)
    text = "\n".join(lines) + result
    wanted = (*names, *_SIZES.values())
    unpack = "".join(f"    {n} = env[{n!r}]\n" for n in wanted if n in text)
    assigns = "".join(ln + "\n" for ln in lines)
    source = f"def _lowered(env, _flips):\n{unpack}{assigns}    return {result}\n"
    fn = _exec(source)
    full: dict[sp.Basic, sp.Basic] = {}  # each temporary in terms of the original symbols, once
    for t, e in temps:
        full[t] = e.xreplace(full)
    # margins in terms of the original symbols, not the temporaries
    switches = [_unwrap_sums(m.xreplace(full)) for m in lw.switches]
    return Lowered(expr, source, fn, tuple(switches), want)


def expand_bound_deltas(e: sp.Expr, index_args: frozenset[str]) -> sp.Expr:
    """``SoftmaxMinusDelta(x, b, a)`` with ``a`` not a class-index argument → ``Softmax - δ``, so
    that :func:`spec.derive.tidy_sums` can collapse the delta inside a class sum."""

    def match(n: sp.Basic) -> bool:
        if not isinstance(n, SoftmaxMinusDelta):
            return False
        a = n.args[2]
        return not (isinstance(a, sp.Symbol) and a.name in index_args)

    return e.replace(match, lambda n: n.expand_delta())


__all__ = ["NODES", "Lowered", "expand_bound_deltas", "lower"]
