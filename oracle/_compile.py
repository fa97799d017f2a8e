"""Derive, stabilise and lower each variant: once per process, and once per machine.

Deriving, building error scales and lowering all variants takes about 1.3 s, paid by every pytest
process (every xdist worker too). The result is kept in a disk cache keyed by a hash of the sources
of ``spec/`` and ``oracle/`` and the SymPy and Python versions (so it cannot go stale), under
``$LOSS_CONFORMANCE_CACHE`` or ``~/.cache/loss-conformance``; a missing, unreadable or unwritable
cache only means deriving again. ``functools.cache`` keeps one copy per process.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import sympy as sp

from oracle._errscale import scale
from oracle._lower import Lowered, exact_boundary, expand_bound_deltas, lower
from oracle._stable import stabilize
from spec import Variant, j
from spec.derive import ClosedForms, derive, tidy_sums, variant_by_key, wrt


@dataclass(frozen=True)
class Switch:
    """A branch of a lowered expression: its margin (0 on the boundary) and the margin's scale."""

    margin: Lowered
    scale: Lowered
    #: where the margin's 0 is exact (``oracle._lower.exact_boundary``): no rounding can flip it
    exact: Lowered | None = None


@dataclass(frozen=True)
class Form:
    """One closed form, lowered, with its error scale and branch switches."""

    fn: Lowered
    scale: Lowered
    switches: tuple[Switch, ...]
    #: for each branch of the scale expression itself (a step's factor in a product is 0 or 1),
    #: the number of ``fn``'s branch on the same condition, or -1: a branch of ``fn`` flipped near
    #: its boundary flips the same condition in the scale too
    scale_map: tuple[int, ...] = ()


@dataclass(frozen=True)
class Compiled:
    """A variant's lowered forms: what evaluating it needs, and no SymPy expression (the disk
    cache's copy of a ``Lowered`` is its source; see there)."""

    key: str
    value: Form
    grads: Mapping[str, Form]
    mean_weight: Lowered
    #: ∂(mean_weight)/∂a for each differentiable argument the mean's weights depend on
    mean_weight_grads: Mapping[str, Lowered]

    @property
    def variant(self) -> Variant:
        return variant_by_key(self.key)


def _names(v: Variant) -> tuple[str, ...]:
    return (*(a.name for a in v.args), *(p.name for p in v.params), "_underflow")


def _index_args(v: Variant) -> frozenset[str]:
    return frozenset(n for n, r in v.roles.items() if r.role == "index")


def stable_forms(v: Variant) -> ClosedForms:
    """The variant's closed forms derived from its stable rewrite (what the oracle evaluates)."""
    idx = _index_args(v)

    def transform(e: sp.Expr) -> sp.Expr:
        return tidy_sums(expand_bound_deltas(stabilize(e), idx))

    return derive(v, transform)


def _out(v: Variant) -> tuple[sp.Symbol, ...]:
    """The labelled dims of every result: ``(j,)`` for class-axis variants (values ``(..., 1)``,
    gradients w.r.t. class-axis arguments ``(..., C)``), none for element-wise ones."""
    return (j,) if v.sample_axis is not None else ()


def _distribute_small(e: sp.Expr) -> sp.Expr:
    """Undo what ``factor_terms`` does with a coefficient below 1: ``½·(x(1 + y) + (1 - y)·m)``
    overflows where its terms, each halved, do not (hinge_embedding_loss at x = -9e307), so such a
    coefficient goes back onto each term (exactly, for ½^k)."""

    def small(m: sp.Basic) -> bool:
        return (
            isinstance(m, sp.Mul)
            and m.args[0].is_Rational
            and abs(m.args[0]) < 1
            and any(isinstance(f, sp.Add) for f in m.args[1:])
        )

    def spread(m: sp.Mul) -> sp.Expr:
        c, *rest = m.args
        add = next(f for f in rest if isinstance(f, sp.Add))
        others = [f for f in rest if f is not add]
        return sp.Mul(*others) * sp.Add(*(c * t for t in add.args))

    return e.replace(small, spread)


