"""The records a loss is written in: domains, arguments, options, conventions, variants.

A loss is a Python function decorated with :func:`loss`. The decorator builds SymPy symbols for the
loss's tensor arguments and scalar options, calls the function once to obtain the per-element (or
per-sample) expression, and stores a :class:`Variant` in the registry. Nothing here knows about
NumPy, torch or tolerances: those live in ``oracle/`` and ``conformance/``.

Symbols and axes
----------------
* ``element`` arguments are scalars of the element-wise formula (``input``, ``target`` of L1/MSE/BCE,
  and ``weight`` / ``pos_weight`` which broadcast against them).
* ``class`` arguments are vectors along the class axis, written as ``sp.IndexedBase``: ``x[k]``.
  The class count is the symbol :data:`C`, summation dummies are :data:`k` and :data:`i`, and a gradient
  with respect to a class argument is taken at the free component :data:`j`.
* ``index`` arguments are class indices, one per sample (``cross_entropy``'s class-index target).
"""

from __future__ import annotations

import functools
import inspect
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import sympy as sp
from mpmath.libmp import prec_to_dps

# Class-axis symbols shared by every loss that reduces over classes.
C = sp.Symbol("C", integer=True, positive=True)
k = sp.Symbol("k", integer=True, nonnegative=True)
i = sp.Symbol("i", integer=True, nonnegative=True)
j = sp.Symbol("j", integer=True, nonnegative=True)
#: the component a Hessian-vector product contracts over: Σ_l ∂²ℓ/∂x_j∂x_l · v_l
l = sp.Symbol("l", integer=True, nonnegative=True)  # noqa: E741

Axis = Literal["element", "class", "feature", "index", "index_set"]


@dataclass(frozen=True)
class NamedAxis:
    """An axis a loss reduces over inside a sample: its name, its size symbol, and the summation
    dummies written along it (each a distinct index, so ``Σ_i Σ_k x_i x_k`` is a double sum). An
    argument with this axis holds it as its last array dim; the oracle's lowering labels every
    array dim with the dummy that indexes it (``oracle._lower``)."""

    name: str
    size: sp.Symbol
    dummies: tuple[sp.Symbol, ...]


#: the class axis of multi-class losses (dim 1 of (N, C, d1, ...) in torch; dim 0 of (C))
CLASS_AXIS = NamedAxis("class", C, (k, i, j, l))
#: the feature axis of embedding losses (cosine_embedding_loss, triplet_margin_loss): the last dim
#: of (N, D) or (D). A sample reduces over one axis, so it is written with the same size symbol and
#: dummies as the class axis (the lowering treats both alike); only its name differs.
FEATURE_AXIS = NamedAxis("feature", C, (k, i, j, l))
#: every named axis, in the canonical order the lowering sorts labelled dims in (the feature axis
#: shares the class axis's symbols)
NAMED_AXES: tuple[NamedAxis, ...] = (CLASS_AXIS,)
Reduction = Literal["none", "mean", "sum", "batchmean"]


@dataclass(frozen=True)
class ReductionRule:
    """What ``reduction=<name>`` does with the per-sample losses ℓ (the batch shape), written once:
    the oracle computes it and the suite's reduction-consistency check divides by the same thing.

    ``divides_by``: None keeps ℓ unreduced; ``"one"`` is Σ ℓ; ``"mean_weight"`` is Σ ℓ / Σ m, with
    m the variant's ``mean_weight`` over the samples that count (1 for each element: their count;
    ``weight[target]`` for class-index cross_entropy), NaN where that sum is 0; ``"batch"`` is
    Σ ℓ / input.size(0) (kl_div's batchmean).
    """

    name: Reduction
    divides_by: Literal["one", "mean_weight", "batch"] | None
    doc: str


REDUCTION_RULES: dict[str, ReductionRule] = {
    r.name: r
    for r in (
        ReductionRule("none", None, "the per-sample losses, in the batch shape"),
        ReductionRule("mean", "mean_weight", "Σ ℓ / Σ m (m: the variant's mean_weight)"),
        ReductionRule("sum", "one", "Σ ℓ"),
        ReductionRule("batchmean", "batch", "Σ ℓ / input.size(0)"),
    )
}
#: the reductions every loss takes (torch's ``reduction=`` of every loss); a variant may add more
REDUCTIONS: tuple[Reduction, ...] = ("none", "mean", "sum")

