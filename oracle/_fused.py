"""One compiled pass per chunk for the element-wise losses: the value and every gradient together.

The NumPy evaluation of a lowered form (``oracle._lower``) makes a pass over the arrays for each
operation, and each form is evaluated apart: at 10^7 elements that is tens of passes over 80 MB
arrays, two to four times torch's time. Here the forms of one variant, as lowered (the same
source text, the same operations in the same order), are flattened into one scalar function per
element, compiled by Numba and run as one loop over a chunk: it reads each input once and writes
the value and the gradients (already times the upstream factor and over the mean's denominator,
as ``oracle.api._evaluate`` does it) once.

It is the NumPy evaluation made one pass, not a second oracle: a chunk is given back to the NumPy
path, whole, wherever that path would do something else than evaluate the forms in float64 —
where any intermediate is infinite (the NumPy path then redoes a chunk in extended precision if an
operation overflowed) or a result is not finite. What differs is only the implementation of the
elementary functions (NumPy's SIMD loops against the C library's ``exp``, ``log``, ``log1p``:
each correctly rounded to within an ulp); ``tests/test_fused.py`` measures the difference against
the NumPy path and against mpmath.

Only the operations the element-wise losses lower to are known here; a form that uses another has
no kernel (:func:`kernel` returns None) and is evaluated by NumPy.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Callable, Sequence

#: lowered calls -> the scalar function that evaluates them here (``oracle._kernels``' meaning)
_CALLS = {
    "numpy.where": "_where",
    "numpy.log": "numpy.log",
    "numpy.log1p": "numpy.log1p",
    "numpy.exp": "numpy.exp",
    "numpy.expm1": "numpy.expm1",
    "numpy.abs": "numpy.abs",
    "numpy.sign": "numpy.sign",
    "numpy.maximum": "numpy.maximum",
    "numpy.minimum": "numpy.minimum",
    "numpy.tanh": "numpy.tanh",
    "numpy.float64": "numpy.float64",
    "numpy.greater": "numpy.greater",
    "numpy.greater_equal": "numpy.greater_equal",
    "numpy.less": "numpy.less",
    "numpy.less_equal": "numpy.less_equal",
    "numpy.equal": "numpy.equal",
    "numpy.not_equal": "numpy.not_equal",
    "_k.softplus": "_softplus",
    "_k.sigmoid": "_sigmoid",
    "_k.log_add": "_log_add",
    "_k.xlogy": "_xlogy",
    "_k.add": "_add",
}
#: calls whose result is a truth value (not checked for infinity)
_BOOLEAN = {
    "numpy.greater",
    "numpy.greater_equal",
    "numpy.less",
    "numpy.less_equal",
    "numpy.equal",
    "numpy.not_equal",
}

#: the scalar helpers, as ``oracle._kernels`` defines them (``numpy.logaddexp`` is NumPy's own
#: ``softplus``; ``sigmoid``, ``log_add``, ``xlogy`` and the compensated ``add`` the same steps)
_HELPERS = """
@numba.njit(inline="always", error_model="numpy")
def _where(c, a, b):
    return a if c else b


@numba.njit(inline="always", error_model="numpy")
def _softplus(z):
    return numpy.logaddexp(0.0, z)


@numba.njit(inline="always", error_model="numpy")
def _sigmoid(z):
    e = numpy.exp(-numpy.abs(z))
    return 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)


@numba.njit(inline="always", error_model="numpy")
def _log_add(a, b):
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    if numpy.isfinite(s) and s != 0:
        return numpy.log(s) + e / s
    return numpy.log(s)


@numba.njit(inline="always", error_model="numpy")
def _xlogy(x, y):
    return 0.0 if x == 0 else x * numpy.log(y)