def _decisions(e: sp.Expr) -> dict[sp.Expr, sp.Expr]:
    """The error scale of each Min/Max decision in ``e``, by its margin ``a - b`` (either sign):
    the two sides' errors, each side rounded on its own. SymPy's ``a - b`` may have cancelled what
    the two sides share (``(1 - x) - (1 - y) = y - x``, two cosine distances), so its own scale
    would miss the roundings that can make the sides tie."""
    out: dict[sp.Expr, sp.Expr] = {}
    for m in e.atoms(sp.Min, sp.Max):
        a, *rest = m.args
        b = rest[0] if len(rest) == 1 else m.func(*rest)
        s = scale(a) + scale(b)
        for z in (a - b, b - a):  # as written, and as _form's factor_terms leaves it (either sign)
            out[z] = out[sp.factor_terms(z)] = out[-sp.factor_terms(-z)] = out[sp.expand_mul(z)] = s
    return out


def _decision_scale(decisions: dict[sp.Expr, sp.Expr], m: sp.Expr) -> sp.Expr:
    if m in decisions:
        return decisions[m]
    return decisions.get(sp.expand_mul(m), scale(m)) if decisions else scale(m)


def _form(
    e: sp.Expr,
    names: tuple[str, ...],
    idx: frozenset[str],
    out: tuple[sp.Symbol, ...],
    decisions: dict[sp.Expr, sp.Expr] | None = None,
    options: frozenset[str] = frozenset(),
) -> Form:
    # Pull common numeric factors out of sums: SymPy distributes 2·(x - y) into 2x - 2y, which
    # overflows (inf - inf) where x - y does not.
    e = _distribute_small(sp.factor_terms(e))
    fn = lower(e, names, idx, out, options)
    decisions = decisions or {}
    switches = tuple(
        Switch(
            lower(m, names, idx),
            lower(_decision_scale(decisions, m), names, idx),
            None if (ex := exact_boundary(m)) is None else lower(ex, names, idx),
        )
        for m in fn.switches or ()
    )
    sc = lower(scale(e), names, idx, out)
    # only the scale's branches on the same conditions as fn's (the others are the scale's own
    # case splits, not decisions a rounding can flip)
    known = {_canon(m): n for n, m in enumerate(fn.switches or ())}
    return Form(fn, sc, switches, tuple(known.get(_canon(m), -1) for m in sc.switches or ()))


def _canon(e: sp.Expr) -> sp.Expr:
    """``e`` with the sign inside each even power made canonical: SymPy writes the same
    ``(p - n)^2`` as ``(n - p)^2`` once it rebuilds it (the error scale's copy of a condition),"""
    return sp.expand_mul(  # and its products distributed (-(a - b)/n and (b - a)/n are one)
        e.replace(
            lambda x: x.is_Pow and x.exp.is_even and x.base.could_extract_minus_sign(),
            lambda x: sp.Pow(-x.base, x.exp),
        )
    )


@cache
def _cache_dir() -> Path:
    h = hashlib.sha256(f"{sp.__version__} {sys.version}".encode())
    root = Path(__file__).resolve().parent.parent
    for pkg in ("spec", "oracle"):
        for f in sorted((root / pkg).glob("*.py")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    base = Path(os.environ.get("LOSS_CONFORMANCE_CACHE") or Path.home() / ".cache" / "loss-conformance")
    return base / h.hexdigest()[:20]


@cache
def compiled(key: str) -> Compiled:
    path = _cache_dir() / f"{key}.pickle"
    got = load_entry(path)
    if isinstance(got, Compiled) and got.key == key:
        return got
    c = _build(key)
    store_entry(path, c)
    return c


def load_entry(path: Path) -> Any:
    """A cache entry's object, or None where there is none or it cannot be read (rebuilt)."""
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except Exception:
        return None


def store_entry(path: Path, obj: Any) -> None:
    """Write a cache entry atomically (concurrent workers never read a partial file); an unwritable
    cache only means computing again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(obj, f)
        tmp.replace(path)
    except OSError:
        pass


def _build(key: str) -> Compiled:
    v = variant_by_key(key)
    forms = stable_forms(v)
    names, idx, out = _names(v), _index_args(v), _out(v)
    decisions = _decisions(forms.value)
    options = frozenset(p.name for p in v.params if p.kind not in ("flag", "choice") and not p.integer)
    return Compiled(
        key=key,
        value=_form(forms.value, names, idx, out, decisions, options),
        grads={n: _form(g, names, idx, out, decisions, options) for n, g in forms.grads.items()},
        mean_weight=lower(v.mean_weight, names, idx, out),
        mean_weight_grads={
            n: lower(dm, names, idx, out)
            for n in v.differentiable
            if (dm := sp.diff(v.mean_weight, wrt(v, n))) != 0
        },
    )