#: PyTorch's EPSILON in its loss kernels is the float32 literal 1e-12, in every dtype (float64
#: included): float32(1e-12) = 9.999999960041972e-13. Written as the exact rational of that float.
_EPS_F32 = struct.unpack("f", struct.pack("f", 1e-12))[0]  # 9.999999960041972e-13
EPSILON_F32_1E12 = sp.Rational(*_EPS_F32.as_integer_ratio())


@dataclass(frozen=True)
class Domain:
    """Where an argument's values live. ``kind`` is what input generators dispatch on."""

    kind: Literal[
        "real", "unit", "nonnegative", "positive", "class_index", "probabilities", "sign", "log_probability"
    ]
    interval: sp.Set
    doc: str


REAL = Domain("real", sp.Reals, "any finite real")
UNIT = Domain("unit", sp.Interval(0, 1), "a probability in [0, 1]")
NONNEGATIVE = Domain("nonnegative", sp.Interval(0, sp.oo), "a real >= 0")
POSITIVE = Domain("positive", sp.Interval.open(0, sp.oo), "a real > 0")
CLASS_INDEX = Domain("class_index", sp.Range(0, sp.oo), "an integer class index in [0, C)")
PROBABILITIES = Domain("probabilities", sp.Interval(0, 1), "class probabilities (not required to sum to 1)")
SIGN = Domain("sign", sp.FiniteSet(-1, 1), "a label in {-1, 1} (as documented; torch does not check it)")
LOG_PROBABILITY = Domain("log_probability", sp.Interval(-sp.oo, 0), "a log-probability, <= 0 (not checked)")


