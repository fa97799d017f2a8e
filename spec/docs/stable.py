"""The stable nodes of ``oracle._stable``, each defined once for the docs: its elementary form (the
naive form it replaces), its derivative, how the oracle lowers it, and an input where the naive form
fails in float64, with the naive float64 value, the exact value (50 digits) and the oracle's."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

#: node name -> (its arguments' values, what goes wrong there in the naive form)
COUNTEREXAMPLES: dict[str, tuple[dict[str, Any], str]] = {
    "Softplus": ({"z": 710.0}, "$e^{z}$ overflows"),
    "Sigmoid": ({"z": -710.0}, "$e^{-z}$ overflows, so $1/(1 + e^{-z})$ is 0 where the result is subnormal"),
    "LogSumExp": ({"x": [1000.0, 0.0]}, "$e^{x_i}$ overflows"),
    "Softmax": ({"x": [1000.0, 0.0], "a": 0}, "the quotient is inf / inf"),
    "NegLogSoftmax": (
        {"x": [100.0, 0.0, 0.0], "a": 0},
        "$\\log \\sum_i e^{x_i}$ rounds to $x_a$: the difference cancels to 0",
    ),
    "SoftmaxMinusDelta": (
        {"x": [40.0, 0.0, 0.0], "b": 0, "a": 0},
        "the softmax rounds to 1, and its difference with 1 cancels to 0",
    ),
    "SquareOver": ({"u": 1e200, "v": 1e300}, "$u^{2}$ overflows"),
    "LogAdd": ({"a": 1e-300, "b": 1.0}, "$a + b$ rounds to $b$, and $\\log 1 = 0$"),
}


@dataclass(frozen=True)
class Node:
    name: str
    doc: str
    call: sp.Expr  # the node applied to symbols
    elementary: sp.Expr
    derivative: sp.Expr | None  # w.r.t. its first argument (component j along an axis)
    at: dict[str, Any]
    why: str
    naive: float
    exact: float
    oracle: float


def _symbols(cls: type[sp.Function]) -> tuple[sp.Expr, dict[str, sp.Basic], frozenset[str]]:
    names = list(COUNTEREXAMPLES[cls.__name__][0])
    syms: dict[str, sp.Basic] = {}
    index: set[str] = set()
    for n in names:
        if n == "x":
            syms[n] = sp.IndexedBase("x", real=True)
        elif n in ("a", "b") and "x" in names:
            syms[n] = sp.Symbol(n, integer=True, nonnegative=True)
            index.add(n)
        else:
            syms[n] = sp.Symbol(n, real=True)
    return cls(*syms.values()), syms, frozenset(index)


def _concrete(
    e: sp.Expr, syms: dict[str, sp.Basic], at: dict[str, Any]
) -> tuple[sp.Expr, list[sp.Symbol], list[float]]:
    """``e`` at the counterexample, every number left a symbol (so SymPy folds nothing), with the
    symbols and their float64 values."""
    from spec import C

    args: list[sp.Symbol] = []
    vals: list[float] = []
    if "x" in at:
        e = e.subs(C, len(at["x"]))
    e = e.subs({syms[n]: int(v) for n, v in at.items() if n in ("a", "b") and "x" in at}).doit()
    rep: dict[sp.Basic, sp.Basic] = {}
    for n, v in at.items():
        if n == "x":
            for m, xv in enumerate(v):
                s = sp.Symbol(f"x{m}", real=True)
                rep[syms["x"][m]] = s  # type: ignore[index]
                args.append(s)
                vals.append(float(xv))
        elif not (n in ("a", "b") and "x" in at):
            rep[syms[n]] = syms[n]
            args.append(syms[n])  # type: ignore[arg-type]
            vals.append(float(v))
    return e.xreplace(rep), args, vals


def _exact(e: sp.Expr, args: list[sp.Symbol], vals: list[float]) -> float:
    """``e`` at ``vals`` in 800-digit arithmetic (enough for 1 + 1e-300 and e^1000), rounded once."""
    import mpmath

    with mpmath.workdps(800):
        return float(sp.lambdify(args, e, "mpmath")(*(mpmath.mpf(v) for v in vals)))


def nodes() -> list[Node]:
    from oracle._lower import lower
    from oracle._stable import NODES, elementary

    out = []
    for cls in NODES:
        call, syms, index = _symbols(cls)
        at, why = COUNTEREXAMPLES[cls.__name__]
        elem = elementary(call)
        naive_e, args, vals = _concrete(elem, syms, at)
        with np.errstate(all="ignore"):
            naive = float(sp.lambdify(args, naive_e, "numpy")(*(np.float64(v) for v in vals)))
        exact = _exact(naive_e, args, vals)
        env: dict[str, Any] = {}
        for n, v in at.items():
            env[n] = np.array([v]) if n == "x" else np.array([v]) if n in index else np.array(v, dtype=float)
        if "x" in at:
            env["_C"] = len(at["x"])
        got = np.asarray(lower(call, tuple(syms), index)(env))
        first = next(iter(syms.values()))
        from spec import j

        d = first[j] if isinstance(first, sp.IndexedBase) else first
        try:
            deriv = sp.diff(call, d)
        except (TypeError, ValueError, NotImplementedError):
            deriv = None
        out.append(
            Node(
                cls.__name__,
                inspect.getdoc(cls) or "",
                call,
                elem,
                deriv,
                at,
                why,
                naive,
                exact,
                float(got.reshape(-1)[0]),
            )
        )
    return out


def fails(n: Node) -> bool:
    """The naive float64 value is wrong at the counterexample: not finite, or off by more than a
    millionth of the exact value (0 where the exact value is not)."""
    if not math.isfinite(n.naive):
        return True
    return abs(n.naive - n.exact) > 1e-6 * abs(n.exact)
