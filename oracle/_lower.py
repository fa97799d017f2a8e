"""Lowering of derived SymPy expressions to vectorised NumPy functions.

``lambdify`` prints a class-axis ``Sum`` as a Python generator loop, per call and per sample. This
printer instead maps the class axis onto the last axis of the arrays:

* ``x[k]`` (``k`` a summation dummy) and ``x[j]`` (``j`` the gradient component) print as the whole
  array ``x`` of shape ``(..., C)``;
* ``x[target]`` (``target`` a class-index argument) prints as ``take_along_axis`` → ``(..., 1)``;
* ``Sum(f, (k, 0, C - 1))`` prints as ``numpy.sum(f, axis=-1, keepdims=True)``;
* ``KroneckerDelta(j, target)`` prints as the one-hot array of ``target``.

Branches (``Piecewise``, ``Max``, ``Min``) print as ``numpy.where`` on a condition that can be
flipped per element, so that the conformance harness can evaluate the other side of a branch whose
condition lies within rounding of its boundary (see ``docs/error-model.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import log1p
from sympy.printing.numpy import NumPyPrinter

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
)
from spec import C, i, k

Array = np.ndarray[Any, Any]


class _Printer(NumPyPrinter):
    def __init__(self, index_args: frozenset[str]) -> None:
        super().__init__({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})
        self.index_args = index_args
        self.switches: list[sp.Expr] = []  # the margin (signed distance to the boundary) of each branch

    # -- symbols and the class axis ---------------------------------------------------------------
    def _print_Symbol(self, s: sp.Symbol) -> str:
        return "_C" if s == C else super()._print_Symbol(s)

    def _component(self, x: sp.Basic, at: sp.Basic) -> str:
        name = self._print(x)
        if isinstance(at, sp.Symbol) and at.name in self.index_args:
            return f"_k.take({name}, {self._print(at)})"
        return name

    def _print_Indexed(self, e: sp.Indexed) -> str:
        return self._component(e.base, e.indices[0])

    def _print_IndexedBase(self, e: sp.IndexedBase) -> str:
        return str(e.label)

    def _print_Sum(self, e: sp.Sum) -> str:
        (d, lo, hi) = e.limits[0]
        if lo != 0 or hi != C - 1:
            raise NotImplementedError(f"only full class-axis sums lower: {e}")
        if not e.function.has(d):
            return f"(_C * ({self._print(e.function)}))"
        return f"numpy.sum({self._print(e.function)}, axis=-1, keepdims=True)"

    def _print_KroneckerDelta(self, e: sp.KroneckerDelta) -> str:
        a, b = e.args
        idx = [t for t in (a, b) if isinstance(t, sp.Symbol) and t.name in self.index_args]
        if len(idx) != 1:
            raise NotImplementedError(f"KroneckerDelta must pair a component with a class index: {e}")
        return f"_k.onehot({self._print(idx[0])}, _C)"

    # -- stable nodes ----------------------------------------------------------------------------
    def _print_Softplus(self, e: Softplus) -> str:
        return f"numpy.logaddexp(0.0, {self._print(e.args[0])})"

    def _print_Sigmoid(self, e: Sigmoid) -> str:
        return f"_k.sigmoid({self._print(e.args[0])})"

    def _print_LogSumExp(self, e: LogSumExp) -> str:
        return f"_k.logsumexp({self._print(e.args[0])})"

    def _print_Softmax(self, e: Softmax) -> str:
        x, a = e.args
        return self._component_of(f"_k.softmax({self._print(x)})", a)

    def _component_of(self, full: str, at: sp.Basic) -> str:
        if isinstance(at, sp.Symbol) and at.name in self.index_args:
            return f"_k.take({full}, {self._print(at)})"
        return full

    def _print_NegLogSoftmax(self, e: NegLogSoftmax) -> str:
        x, a = e.args
        return f"_k.neg_log_softmax({self._print(x)}, {self._component(x, a)})"

    def _print_SoftmaxMinusDelta(self, e: SoftmaxMinusDelta) -> str:
        x, b, a = e.args
        if not (isinstance(a, sp.Symbol) and a.name in self.index_args):
            raise NotImplementedError(f"expand SoftmaxMinusDelta over a dummy before lowering: {e}")
        return self._component_of(f"_k.softmax_minus_onehot({self._print(x)}, {self._print(a)})", b)

    def _print_SquareOver(self, e: sp.Expr) -> str:
        u, v = (self._print(a) for a in e.args)
        return f"(({u}) * (({u}) / ({v})))"

    def _print_MaxAbs(self, e: MaxAbs) -> str:
        return f"numpy.max(numpy.abs({self._print(e.args[0])}), axis=-1, keepdims=True)"

    def _print_log1p(self, e: log1p) -> str:
        return f"numpy.log1p({self._print(e.args[0])})"

    # -- branches -----------------------------------------------------------------------------------
    def _switch(self, margin: sp.Expr, cond: str, then: str, other: str) -> str:
        n = len(self.switches)
        self.switches.append(margin)
        return f"numpy.where(_k.flip(_flips, {n}, {cond}), {then}, {other})"

    def _print_Piecewise(self, e: sp.Piecewise) -> str:
        (then, cond), *rest = e.args
        other = rest[0][0] if len(rest) == 1 and rest[0][1] == sp.true else sp.Piecewise(*rest)
        if not isinstance(cond, sp.core.relational.Relational):
            raise NotImplementedError(f"Piecewise condition must be a comparison: {cond}")
        margin = cond.lhs - cond.rhs
        return self._switch(margin, self._print(cond), self._print(then), self._print(other))

    def _minmax(self, e: sp.Expr, op: str) -> str:
        a, *rest = e.args
        b = rest[0] if len(rest) == 1 else e.func(*rest)
        pa, pb = self._print(a), self._print(b)
        return self._switch(a - b, f"numpy.{op}({pa}, {pb})", pa, pb)

    def _print_Max(self, e: sp.Max) -> str:
        return self._minmax(e, "greater_equal")

    def _print_Min(self, e: sp.Min) -> str:
        return self._minmax(e, "less_equal")


_NAMESPACE = {"numpy": np, "_k": _kernels}


@dataclass(frozen=True)
class Lowered:
    """One expression as a NumPy function of named arrays, with its branch switches.

    ``fn(env, flips)`` evaluates the expression; ``flips`` maps a switch number to a boolean mask of
    elements whose branch is taken the other way. ``switches`` are the margins of the branches, in
    the same numbering, as lowered functions of ``env``.
    """

    expr: sp.Expr
    source: str
    fn: Callable[[Mapping[str, Array], Mapping[int, Array]], Array]
    switches: tuple[sp.Expr, ...]

    def __call__(self, env: Mapping[str, Array], flips: Mapping[int, Array] | None = None) -> Array:
        with np.errstate(all="ignore"):
            return self.fn(env, flips or {})

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as its source (see oracle._compile's cache)
        return (_from_source, (self.expr, self.source, self.switches))


def _exec(source: str, expr: sp.Expr) -> Callable[[Mapping[str, Array], Mapping[int, Array]], Array]:
    ns = dict(_NAMESPACE)
    exec(compile(source, f"<lowered {expr}>"[:80], "exec"), ns)
    return ns["_lowered"]  # type: ignore[return-value]


def _from_source(expr: sp.Expr, source: str, switches: tuple[sp.Expr, ...]) -> Lowered:
    return Lowered(expr, source, _exec(source, expr), switches)


def lower(expr: sp.Expr, names: tuple[str, ...], index_args: frozenset[str]) -> Lowered:
    """Compile ``expr`` into a vectorised NumPy function of the arrays named ``names``."""
    printer = _Printer(index_args)
    # Common subexpressions are computed once (error scales repeat their operands many times).
    # Subexpressions with a summation dummy (or the class count of its limits) stay in their Sum.
    temps, (reduced,) = sp.cse(expr, symbols=sp.numbered_symbols("_t"), ignore=(k, i, C))
    lines = [f"    {t} = {printer.doprint(e)}" for t, e in temps]
    body = printer.doprint(reduced)
    text = "\n".join(lines) + body
    unpack = "".join(f"    {n} = env[{n!r}]\n" for n in (*names, "_C") if n in text or n == "_C")
    assigns = "".join(ln + "\n" for ln in lines)
    source = f"def _lowered(env, _flips):\n{unpack}{assigns}    return {body}\n"
    fn = _exec(source, expr)
    switches = []
    for m in printer.switches:  # margins in terms of the original symbols, not the temporaries
        for t, e in reversed(temps):
            m = m.xreplace({t: e})
        switches.append(m)
    return Lowered(expr, source, fn, tuple(switches))


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