"""


def _add_source(k: int) -> str:
    """``oracle._kernels.add`` of ``k`` terms as an inlined scalar function ``_add{k}``."""
    from oracle._kernels import add_source

    return '@numba.njit(inline="always", error_model="numpy")\n' + add_source(k, f"_add{k}")


class Unsupported(Exception):
    """The lowered form uses an operation this module does not evaluate."""


#: calls that make no infinity of finite operands (NumPy raises no overflow in them): ``log`` and
#: ``log1p`` give one only at 0 (a division by zero), the others select or bound
_NO_OVERFLOW = {
    "numpy.log",
    "numpy.log1p",
    "_where",
    "numpy.abs",
    "numpy.sign",
    "numpy.maximum",
    "numpy.minimum",
    "numpy.tanh",
    "numpy.float64",
    "_sigmoid",
    "_softplus",
}


class _Flattener:
    """A lowered form's body as single-operation assignments. An operation whose result is infinite
    although its operands are finite (an overflow: NumPy's flag, which makes the NumPy path redo a
    chunk in extended precision; not a division by zero) sets ``_bad``."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = {n: n for n in names}
        self.rename: dict[str, str] = {}  # a form's names -> the loop's (its temporaries' unique ones)
        self.memo: dict[str, str] = {}  # an expression of the loop's names -> the name holding it
        self.lines: list[str] = []
        self.adds: set[int] = set()
        self._n = itertools.count()

    def emit(self, expr: str, operands: Sequence[str] | None = None) -> str:
        """``expr`` assigned to a new name; checked for overflow of ``operands`` (None: not checked).
        An expression already assigned (by this form or an earlier one: the forms of a variant share
        their subexpressions) is not computed again."""
        hit = self.memo.get(expr)
        if hit is not None:
            return hit
        name = self.memo[expr] = f"_s{next(self._n)}"
        self.lines.append(f"{name} = {expr}")
        if operands is not None:
            finite = "".join(f" and numpy.isfinite({o})" for o in operands if o.isidentifier())
            self.lines.append(f"_bad |= numpy.isinf({name}){finite}")
        return name

    def flat(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool)):
            return repr(node.value)
        if isinstance(node, ast.Name):
            if node.id not in self.rename:
                raise Unsupported(f"name {node.id}")
            return self.rename[node.id]
        if isinstance(node, ast.BinOp):
            op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}.get(type(node.op))
            if op is None:
                raise Unsupported(ast.dump(node.op))
            a, b = self.flat(node.left), self.flat(node.right)
            name = self.emit(f"{a} {op} {b}", [a, b])
            if op == "/":  # (x/0 = inf is a division by zero, not an overflow)
                self.lines[-1] += f" and {b} != 0"
            return name
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = self.flat(node.operand)
            return f"-{operand}" if operand[0].isdigit() else self.emit(f"-{operand}")
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            op = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}.get(
                type(node.ops[0])
            )
            if op is None:
                raise Unsupported(ast.dump(node))
            return self.emit(f"{self.flat(node.left)} {op} {self.flat(node.comparators[0])}")
        if isinstance(node, ast.IfExp):  # (on scalar options: the side taken alone, as Python does)
            test = self.flat(node.test)
            name = f"_s{next(self._n)}"
            outer, memo = self.lines, dict(self.memo)  # (what a side assigns is not seen after it)
            self.lines = []
            a = self.flat(node.body)
            body, self.lines, self.memo = self.lines, [], dict(memo)
            b = self.flat(node.orelse)
            orelse, self.lines, self.memo = self.lines, outer, memo
            self.lines.append(
                f"if {test}:\n"
                + "".join("    " + ln.replace("\n", "\n    ") + "\n" for ln in body)
                + f"    {name} = {a}\nelse:\n"
                + "".join("    " + ln.replace("\n", "\n    ") + "\n" for ln in orelse)
                + f"    {name} = {b}"
            )
            return name
        if isinstance(node, ast.Call) and not node.keywords:
            fname = ast.unparse(node.func)
            if fname == "_k.flip":  # no branch is flipped here: the condition itself
                return self.flat(node.args[2])
            target = _CALLS.get(fname)
            if target is None:
                raise Unsupported(fname)
            args = [self.flat(a) for a in node.args]
            checked = None if fname in _BOOLEAN or target in _NO_OVERFLOW else args
            if target == "_add":
                self.adds.add(len(args))
                target = f"_add{len(args)}"
            return self.emit(f"{target}({', '.join(args)})", checked)
        raise Unsupported(ast.dump(node))

    def form(self, source: str) -> str:
        """Flatten a lowered function's source (``def _lowered(env, _flips): ...``); its result's name."""
        (fn,) = ast.parse(source).body
        assert isinstance(fn, ast.FunctionDef)
        self.rename = dict(self.names)
        for stmt in fn.body:
            if isinstance(stmt, ast.Assign):
                (target,) = stmt.targets
                assert isinstance(target, ast.Name)
                if isinstance(stmt.value, ast.Subscript):  # ``x = env['x']``: the loop's scalar
                    continue
                self.rename[target.id] = self.flat(stmt.value)
            elif isinstance(stmt, ast.Return) and stmt.value is not None:
                return self.flat(stmt.value)
            else:
                raise Unsupported(ast.dump(stmt))
        raise Unsupported("no return")