class xlogy(sp.Function):
    """``xlogy(x, y) = x·log(y)``, and 0 where ``x = 0`` whatever ``y`` is (``torch.xlogy``,
    ``scipy.special.xlogy``): kl_div's ``y log y`` is 0 at ``y = 0``. Its derivatives are those of
    ``x log y``: ``∂/∂x = log y``, ``∂/∂y = x / y`` (so ``d/dy xlogy(y, y) = log y + 1``, -inf at 0)."""

    nargs = 2

    @classmethod
    def eval(cls, x: sp.Expr, y: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.S.Zero
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x, y = self.args
        return sp.log(y) if argindex == 1 else x / y

    def _eval_is_real(self) -> bool | None:
        return None

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        x, y = self.args
        if not (x.is_number and y.is_number):
            return None
        return sp.S.Zero if x == 0 else (x * sp.log(y)).evalf(prec_to_dps(prec))

    def _eval_rewrite_as_log(self, x: sp.Expr, y: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.Piecewise((0, sp.Eq(x, 0)), (x * sp.log(y), True))


class hinge(sp.Function):
    """``hinge(v, h0) = max(0, v)``, with its derivative at the kink stated: ``Heaviside(v, h0)``.
    ``h0 = 1`` is torch's ``clamp_min(v, 0)`` (the gradient passes at v = 0: cosine, triplet);
    ``h0 = 0`` the margin kernels' ``if (z > 0)`` (LossMultiMargin.cpp, LossMultiLabelMargin.cpp).
    A function, not a ``Piecewise``: SymPy folds a Piecewise out of a nested sum, or into the
    conditions of another Piecewise, which the spec must not depend on."""

    nargs = 2

    @classmethod
    def eval(cls, v: sp.Expr, h0: sp.Expr) -> sp.Expr | None:
        if h0 not in (0, 1):
            raise ValueError(f"hinge: the derivative at the kink must be 0 or 1, got {h0}")
        if v.is_number:
            return sp.Max(0, v)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        v, h0 = self.args
        return sp.Heaviside(v, h0)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real  # type: ignore[no-any-return]

    def _eval_rewrite_as_Max(self, v: sp.Expr, h0: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.Max(0, v)


class root(sp.Function):
    """``root(s, p) = s^(1/p)`` for ``s >= 0`` (a p-norm from its sum of powers), with torch's
    gradient convention at ``s = 0``: 0 (aten ``norm_backward`` masks a zero norm), where the plain
    derivative ``s^(1/p - 1)/p`` is infinite (and 0·inf a NaN)."""

    nargs = 2

    @classmethod
    def eval(cls, s: sp.Expr, p: sp.Expr) -> sp.Expr | None:
        if s.is_number and p.is_number:
            return s ** (1 / p)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        s, p = self.args
        if argindex == 1:
            return sp.Piecewise((s ** (1 / p - 1) / p, s > 0), (0, True))
        return -self * sp.log(s) / p**2

    def _eval_is_real(self) -> bool | None:
        return None


class clamped(sp.Function):
    """``clamped(v, lo) = max(v, lo)`` as a value, with the derivative of ``v`` everywhere: torch
    clamps a norm in place under ``no_grad`` (``F.cosine_similarity``'s ``x_norm.clamp_min_(eps)``,
    aten ``cosine_similarity``), so the value is clamped and the gradient flows as if it were not
    (measured on 2.13.0: ``cosine_similarity([1e-9, 0, 0], [1, 1, 0])`` gives d/dx0 = 6.36e7, not
    the 7.07e7 of a constant eps)."""

    nargs = 2

    @classmethod
    def eval(cls, v: sp.Expr, lo: sp.Expr) -> sp.Expr | None:
        if v.is_number and lo.is_number:
            return sp.Max(v, lo)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.One if argindex == 1 else sp.S.Zero

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Arg:
    """A tensor argument of the loss, by its torch.nn.functional name.

    ``optional`` arguments (``weight``, ``pos_weight``) default to ``None`` in torch, which the spec
    reads as the value 1. ``broadcast`` is the argument's shape role against the first tensor
    (``input``), what the oracle validates and the strategies draw:

    * ``"same"``: exactly its shape (torch raises otherwise);
    * ``"warn"``: broadcast with it, with torch's UserWarning when the shapes differ (l1/mse targets);
    * ``"silent"``: broadcast with it, no warning (kl_div, poisson_nll_loss, gaussian_nll_loss);
    * ``"var"``: gaussian_nll_loss's var: input's shape, input's shape without its last dim, or
      input's shape with exactly one dim of size 1 (``torch.nn.functional.gaussian_nll_loss``);
    * ``"input"``: broadcastable to input's shape without enlarging it (an optional weight);
    * ``"last_dim"``: a vector along the last dim (pos_weight); ``"class"``: one value per class.
    """

    name: str
    domain: Domain
    axis: Axis = "element"
    differentiable: bool = False
    optional: bool = False
    broadcast: Literal["same", "warn", "silent", "var", "input", "last_dim", "class"] = "same"
    checked: bool = False  # torch rejects values outside the domain (BCE's [0, 1]); else unchecked
    #: (flag, domain): the domain while that flag option is True (kl_div's target holds
    #: log-probabilities with log_target=True; poisson_nll_loss's input is a rate with log_input=False)
    when: tuple[tuple[str, Domain], ...] = ()

    def domain_for(self, options: Mapping[str, object]) -> Domain:
        """The domain of this argument's values under the given options (flags)."""
        for flag_name, d in self.when:
            if options.get(flag_name) is True:
                return d
        return self.domain


@dataclass(frozen=True)
class Param:
    """A scalar option: a real number in an interval (``beta``, ``label_smoothing``), an integer
    (``ignore_index``), a flag (``log_target``, ``full``, ``swap``: ``flag(...)``), or one of a few
    values (``p`` of multi_margin_loss: ``choice(...)``).

    A flag is written in expressions as a boolean symbol, the condition of a ``Piecewise``
    (``Piecewise((exp(y) (y - x), log_target), (y (log y - x), True))``), which the oracle
    evaluates per call without a branch tolerance: it is the caller's choice, not a comparison.
    """

    name: str
    default: float | int | bool
    domain: sp.Set
    doc: str = ""
    integer: bool = False
    choices: tuple[float | int | bool, ...] = ()  # a flag or a choice: exactly these values

    @property
    def kind(self) -> Literal["real", "integer", "flag", "choice"]:
        if self.choices == (False, True):
            return "flag"
        if self.choices:
            return "choice"
        return "integer" if self.integer else "real"

    def admits(self, x: float) -> bool:
        """Whether ``x`` lies in the domain (a fast float test of an interval's endpoints)."""
        if self.kind == "flag":
            return isinstance(x, bool)
        if self.choices:
            return not isinstance(x, bool) and x in self.choices
        lo, hi, lo_open, hi_open = _float_bounds(self.domain)
        return (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)


def flag(name: str, default: bool, doc: str = "") -> Param:
    """A boolean option (torch's ``log_target=False``, ``full=False``, ``swap=False``, ...)."""
    return Param(name, default, sp.FiniteSet(sp.false, sp.true), doc, choices=(False, True))


def choice(name: str, default: int | float, values: tuple[int | float, ...], doc: str = "") -> Param:
    """An option that takes one of a few numbers (``p`` in {1, 2} of multi_margin_loss)."""
    integer = all(isinstance(v, int) for v in values)
    return Param(name, default, sp.FiniteSet(*values), doc, integer=integer, choices=tuple(values))


@functools.cache
def _float_bounds(domain: sp.Set) -> tuple[float, float, bool, bool]:
    if isinstance(domain, sp.Interval):
        return float(domain.start), float(domain.end), bool(domain.left_open), bool(domain.right_open)
    return float(domain.inf), float(domain.sup), False, False


@dataclass(frozen=True)
class Convention:
    """A named place where PyTorch's contract is not the plain derivative of its forward.

    ``grads`` maps an argument name to the gradient PyTorch computes (replacing the SymPy-derived
    one); it may be empty when the convention is carried by the forward expression itself (BCE's log
    clamp, smooth_l1's branch at ``|d| = beta``). ``agrees_where`` is a SymPy condition on the
    arguments under which the convention equals the plain derivative of the forward; tests check it.
    ``points`` are (arguments, expected) pairs that pin the convention down at its special points,
    each expected value with its provenance in ``doc``. ``hessian`` declares second derivatives
    PyTorch computes by a formula of its own (``spec.derive.hvp_variant`` uses them).
    """

    name: str
    doc: str
    grads: Mapping[str, sp.Expr] = field(default_factory=dict)
    agrees_where: sp.Basic | None = None
    points: tuple[tuple[Mapping[str, float], Mapping[str, float]], ...] = ()
    #: second order: ``(a, b) -> ∂/∂b`` of PyTorch's ``∂ℓ/∂a``, where its double backward is its
    #: own formula rather than the derivative of its first-order convention (BCE's eps form);
    #: every other entry is SymPy's derivative of the first-order gradient
    hessian: Mapping[tuple[str, str], sp.Expr] = field(default_factory=dict)


Role = Literal["element", "axis", "index", "index_set", "length", "scalar"]


@dataclass(frozen=True)
class ArgRole:
    """How one argument enters a loss, derived from its ``Arg`` (or ``Param``) and
    ``Loss.signature``:

    * ``"element"``: one value per element, broadcast against the first tensor by its shape role
      ``broadcast`` (``Arg.broadcast``);
    * ``"axis"``: a vector along ``axis`` in each sample (logits and probabilities over classes;
      class weights, one value per class);
    * ``"index"``: one index into ``axis`` per sample (a class-index target);
    * ``"index_set"``: class indices terminated by the first -1, one set per sample (the (N, C) target
      of multilabel_margin_loss); the spec writes it as the count of each class in the set (its
      ``IndexedBase``), which the oracle computes from the prefix;
    * ``"length"``: sequence lengths;
    * ``"scalar"``: an option (``Param``).

    ``positional``: passed positionally (``Loss.tensors``, torch.nn.functional order), else by
    keyword; ``optional``: None in torch, read as 1.
    """

    name: str
    role: Role
    axis: NamedAxis | None = None
    broadcast: str = "same"
    positional: bool = False
    optional: bool = False
    differentiable: bool = False


_ROLES: dict[str, dict[str, ArgRole]] = {}


def _roles(v: Variant) -> dict[str, ArgRole]:
    if v.key in _ROLES and v.loss in REGISTRY:
        return _ROLES[v.key]
    loss = REGISTRY.get(v.loss)
    positional = set(loss.tensors) if loss is not None else {a.name for a in v.args if not a.optional}
    out: dict[str, ArgRole] = {}
    for a in v.args:
        role: Role = (
            "element"
            if a.axis == "element"
            else "axis"
            if a.axis in ("class", "feature")
            else "index_set"
            if a.axis == "index_set"
            else "index"
        )
        out[a.name] = ArgRole(
            a.name,
            role,
            None if a.axis == "element" else FEATURE_AXIS if a.axis == "feature" else CLASS_AXIS,
            a.broadcast,
            a.name in positional,
            a.optional,
            a.differentiable,
        )
    for p in v.params:
        out[p.name] = ArgRole(p.name, "scalar")
    if loss is not None:
        _ROLES[v.key] = out
    return out


@dataclass(frozen=True)
class Variant:
    """One formula of a loss. Most losses have one; cross_entropy has class-index and probability
    targets, selected by PyTorch's own rule (``input.shape == target.shape`` means probabilities).

    ``mean_weight`` is the per-element (per-sample) weight whose sum is the denominator of
    ``reduction='mean'``: 1 for a plain mean over elements, ``weight[target]`` for the weighted mean
    of class-index cross_entropy. ``ignore`` names the integer option whose value marks an ignored
    sample (loss 0, gradient 0, and left out of the mean's denominator).
    """

    loss: str
    name: str
    expr: sp.Expr
    args: tuple[Arg, ...]
    params: tuple[Param, ...]
    symbols: Mapping[str, sp.Basic]
    conventions: tuple[Convention, ...]
    mean_weight: sp.Expr
    ignore: str | None
    doc: str
    properties: tuple[str, ...]
    reductions: tuple[Reduction, ...] = REDUCTIONS
    #: where the sample axis sits: dim 1 of (N, C, d1, ...) (dim 0 of (C)), or the last dim
    #: (multilabel_soft_margin_loss's classes; the feature axis of embedding losses)
    class_dim: Literal["second", "last"] = "second"
    #: reduction -> the UserWarning torch's contract emits on every call with it (kl_div's 'mean');
    #: the other warning of the contract is the "warn" shape role of ``Arg.broadcast``
    reduction_warnings: Mapping[str, str] = field(default_factory=dict)
    #: the numbers of dims the first tensor may have (empty: any its axis allows); multi_margin_loss
    #: takes (C) or (N, C) only, with no extra dims
    input_ndims: tuple[int, ...] = ()
    #: the options whose values select this variant, by value: a function option names a function
    #: the spec defines (triplet_margin_with_distance_loss's ``distance_function="cosine_distance"``);
    #: a backend passes its own form of it (``conformance.backends`` capability "functions")
    selects: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.loss if self.name == "default" else f"{self.loss}[{self.name}]"

    def __repr__(self) -> str:
        return f"<Variant {self.key}>"

    def _repr_pretty_(self, p: object, cycle: bool) -> None:  # Hypothesis' falsifying-example printer
        p.text(repr(self))  # type: ignore[attr-defined]

    def arg(self, name: str) -> Arg:
        for a in self.args:
            if a.name == name:
                return a
        raise KeyError(f"{self.key} has no argument {name!r}; it has {[a.name for a in self.args]}")

    @property
    def differentiable(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if a.differentiable)

    @property
    def mean_weighted_by(self) -> tuple[str, ...]:
        """The optional arguments the denominator of ``reduction='mean'`` is a sum of (a weighted
        mean); empty for a plain mean over elements."""
        names = {str(s) for s in self.mean_weight.free_symbols}
        return tuple(a.name for a in self.args if a.optional and a.name in names)

    @property
    def roles(self) -> Mapping[str, ArgRole]:
        """The role of each tensor argument and option, by name (:class:`ArgRole`): the one record
        the oracle, the strategies, the harness, the properties and the mpmath evaluator read."""
        return _roles(self)

    @property
    def sample_axis(self) -> NamedAxis | None:
        """The named axis a sample of this variant reduces over (``CLASS_AXIS`` for cross_entropy,
        nll_loss, multilabel_soft_margin_loss), or None for an element-wise loss."""
        axes = {r.axis for r in self.roles.values() if r.axis is not None}
        if len(axes) > 1:
            raise NotImplementedError(
                f"{self.key}: arguments along several axes {sorted(a.name for a in axes)}"
            )
        return next(iter(axes), None)

    def grad_override(self, name: str) -> sp.Expr | None:
        for c in self.conventions:
            if name in c.grads:
                return c.grads[name]
        return None


@dataclass(frozen=True)
class Loss:
    """A loss by its torch.nn.functional name, with its variants in dispatch order."""

    name: str
    family: str
    variants: tuple[Variant, ...]
    doc: str
    signature: tuple[str, ...]  # torch.nn.functional positional/keyword order of its arguments

    @property
    def tensors(self) -> tuple[str, ...]:
        """The required tensor arguments, in torch.nn.functional order: what a loss function (and
        an ``nn.Module``'s ``forward``) takes positionally. Optional tensors go by keyword."""
        required = {a.name for v in self.variants for a in v.args if not a.optional}
        return tuple(n for n in self.signature if n in required)

    def variant(self, name: str = "default") -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"{self.name} has no variant {name!r}")


REGISTRY: dict[str, Loss] = {}


def symbols_for(args: tuple[Arg, ...], params: tuple[Param, ...]) -> dict[str, sp.Basic]:
    """The SymPy object each argument and option is written with, keyed by its torch name."""
    out: dict[str, sp.Basic] = {}
    for a in args:
        if a.axis in ("class", "feature", "index_set"):
            out[a.name] = sp.IndexedBase(a.name, real=True)
        elif a.axis == "index":
            out[a.name] = sp.Symbol(a.name, integer=True)
        else:
            out[a.name] = sp.Symbol(a.name, real=True)
    for p in params:
        if p.kind == "flag":
            out[p.name] = sp.Symbol(p.name)  # a boolean: the condition of a Piecewise
        else:
            # a domain of positive reals says so: SymPy then knows powers like |u|^p are real
            positive = bool(p.domain.is_subset(sp.Interval.open(0, sp.oo)))
            assume = {"positive": True} if positive else {"real": True}
            out[p.name] = (
                sp.Symbol(p.name, integer=True, **assume) if p.integer else sp.Symbol(p.name, **assume)
            )
    return out


def loss(
    *,
    family: str,
    signature: tuple[str, ...],
    args: tuple[Arg, ...],
    params: tuple[Param, ...] = (),
    variant: str = "default",
    conventions: Callable[..., tuple[Convention, ...]] | None = None,
    mean_weight: Callable[..., sp.Expr] | None = None,
    ignore: str | None = None,
    properties: tuple[str, ...] = (),
    reductions: tuple[Reduction, ...] = REDUCTIONS,
    class_dim: Literal["second", "last"] = "second",
    reduction_warnings: Mapping[str, str] | None = None,
    input_ndims: tuple[int, ...] = (),
    selects: Mapping[str, str] | None = None,
) -> Callable[[Callable[..., sp.Expr]], Callable[..., sp.Expr]]:
    """Register the decorated function's expression as a variant of loss ``fn.__name__``.

    The function is called with one SymPy object per argument and option, by name. ``conventions``
    and ``mean_weight`` are called the same way, so they are written with the same symbols.
    ``properties`` names metamorphic properties the conformance suite checks for this variant;
    ``reductions`` the values of torch's ``reduction=`` it takes (``REDUCTION_RULES``).
    """

    def register(fn: Callable[..., sp.Expr]) -> Callable[..., sp.Expr]:
        name = fn.__name__.split("__")[0]  # "cross_entropy__probabilities" -> "cross_entropy"
        syms = symbols_for(args, params)
        wanted = inspect.signature(fn).parameters
        missing = set(wanted) - set(syms)
        if missing:
            raise TypeError(f"{fn.__name__} asks for {sorted(missing)}, not declared as args/params")
        kw = {n: syms[n] for n in wanted}
        expr = sp.sympify(fn(**kw))

        def call(f: Callable[..., object] | None, default: object) -> object:
            if f is None:
                return default
            return f(**{n: syms[n] for n in inspect.signature(f).parameters})

        v = Variant(
            loss=name,
            name=variant,
            expr=expr,
            args=args,
            params=params,
            symbols=syms,
            conventions=tuple(call(conventions, ())),  # type: ignore[arg-type]
            mean_weight=sp.sympify(call(mean_weight, sp.Integer(1))),
            ignore=ignore,
            doc=inspect.getdoc(fn) or "",
            properties=properties,
            reductions=reductions,
            class_dim=class_dim,
            reduction_warnings=dict(reduction_warnings or {}),
            input_ndims=input_ndims,
            selects=dict(selects or {}),
        )
        old = REGISTRY.get(name)
        variants = (old.variants if old else ()) + (v,)
        REGISTRY[name] = Loss(
            name=name,
            family=family,
            variants=variants,
            doc=old.doc if old else v.doc,
            signature=signature,
        )
        return fn

    return register
