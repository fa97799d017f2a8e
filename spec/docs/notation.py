"""How the docs typeset the spec: the symbol for each torch argument name, a LaTeX printer with
those symbols and readable constants, and the docstrings' reST turned into GitHub Markdown."""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction

import sympy as sp
from sympy.printing.latex import LatexPrinter

from spec._core import Arg, Param, Variant

#: torch argument name -> the symbol a reader expects (the docstrings' own notation). A target
#: along the class axis (class probabilities) is t; a class index or an element target is y.
SYMBOLS: dict[str, str] = {
    "input": "x",
    "target": "y",
    "weight": "w",
    "pos_weight": "p_w",
    "beta": r"\beta",
    "delta": r"\delta",
    "eps": r"\epsilon",
    "label_smoothing": r"\varepsilon",
    "margin": "m",
    "p": "p",
    "var": "v",
    "input1": "x_1",
    "input2": "x_2",
    "anchor": "a",
    "positive": "x_+",
    "negative": "x_-",
    "ignore_index": r"c_{\mathrm{ign}}",
    "log_target": r"\mathrm{log\_target}",
    "log_input": r"\mathrm{log\_input}",
    "full": r"\mathrm{full}",
    "swap": r"\mathrm{swap}",
}
#: a target along the class axis
CLASS_TARGET = "t"


def symbol(v: Variant, name: str) -> str:
    """The LaTeX symbol of argument or option ``name`` in variant ``v``."""
    if name == "target" and any(a.name == "target" and a.axis in ("class", "feature") for a in v.args):
        return CLASS_TARGET
    if name in SYMBOLS:
        return SYMBOLS[name]
    return r"\mathrm{" + name.replace("_", r"\_") + "}"


def symbol_names(v: Variant) -> dict[sp.Basic, str]:
    """SymPy object -> LaTeX, for ``sp.latex(..., symbol_names=...)``: each argument's symbol (an
    IndexedBase's label too, which is what its components print)."""
    out: dict[sp.Basic, str] = {}
    for name, s in v.symbols.items():
        out[s] = symbol(v, name)
        if isinstance(s, sp.IndexedBase):
            out[s.label] = symbol(v, name)
    return out


def decimal(x: float) -> str:
    """A float in LaTeX: its shortest repr, a power of ten as ``\\cdot 10^{e}``."""
    r = repr(float(x))
    if "e" in r:
        m, e = r.split("e")
        return rf"{m} \cdot 10^{{{int(e)}}}"
    return r


def _power_of_ten(n: int) -> int | None:
    """k where n = 10^k, else None."""
    k = len(str(n)) - 1
    return k if n > 0 and n == 10**k else None


class _Printer(LatexPrinter):
    """sympy's LaTeX printer, but a rational with a large denominator that is a float exactly (the
    spec's ``float32(1e-12)``, written as the exact rational of that float) prints as that float's
    decimal, and a KroneckerDelta as ``[a = b]``-style δ with a comma."""

    def _print_Integer(self, expr: sp.Integer) -> str:
        k = _power_of_ten(abs(int(expr)))
        if k is not None and k >= 4:
            return ("-" if expr < 0 else "") + f"10^{{{k}}}"
        return str(expr)

    def _print_Rational(self, expr: sp.Rational) -> str:
        k = _power_of_ten(int(expr.q))
        if abs(int(expr.p)) == 1 and k is not None and k >= 4:
            return ("-" if expr.p < 0 else "") + f"10^{{-{k}}}"
        if expr.q > 10**6:
            f = float(expr)
            if Fraction(f) == Fraction(int(expr.p), int(expr.q)):
                return decimal(f)
        return super()._print_Rational(expr)

    def _print_root(self, expr: sp.Function, exp: object = None) -> str:
        s, p = (self._print(x) for x in expr.args)
        out = rf"\sqrt[{p}]{{{s}}}"
        return rf"\left({out}\right)^{{{exp}}}" if exp else out

    def _print_hinge(self, expr: sp.Function, exp: object = None) -> str:
        out = rf"\left[{self._print(expr.args[0])}\right]_{{+}}"
        return rf"{out}^{{{exp}}}" if exp else out

    def _print_clamped(self, expr: sp.Function, exp: object = None) -> str:
        v, lo = (self._print(x) for x in expr.args)
        out = rf"\operatorname{{clamp}}_{{\ge {lo}}}\left({v}\right)"
        return rf"\left({out}\right)^{{{exp}}}" if exp else out

    def _print_KroneckerDelta(self, expr: sp.KroneckerDelta, exp: object = None) -> str:
        a, b = (self._print(x) for x in expr.args)
        out = rf"\delta_{{{a},{b}}}"
        return rf"\left({out}\right)^{{{exp}}}" if exp else out


def tex(e: sp.Basic, v: Variant, extra: Mapping[sp.Basic, str] | None = None) -> str:
    """``e`` in LaTeX with the variant's symbols."""
    names = symbol_names(v)
    if extra:
        names.update(extra)
    return _Printer({"symbol_names": names}).doprint(e)


def domain_tex(s: sp.Set) -> str:
    return _Printer().doprint(s)


def arg_domain(a: Arg) -> str:
    return a.domain.doc


def param_domain(p: Param) -> str:
    if p.kind == "flag":
        return "True or False"
    if p.kind == "choice":
        return "one of " + ", ".join(str(c) for c in p.choices)
    return "$" + domain_tex(p.domain) + "$"


_MATH = re.compile(r"^(?P<indent>\s*)\.\. math::\s*(?P<first>.*)$")
_ROLE = re.compile(r":(?:func|class|data|mod|meth|attr):`~?([^`]+)`")
_INLINE_MATH = re.compile(r":math:`([^`]+)`")


def rst_to_markdown(doc: str) -> str:
    """A spec docstring (reST) as GitHub Markdown: ``.. math::`` blocks (with their indented
    continuation lines) become ``$$`` blocks, ``:math:`x``` inline ``$x$``, double backticks single,
    cross-reference roles their target in code."""
    lines = doc.splitlines()
    out: list[str] = []
    n = 0
    while n < len(lines):
        m = _MATH.match(lines[n])
        if m:
            indent = len(m.group("indent"))
            body = [m.group("first").strip()]
            n += 1
            while n < len(lines) and lines[n].strip() and len(lines[n]) - len(lines[n].lstrip()) > indent:
                body.append(lines[n].strip())
                n += 1
            out += ["", "$$", " ".join(b for b in body if b), "$$", ""]
            continue
        line = _INLINE_MATH.sub(lambda g: f"${g.group(1)}$", lines[n])
        line = _ROLE.sub(lambda g: f"`{g.group(1)}`", line)
        line = line.replace("``", "`")
        out.append(line)
        n += 1
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