def _kernel_source(
    forms: Sequence[str], arrays: Sequence[str], scalars: Sequence[str], f_array: bool, summed: bool
) -> str:
    """The source of ``run(*arrays, *scalars, f, denom, n, out_value, *out_grads)`` (see :func:`kernel`)."""
    fl = _Flattener((*arrays, *scalars))
    results = [fl.form(src) for src in forms]
    body, adds = fl.lines, fl.adds
    outs = [f"_out{i}" for i in range(len(forms))]
    params = [f"_a_{a}" for a in arrays] + list(scalars) + ["_f", "_denom", "_n", *outs]
    inner = ["_fi = _f[_i]" if f_array else "_fi = _f"]
    inner += [f"{a} = _a_{a}[_i]" for a in arrays]
    inner += ["_bad = False", *body]
    # a result that is not finite: the NumPy path redoes the chunk in extended precision
    inner += [f"_bad |= not numpy.isfinite({r})" for r in results]
    inner += ["if _bad:\n    return False, 0.0, 0.0"]
    if summed:  # Neumaier's compensated sum
        inner += [
            f"_v = {results[0]}",
            "_t = _sum + _v",
            "if numpy.abs(_sum) >= numpy.abs(_v):\n    _comp += (_sum - _t) + _v",
            "else:\n    _comp += (_v - _t) + _sum",
            "_sum = _t",
        ]
    else:
        inner += [f"_out0[_i] = {results[0]}"]
    # each gradient times the upstream factor, over the denominator (as oracle.api does it)
    for i, r in enumerate(results[1:], start=1):
        inner += [f"_g = {r} * _fi", f"_out{i}[_i] = _g / _denom"]
    return "\n".join(
        [
            "import numba",
            "import numpy",
            _HELPERS,
            *(_add_source(k) for k in sorted(adds)),
            '@numba.njit(nogil=True, error_model="numpy", cache=True)',
            f"def run({', '.join(params)}):",
            "    _sum = 0.0",
            "    _comp = 0.0",
            "    for _i in range(_n):",
            *("\n".join("        " + ln for ln in line.split("\n")) for line in inner),
            "    return True, _sum, _comp",
            "",
        ]
    )


@functools.cache
def kernel(
    forms: tuple[str, ...], arrays: tuple[str, ...], scalars: tuple[str, ...], f_array: bool, summed: bool
) -> Callable[..., tuple[bool, float, float]] | None:
    """The compiled pass over a chunk for the lowered ``forms`` (the value's first, then the
    gradients'): ``run(*arrays, *scalars, f, denom, n, out_value, *out_grads) -> (ok, sum, err)``.
    The ``arrays`` are contiguous float64 arrays of the chunk's ``n`` elements (flat), the
    ``scalars`` numbers, ``f`` the upstream factor (an array like them where ``f_array``, else a
    number); each gradient is written times ``f`` over ``denom``. The values are written to
    ``out_value``, or, where ``summed``, added up (compensated: ``sum + err``; ``out_value`` unused).
    ``ok`` False: an element is left to the NumPy path (the outputs are partly written).

    None where a form uses an operation not known here. Compiled once per machine (Numba's cache,
    beside the source in the project's cache directory)."""
    from oracle._kernels import _module_function

    try:
        source = _kernel_source(forms, arrays, scalars, f_array, summed)
    except Unsupported:
        return None
    return _module_function("fused", source, "run")  # type: ignore[no-any-return]
