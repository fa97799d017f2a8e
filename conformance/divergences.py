"""Known divergences: where a backend's numbers are wrong by the spec, with the evidence.

Each :class:`Divergence` names the backend, loss and dtypes, the library versions it was measured
on, a predicate telling which cases hit it, and a deterministic *witness* case. The witness runs in
``test_divergences.py`` as ``xfail(strict=True)`` on the measured versions (a pass there means the
backend was fixed: update this file) and ``xfail(strict=False)`` on other versions. Random checks
reject the examples that hit a known divergence (``hypothesis.assume``), so the rest of the space is
still checked and a correct backend raises no false alarm. The oracle never changes to match.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.backends import DType
from conformance.errormodel import _FINFO, round_to
from conformance.strategies import Case


@dataclass(frozen=True)
class Divergence:
    id: str
    backends: str  # glob over backend names
    loss: str
    dtypes: tuple[str, ...]
    library: str  # key of Backend.describe() whose version was measured
    versions: str  # glob over that version
    reason: str
    hits: Callable[[Case, Sequence[str]], bool]
    #: deterministic cases (the inputs to differentiate, and optionally the memory layout) that
    #: show it; each runs as a strict xfail
    witnesses: tuple[tuple[Case, tuple[str, ...]] | tuple[Case, tuple[str, ...], str], ...]
    #: the memory layouts it happens in (empty: any)
    layouts: tuple[str, ...] = ()
    #: 2: a divergence of the double backward only (``conformance.second_order``), its witnesses
    #: run with ``hvp``'s upstream and directions; 1: of the value or the gradient (and so of
    #: everything computed from them)
    order: int = 1
    hvp: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def applies(
        self, backend: Any, case: Case, wrt: Sequence[str], layout: str = "contiguous", order: int = 1
    ) -> bool:
        return (
            self.order <= order
            and fnmatch.fnmatchcase(backend.name, self.backends)
            and case.loss == self.loss
            and case.dtype in self.dtypes
            and (not self.layouts or layout in self.layouts)
            and self.hits(case, wrt)
        )

    def measured_on(self, backend: Any) -> bool:
        return fnmatch.fnmatchcase(str(dict(backend.describe()).get(self.library, "")), self.versions)


def _bce_half_zero_over_zero(case: Case, wrt: Sequence[str]) -> bool:
    """Hit at input ∈ {0, 1}, where torch's float16 quotient (x - y) / max(x(1 - x), 0) divides by
    0 (the floor 1e-12 rounds to 0 in float16), and where that quotient overflows while the spec's
    gradient w·u·(x - y) / max(x(1 - x), 1e-12), for an upstream |u| >= 1/2 (divided by n for
    'mean'), may still be finite in float16."""
    if "input" not in wrt:
        return False
    w = case.arrays.get("weight", np.ones(()))
    x, y, w = np.broadcast_arrays(case.arrays["input"], case.arrays["target"], w)
    with np.errstate(all="ignore"):
        quotient = np.abs(x - y) / (x * (1 - x))
        spec = np.abs(w * (x - y)) / np.maximum(x * (1 - x), 1e-12)
    smallest = 0.5 / x.size if case.reduction == "mean" else 0.5  # |upstream| >= 1/2, over n if mean
    at_zero = x * (1 - x) == 0  # torch divides by exactly 0: ±inf, or NaN once the numerator underflows
    return bool(np.any(at_zero | ((quotient > 65504) & (spec * smallest <= 65504))))


def _bce_logits_pos_weight_cancels(case: Case, wrt: Sequence[str]) -> bool:
    """torch evaluates the loss as (1 - y) x - c1 logsigmoid(x), c1 = 1 + (p - 1) y, and the input
    gradient with c2 = p y + 1 - y, in the input's dtype. Hit where either coefficient, computed in
    that order and dtype, is off by more than the error model allows for it (K eps |c|)."""
    from fractions import Fraction

    from conformance.errormodel import K, eps, round_to

    if "pos_weight" not in case.arrays:
        return False
    p, y = np.broadcast_arrays(case.arrays["pos_weight"], case.arrays["target"])
    r = lambda a: float(round_to(a, case.dtype))  # noqa: E731  (one rounding in the dtype)
    tol = Fraction(K * eps(case.dtype))
    for pi, yi in zip(p.ravel().tolist(), y.ravel().tolist(), strict=True):
        P, Y = Fraction(pi), Fraction(yi)
        exact = (1 + (P - 1) * Y, P * Y + 1 - Y)
        got = (r(1 + r(r(pi - 1) * yi)), r(r(r(pi * yi) + 1) - yi))
        for e, g in zip(exact, got, strict=True):
            if abs(Fraction(g) - e) > tol * abs(e):
                return True
    return False


def _ce_smoothing_term_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """torch reduces the smoothing term as (ε/C)·(Σ_n s_n / Σ w[y]): the quotient can overflow where
    the scaled result does not. Hit where Σ s_n / Σ w[y] exceeds the dtype's largest value."""
    import oracle
    from conformance.errormodel import _FINFO

    if case.reduction != "mean" or not case.options.get("label_smoothing") or case.variant != "class_index":
        return False
    w = case.arrays.get("weight")
    if w is None:
        return False
    if _FINFO[case.dtype][1] > 1e30 and not np.any((w > 0) & (w < 1e-3)):
        # cheap screen: with every weight 0 or >= 1e-3 the quotient stays far from overflow, except
        # in float16 (65504: weight 0.001, rounded up to 0.0010004, gave 65767; a false alarm of the
        # default profile, --hypothesis-seed=424242)
        return False
    x = case.arrays["input"]
    c = x.shape[0 if x.ndim == 1 else 1]
    opts = {**case.options, "label_smoothing": 1.0}
    mean = oracle.loss_value(case.loss, reduction="mean", **case.arrays, **opts)
    with np.errstate(over="ignore"):  # the quotient may overflow float64 too: that is a hit
        quotient = c * mean
    return bool(np.abs(quotient) > _FINFO[case.dtype][1])


def _soft_margin_exp_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """torch evaluates log(1 + exp(z)), z = -y·x, as written, in the input's dtype: exp(z) overflows
    for z > log(max) (709.78 in float64, 88.72 in float32 and bfloat16, 11.09 in float16), where
    the loss is ≈ z and finite. Hit where any z is within a few ulp of that threshold or above."""
    import math

    from conformance.errormodel import _FINFO

    eps, big, _ = _FINFO[case.dtype]
    with np.errstate(all="ignore"):
        z = -np.asarray(case.arrays["target"]) * np.asarray(case.arrays["input"])
    return bool(np.any(z > math.log(big) * (1 - 4 * eps)))


def _poisson_exp_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """log_input=True, a reduction or the input's gradient: torch forms each element's exp(x) - t·x
    in the dtype, and its gradient as u·exp(x) from the saved exp(x), which overflows for
    x > log(max) (11.09 in float16, 88.72 in float32 and bfloat16, 709.78 in float64), where the
    reduced loss, or u·exp(x) for |u| < 1, may be finite. Hit where any x is within a few ulp of
    that threshold or above."""
    import math

    eps, big, _ = _FINFO[case.dtype]
    if (case.reduction == "none" and "input" not in wrt) or not case.options.get("log_input", True):
        return False
    return bool(np.any(np.asarray(case.arrays["input"]) > math.log(big) * (1 - 4 * eps)))


def _target_zero_grad(flag: str, when: bool) -> Callable[[Case, Sequence[str]], bool]:
    """Hit where the target gradient is asked, the flag option has the given value and some
    target is exactly 0."""

    def hits(case: Case, wrt: Sequence[str]) -> bool:
        return (
            "target" in wrt
            and bool(case.options.get(flag)) is when
            and bool(np.any(np.asarray(case.arrays["target"]) == 0))
        )

    return hits


def _kl_target_grad_subnormal(case: Case, wrt: Sequence[str]) -> bool:
    """torch's xlogy backward forms upstream·y / y for the second argument: the product is
    subnormal, and loses bits, where y is (an upstream below 1 makes a larger range of y subnormal
    there: y < smallest normal / |upstream|, |upstream| >= ¼ over n for 'mean' in the suite)."""
    from conformance.errormodel import _FINFO

    if "target" not in wrt or case.options.get("log_target"):
        return False
    y = np.abs(np.asarray(case.arrays["target"]))
    n = max(y.size, 1) if case.reduction in ("mean", "batchmean") else 1
    normal = _FINFO[case.dtype][2]
    return bool(np.any((y > 0) & (y < normal * 4 * n)))


def _gaussian_reciprocal_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """torch's autograd of (x - y)²/v forms upstream·½ / v first (DivBackward): it overflows where
    the clamped variance v = max(var, eps) < 1/max of the dtype (|upstream| <= 2 in the suite),
    then times 2(x - y) gives ±inf, or NaN at x = y, where the exact gradient is finite."""
    from conformance.errormodel import _FINFO

    if not wrt:
        return False
    e, big, _ = _FINFO[case.dtype]
    return bool(np.any(_clamped_var(case) < (1 + 8 * e) / big))


def _squared_distance_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """The squared Euclidean distance Σ (x - y)² of two of the triplet's inputs (each difference
    rounded to the dtype) exceeds the dtype's largest value (less a few ulp), where the loss
    d(a, p) - d(a, n) + margin may be finite."""
    from conformance.errormodel import _FINFO

    if case.variant != "squared_euclidean_distance":
        return False
    e, big, _ = _FINFO[case.dtype]
    a, pos, neg = (np.asarray(case.arrays[n], np.float64) for n in _TRIPLET_ARGS)
    with np.errstate(all="ignore"):
        for x, y in ((a, pos), (a, neg), (pos, neg)):
            if bool(np.any(np.sum(round_to(x - y, case.dtype) ** 2, axis=-1) > big * (1 - 4 * e))):
                return True
    return False


def _gaussian_square_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """torch forms (x - y)² and (x - y)²/v in the dtype before halving, and for the var gradient
    ((x - y)²/v)/v before the upstream·½: each overflows where the loss ½(log v + (x - y)²/v),
    or its gradient, is finite. Hit where any exceeds the dtype's largest value (less a few ulp)."""
    from conformance.errormodel import _FINFO

    e, big, _ = _FINFO[case.dtype]
    x, y = np.asarray(case.arrays["input"]), np.asarray(case.arrays["target"])
    v = _clamped_var(case)
    with np.errstate(all="ignore"):
        d2 = (x - y) ** 2
        worst = np.maximum(d2, d2 / v)
        if "var" in wrt:  # the var gradient's (d²/v)/v, formed before the upstream·½
            worst = np.maximum(worst, d2 / v / v)
    return bool(np.any(worst > big * (1 - 4 * e)))


def _clamped_var(case: Case) -> np.ndarray[Any, Any]:
    """max(var, eps), shaped as it broadcasts against input (one per sample: unsqueezed)."""
    from oracle.api import _var_shape

    var = np.asarray(case.arrays["var"])
    x = np.asarray(case.arrays["input"])
    shape = var.shape if var.shape == x.shape else _var_shape("var", var.shape, x.shape)
    return np.maximum(var.reshape(shape), float(case.options.get("eps", 1e-6)))


def weighted_mean_hits(case: Case, wrt: Sequence[str], power: int = 1) -> bool:
    """The one predicate of every weighted mean, of every loss: a ``reduction='mean'`` whose
    denominator is a sum of weights (the variant's ``mean_weight`` depends on an optional argument,
    and the case passes it). torch computes such a mean as Σ w·ℓ / Σ w in the input's dtype, and its
    gradient through upstream / Σ w. Hit where

    * the exact Σ w·ℓ exceeds the dtype's largest value (the mean itself may be finite), or
    * gradients are asked for and upstream / Σ w can overflow: Σ w < 2 / max (|upstream| <= 2 in
      the suite), with room for Σ w rounded down in the dtype.

    ``power=2`` (second order, a weight differentiated): its double backward divides by (Σ w)²,
    hit where Σ w < 4·sqrt(2 / max) (upstream and directions <= 2)."""
    import oracle
    from conformance.errormodel import _FINFO
    from spec import REGISTRY

    if case.reduction != "mean":
        return False
    weights = REGISTRY[case.loss].variant(case.variant).mean_weighted_by
    if not any(w in case.arrays for w in weights):
        return False
    eps, big, _ = _FINFO[case.dtype]
    arrays: dict[str, Any] = dict(case.arrays)
    with warnings.catch_warnings():  # the contract's own warnings (a broadcast target) are not at issue
        warnings.simplefilter("ignore", UserWarning)
        r = oracle.evaluate(case.loss, reduction="mean", wrt=(), **arrays, **case.options)
    total_weight = float(r.denominator or 0.0)
    n = max(a.size for a in case.arrays.values())
    limit = (2 * (1 + (n + 1) * eps) / big) ** (1 / power) * 4.0 ** (power - 1)
    if wrt and 0 < total_weight < limit and (power == 1 or any(w in wrt for w in weights)):
        return True
    with np.errstate(all="ignore"):
        total = abs(float(r.value) * total_weight)  # Σ w·ℓ (inf where it overflows float64 too)
    return bool(total > big)


def _tiny_weight_witness(loss: str, variant: str) -> Case:
    """float64, one sample whose weight is the smallest subnormal: upstream / Σ w overflows."""
    from spec import REGISTRY

    v = REGISTRY[loss].variant(variant)
    tiny = float(np.nextafter(0.0, 1.0))
    shape = (2,) if v.sample_axis is not None else (1,)
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for a in v.args:
        if v.roles[a.name].role == "index":
            arrays[a.name] = np.array(0, dtype=np.int64)
        elif a.name in v.mean_weighted_by:
            arrays[a.name] = np.array([tiny, 1.0]) if a.broadcast == "class" else np.full(shape, tiny)
        elif not a.optional:
            arrays[a.name] = np.zeros(shape)
    options = {p.name: p.default for p in v.params}
    return Case(loss, variant, "float64", arrays, options, "mean")


def _weighted_mean_overflow(loss: str, variant: str, value_witness: Case | None = None) -> Divergence:
    wrt = ("input",)
    witnesses = ((value_witness, ()),) if value_witness is not None else ()
    return Divergence(
        id="-".join((loss, *([variant] if variant != "default" else []), "weighted-mean-overflow")).replace(
            "_", "-"
        ),
        backends="torch-*",
        loss=loss,
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "reduction='mean' over a sum of weights: torch computes (w·ℓ).sum() / w.sum() in the "
            "input's dtype, so the sum overflows to inf where the exact mean is finite, and its "
            "gradient forms upstream / Σ w first, which overflows for a tiny total weight (then "
            "inf·0 = NaN). Measured on torch 2.13.0+cpu, float16: mse_loss(zeros(3, 3), "
            "full((3, 3), 43.), weight=full((3, 3), 4.)) -> inf (exact 1849); float64, weight the "
            "smallest subnormal 5e-324: the input gradient of l1_loss/mse_loss at input = target = 0 "
            "is NaN (exact 0), and of cross_entropy(zeros(2), 0, weight=[5e-324, 1]) [nan, inf] "
            "(exact [-0.5, 0.5])."
        ),
        hits=weighted_mean_hits,
        witnesses=(*witnesses, (_tiny_weight_witness(loss, variant), wrt)),
    )


def _weighted_mean_double_backward(loss: str) -> Divergence:
    """l1_loss's and mse_loss's weight is differentiable: the second derivatives through it."""
    tiny32 = 2.0**-126
    return Divergence(
        id=f"{loss.replace('_', '-')}-weighted-mean-double-backward-overflow",
        backends="torch-*",
        loss=loss,
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order, reduction='mean' over a sum of weights, the weight differentiated: "
            "torch's double backward of Σ w·ℓ / Σ w divides by (Σ w)² in the dtype, which "
            "underflows (or upstream over it overflows) where Σ w is tiny but upstream / Σ w is "
            "finite, then inf·0 = NaN. Measured on torch 2.13.0+cpu, float32: "
            f"{loss}(zeros(2), zeros(1), weight=[2^-126, 0]), upstream 0.5, directions 0.5 "
            "(input), 2 (target), 0 (weight) -> the weight's Hessian-vector product [nan, nan] "
            "(spec [0, 0]); found by the default profile, --hypothesis-seed=20314."
        ),
        hits=lambda case, wrt: weighted_mean_hits(case, wrt, power=2),
        witnesses=(
            (
                Case(loss, "default", "float32",
                     {"input": np.zeros(2), "target": np.zeros(1), "weight": np.array([tiny32, 0.0])},
                     {}, "mean"),
                ("input", "target", "weight"),
            ),
        ),
        order=2,
        hvp={
            "upstream": np.array(0.5),
            "directions": {"input": np.array([0.5, 0.5]), "target": np.array([2.0]),
                           "weight": np.zeros(2)},
        },
    )  # fmt: skip


def _weighted_means() -> tuple[Divergence, ...]:
    """The weighted-mean divergence of every variant of every registered loss whose mean is weighted."""
    from spec import REGISTRY

    overflow_value = {"mse_loss": 43.0, "l1_loss": 7300.0}  # Σ w·ℓ = 9 · 4 · ℓ > 65504, the mean ℓ < it
    out = []
    for name, spec_loss in REGISTRY.items():
        for v in spec_loss.variants:
            if not v.mean_weighted_by:
                continue
            value_witness = None
            if name in overflow_value:
                value_witness = Case(
                    name,
                    v.name,
                    "float16",
                    {
                        "input": np.zeros((3, 3)),
                        "target": np.full((3, 3), overflow_value[name]),
                        "weight": np.full((3, 3), 4.0),
                    },
                    {},
                    "mean",
                )
            out.append(_weighted_mean_overflow(name, v.name, value_witness))
    return tuple(out)


def _empty_batch_reduced(case: Case, wrt: Sequence[str]) -> bool:
    """A batch of no samples reduced by 'mean' or 'sum'."""
    from spec import REGISTRY

    first = case.arrays[REGISTRY[case.loss].tensors[0]]
    return case.reduction in ("mean", "sum") and first.ndim == 2 and first.shape[0] == 0


def _empty_batch_garbage(loss: str) -> Divergence:
    return Divergence(
        id=f"{loss.replace('_', '-')}-empty-batch-uninitialised",
        backends="torch-cpu",
        loss=loss,
        dtypes=("float64", "float32"),
        library="torch",
        versions="2.13.*",
        reason=(
            f"{loss} on a batch of 0 samples with reduction 'mean' or 'sum' returns uninitialised "
            "memory on CPU (the kernel allocates the 0-d output and never writes it), where the spec "
            "says 'sum' is 0 and 'mean' NaN (0/0). Measured on torch 2.13.0+cpu, float64: "
            f"{loss}(zeros(0, 3), ...) three times in a row -> 'mean' 3.3094e-207, 3.3665e-198, "
            "6.9121e-310 (multi_margin_loss) and 'sum' 0., 6.9121e-310, 0. (multilabel_margin_loss): "
            "a different value from call to call."
        ),
        hits=_empty_batch_reduced,
        # no witness: the value is whatever the allocator hands back, 0 now and then (a strict xfail
        # would flake); the empty-batch special point checks that it is recognised
        witnesses=(),
    )


def _cosine_float16_eps_vanishes(case: Case, wrt: Sequence[str]) -> bool:
    """float16: torch forms Σx1² + ε, Σx2² + ε and their product in float16, where ε = 1e-12
    rounds to 0, the product overflows above 65504 and underflows below 2^-14. Hit where either
    squared norm is 0 in float16 (0/0), or the product of the two, rounded, is inf (cos = 0) or
    below float16's smallest normal number (cos inf: [2^-6]·[2^-7] has the product 2^-26)."""
    with np.errstate(all="ignore"):
        sq = []
        for name in ("input1", "input2"):
            x = case.arrays[name].astype(np.float16)
            sq.append(np.sum(x * x, axis=-1, dtype=np.float32).astype(np.float16))
        prod = (sq[0] * sq[1]).astype(np.float16)
    # (a subnormal or 0 product: torch's denominator sqrt of it is far off or 0, cos inf)
    return bool(np.any((sq[0] == 0) | (sq[1] == 0) | ~np.isfinite(prod) | (prod < 2.0**-14)))


def _cosine_similarity_float16_norm_out_of_range(case: Case, wrt: Sequence[str]) -> bool:
    """float16, triplet_margin_with_distance_loss with the cosine distance: torch clamps each norm
    at eps = 1e-8 in float16, where eps rounds to 0, and divides by the norm in float16. Hit where
    some vector's norm, rounded to float16, is 0 (0/0), above 65504 (x/inf = 0) or below float16's
    smallest normal number 2^-14 (a subnormal divisor: the quotient loses its accuracy)."""
    if case.variant != "cosine_distance":
        return False
    with np.errstate(all="ignore"):
        for name in ("anchor", "positive", "negative"):
            x = np.asarray(case.arrays[name], np.float16).astype(np.float32)
            n = np.sqrt(np.sum(x * x, axis=-1)).astype(np.float16)
            if np.any((n < 2.0**-14) | ~np.isfinite(n)):
                return True
    return False


def _cosine_similarity_zero_vector(case: Case, wrt: Sequence[str]) -> bool:
    """Second order, the cosine distance: hit where a differentiated argument has a zero vector in
    the dtype (a row whose squares all round to 0: float32's 1e-30), where torch's double
    backward of cosine_similarity is NaN."""
    if case.variant != "cosine_distance":
        return False
    return any(
        np.any(np.all(round_to(np.square(np.asarray(case.arrays[n], np.float64)), case.dtype) == 0, axis=-1))
        for n in wrt
    )


def _cosine_grad_intermediate_underflows(case: Case, wrt: Sequence[str]) -> bool:
    """torch's autograd of cos = Σx1x2 / sqrt(m1·m2) forms prod_sum / denom² · (0.5 / denom) before
    multiplying by m2·2x1: where that intermediate falls below the dtype's smallest normal number
    (and is not 0), its relative error grows without bound and the gradient, after the large
    factors, misses the spec's by more than the error model allows. Hit where 0 < |Σx1x2| / denom³
    is below the smallest normal (denom = sqrt((Σx1² + ε)(Σx2² + ε)))."""
    if not wrt:
        return False
    x1, x2 = (np.asarray(case.arrays[n], np.float64) for n in ("input1", "input2"))
    eps = 9.999999960041972e-13
    with np.errstate(all="ignore"):
        dot = np.abs(np.sum(x1 * x2, axis=-1))
        m1, m2 = np.sum(x1 * x1, axis=-1) + eps, np.sum(x2 * x2, axis=-1) + eps
        denom = np.sqrt(m1 * m2)
        q = dot / denom**3
    if case.dtype == "float16":  # its normal range is narrow: any intermediate outside it
        parts = (m1, m2, m1 * m2, dot / denom**2, q)
        return any(bool(np.any((a > 0) & ((a < 2.0**-14) | (a > 65504)))) for a in parts)
    tiny = float(np.finfo(np.float64 if case.dtype == "float64" else np.float32).tiny)
    with np.errstate(all="ignore"):  # q < tiny as dot < tiny·denom³: q itself may flush to 0
        return bool(np.any((dot > 0) & (dot < tiny * denom**3)))


def _triplet_norm_backward_underflows(case: Case, wrt: Sequence[str], power: int = 1) -> bool:
    """torch's p-norm backward (p not 1 or 2) divides by norm^(p-1) and multiplies by
    u·|u|^(p-2) in the dtype: where norm^(p-1) leaves the dtype's range (below 2 / max: upstream
    over it overflows; above max / 2) while the norm itself is finite and not 0 (its forward is
    scaled), the gradient is inf·0 = NaN, or inf. Hit where any of the case's three distances is.
    ``power=2``: its double backward divides by (norm^(p-1))², out of range sooner."""
    import math

    from conformance.errormodel import _FINFO

    p = float(case.options.get("p", 2.0))
    if not wrt or p in (1.0, 2.0):
        return False
    eps = float(case.options.get("eps", 1e-6))
    a, pos, neg = (np.asarray(case.arrays[n], np.float64) for n in ("anchor", "positive", "negative"))
    log_big = math.log(_FINFO[case.dtype][1] / 2)
    with np.errstate(all="ignore"):
        for x, y in ((a, pos), (a, neg), (pos, neg)):
            u = np.abs(x - y + eps)
            m = np.max(u, axis=-1, keepdims=True) if u.ndim else u
            m = np.where(m > 0, m, 1.0)
            log_d = np.log(m[..., 0] if u.ndim else m) + np.log(np.sum((u / m) ** p, axis=-1)) / p
            log_pow = power * (p - 1) * log_d  # log of norm^(p-1); -inf where the norm is 0 (masked)
            if np.any(np.isfinite(log_pow) & ((log_pow < -log_big) | (log_pow > log_big))):
                return True
    return False


def _triplet_underflow() -> Divergence:
    loss = "triplet_margin_loss"
    zeros = {"anchor": np.zeros((1, 1)), "positive": np.zeros((1, 1)), "negative": np.zeros((1, 1))}
    return Divergence(
        id="triplet-margin-loss-norm-backward-out-of-range",
        backends="torch-*",
        loss=loss,
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "the gradient through pairwise_distance with p other than 1 and 2 is NaN where the "
            "distance is tiny but not 0, or large: torch's norm forward is scaled, but its backward "
            "forms grad / norm^(p-1) and u·|u|^(p-2) in the dtype, which underflow or overflow to "
            "inf·0. Measured on torch 2.13.0+cpu: triplet_margin_loss(zeros(1, 1) ×3, p=3, "
            "eps=1e-30) in float32 -> gradients [nan] ×3 (spec [0], [-1], [1]); float64, negative "
            "ones(1, 1), eps=1e-200 -> anchor and positive gradients nan; float16, negative 16, "
            "p=5, eps=0 -> nan (16^4 overflows)."
        ),
        hits=_triplet_norm_backward_underflows,
        witnesses=(
            (
                Case(
                    loss,
                    "default",
                    "float32",
                    zeros,
                    {"margin": 1.0, "p": 3.0, "eps": 1e-30, "swap": False},
                    "none",
                ),
                ("anchor",),
            ),
        ),
    )


def _triplet_hvp(d: int, positive: float) -> dict[str, Any]:
    """A triplet witness's upstream (0.5 for each of 2 samples) and directions along its (2, d)
    inputs: 0.5 for the anchor and the negative, ``positive`` for the positive (not 0.5, or the
    anchor's and positive's directions cancel in the distance's difference)."""
    directions = {n: np.full((2, d), positive if n == "positive" else 0.5) for n in _TRIPLET_ARGS}
    return {"upstream": np.array([0.5, 0.5]), "directions": directions}


_TRIPLET_ARGS = ("anchor", "positive", "negative")
_TRIPLET_P5 = {"margin": 1.0, "p": 5.0, "eps": 1e-6, "swap": False}


def _triplet_double_backward_underflow() -> Divergence:
    loss = "triplet_margin_loss"
    zeros = {"anchor": np.zeros((2, 5)), "positive": np.zeros((2, 5)), "negative": np.zeros((2, 5))}
    return Divergence(
        id="triplet-margin-loss-norm-double-backward-out-of-range",
        backends="torch-*",
        loss=loss,
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order, p other than 1 and 2: the double backward of pairwise_distance divides "
            "by (norm^(p-1))², which underflows in the dtype where norm^(p-1) (the first order's "
            "divisor) does not: NaN and -inf where the spec's second derivatives are finite. "
            "Measured on torch 2.13.0+cpu, float32: triplet_margin_loss(zeros(2, 5) ×3, p=5, "
            "eps=1e-6, reduction='none'), upstream 0.5, directions 0.5, 2, 0.5 -> the anchor's and "
            "negative's Hessian-vector products nan, the positive's -inf (spec: 1.6e-10 and finite; "
            "norm = 1.4e-6, norm^4 = 3.6e-24, its square 1.3e-47 below float32's range); float64 "
            "there finite (3.26e-09)."
        ),
        hits=lambda case, wrt: _triplet_norm_backward_underflows(case, wrt, power=2),
        witnesses=(
            (
                Case(loss, "default", "float32", zeros, _TRIPLET_P5, "none"),
                ("anchor", "positive", "negative"),
            ),
        ),
        order=2,
        hvp=_triplet_hvp(5, 2.0),
    )


def _triplet_component_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """Second order, 1 < p < 3 (not 2): some nonzero component u_k = x - y + eps of a distance (in
    the dtype) whose |u_k|^(p-3), times 8 (the upstream and directions' allowance), overflows the
    dtype: the term of torch's double backward that differentiates |u|^(p-2)."""
    import math

    from conformance.errormodel import _FINFO

    p = float(case.options.get("p", 2.0))
    if not wrt or not 1.0 < p < 3.0 or p == 2.0:
        return False
    eps = float(case.options.get("eps", 1e-6))
    log_big = math.log(_FINFO[case.dtype][1] / 8)
    a, pos, neg = (np.asarray(case.arrays[n], np.float64) for n in _TRIPLET_ARGS)
    for x, y in ((a, pos), (a, neg), (pos, neg)):
        u = np.abs(round_to(round_to(x - y, case.dtype) + round_to(eps, case.dtype), case.dtype))
        nonzero = u[u > 0]
        if nonzero.size and bool(np.any((p - 3) * np.log(nonzero) > log_big)):
            return True
    return False


def _triplet_component_double_backward_overflow() -> Divergence:
    loss = "triplet_margin_loss"
    z = np.zeros((2, 1))
    return Divergence(
        id="triplet-margin-loss-component-double-backward-overflow",
        backends="torch-*",
        loss=loss,
        dtypes=("float32", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order, 1 < p < 3 (p != 2), a tiny nonzero component u_k of a difference: torch's "
            "double backward of pairwise_distance forms (p - 2)|u_k|^(p-3) in the dtype, which "
            "overflows to inf where the spec's Hessian-vector product is finite (for one feature the "
            "distance is |u| and its exact second derivative 0). Measured on torch 2.13.0+cpu, "
            "float32 (a false alarm of the default profile, --hypothesis-seed=16): "
            "triplet_margin_loss(anchor 0, positive 1e-30, negative 0, p=1.5, eps=0, "
            "reduction='none') -> the positive's Hessian-vector product -inf ((1e-30)^-1.5 = 1e45 "
            "beyond float32); float64 finite. The witness's negative is 1, away from the anchor (a zero "
            "anchor-negative distance is triplet-margin-loss-zero-difference-double-backward's)."
        ),
        hits=_triplet_component_overflows,
        witnesses=(
            (
                Case(
                    loss,
                    "default",
                    "float32",
                    {"anchor": z, "positive": np.full((2, 1), 1e-30), "negative": np.ones((2, 1))},
                    {"margin": 1.0, "p": 1.5, "eps": 0.0, "swap": False},
                    "none",
                ),
                ("anchor", "positive", "negative"),
            ),
        ),
        order=2,
        hvp=_triplet_hvp(1, 2.0),
    )


def _triplet_zero_difference(case: Case, wrt: Sequence[str]) -> bool:
    """Second order, 1 < p < 3: a difference u = x - y + eps (in the dtype) with a zero element,
    in a row whose norm is not 0 (1 < p < 3, p != 2), or a row whose distance torch computes as 0
    (p >= 2):
    every |u_k|^p rounds to 0 in torch's accumulation type (float32 for the 16-bit dtypes), u = 0
    or a tiny u (float32, eps = 2^-149: u^2 underflows), in any of the three distances; for
    1 < p < 2, a row that rounds to 0 in the dtype where the exact one does not."""
    import math

    from conformance.errormodel import _FINFO

    p = float(case.options.get("p", 2.0))
    if not wrt or not 1.0 < p:
        return False
    eps = float(case.options.get("eps", 1e-6))
    a, pos, neg = (np.asarray(case.arrays[n], np.float64) for n in ("anchor", "positive", "negative"))
    acc = "float64" if case.dtype == "float64" else "float32"
    smallest = _FINFO[acc][2] * _FINFO[acc][0]  # the smallest subnormal of the accumulation type
    for x, y in ((a, pos), (a, neg), (pos, neg)):
        u = round_to(round_to(x - y, case.dtype) + round_to(eps, case.dtype), case.dtype)
        u = u if u.ndim else u[None]
        zero = u == 0
        rows = np.zeros(u.shape[:-1], bool)
        if p >= 2.0:
            # a zero distance (torch NaN at p = 2 and 2.5, measured; 0 at p = 3: rejected too),
            # computed as 0: each |u_k|^p below the accumulation type's smallest subnormal
            with np.errstate(under="ignore"):
                rows = np.all(np.abs(u) ** p <= smallest, axis=-1)
        if p < 3.0 and p != 2.0:  # |u_k|^(p-3) or |u_k|^(p-2) infinite at a zero component
            rows = rows | (np.any(zero, axis=-1) & ~np.all(zero, axis=-1))
        if p < 2.0:
            # a row that rounds to 0 in the dtype, exactly nonzero (x - y + eps with |x| tiny: (x - y)
            # rounds to -eps): torch's zero norm, NaN; the spec's finite (exactly 0: both agree)
            exact = np.vectorize(lambda xi, yi: math.fsum((xi, -yi, eps)) != 0.0)(x, y)
            exact = exact if exact.ndim else exact[None]
            rows = rows | (np.all(zero, axis=-1) & np.any(np.broadcast_to(exact, u.shape), axis=-1))
        if np.any(rows):
            return True
    return False


def _triplet_zero_difference_double_backward() -> Divergence:
    loss = "triplet_margin_loss"
    z, ones = np.zeros((2, 2)), np.ones((2, 2))
    return Divergence(
        id="triplet-margin-loss-zero-difference-double-backward",
        backends="torch-*",
        loss=loss,
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order, 1 < p <= 2, at a zero difference u = a - b + eps: p = 2 and a zero "
            "distance, torch's double backward is NaN (its norm_backward's masked u/norm, "
            "differentiated through 1/norm at norm = 0: 0·inf), where the spec's second derivative "
            "is that of its stated first-order convention (a zero gradient at a zero distance): 0; "
            "1 < p < 2 and a zero component of a distance that is not 0, torch's is 0 where "
            "p(p - 1)|u|^(p-2) is infinite (the spec's: NaN, undefined), or NaN where the hinge is "
            "inactive (spec 0); 2 < p < 3 and a zero component, torch's is NaN (|u|^(p-3) = inf "
            "times 0; spec finite: measured p = 2.2, 2.5, 2.9 in float64 and float32, anchor 0, "
            "positive 1, negative [0, 2, 2], and the witness [[0, 2], [2, 2]]; a false alarm of "
            "the default profile, --hypothesis-seed=1015889882). p = 1 (sgn, derivative 0) "
            "and p = 3 agree; p = 2.5 at a zero distance is NaN too (float32, D = 1, eps=0, the "
            "default profile, --hypothesis-seed=31337). Measured on torch 2.13.0+cpu, float64, reduction "
            "'none', eps=0, upstream 0.5, directions 0.5, 1.5, 0.5: anchor and positive zeros(2, 2), "
            "negative ones(2, 2), p=2 -> Hessian-vector products nan (spec 0); positive "
            "[[0.5, 0], [0.5, 0.25]], p=1.5 -> the anchor's 0 at (0, 0) (spec NaN). A distance "
            "that is not 0 but that torch computes as 0 is one too: p = 2, float32, inputs all 0 and "
            "eps = 2^-149 (u^2 underflows float32, the distance is 0) -> NaN, spec finite (a false "
            "alarm of the default profile, --hypothesis-seed=1015889882; torch sums |u|^p in float32 "
            "for float16 and bfloat16 too: 6e-8 in float16 has a distance, 1e-38 in bfloat16 none). "
            "So is a difference that rounds to 0 for 1 < p < 2: float64, p = 1.5, anchor 2^-149, "
            "positive 0, negative 1e-6, eps = 1e-6 ((a - n) rounds to -eps, u to 0) -> the anchor's "
            "Hessian-vector product NaN, spec 3.3e-9 (a false alarm of the default profile, "
            "--hypothesis-seed=3224528097); at anchor 0 exactly both agree."
        ),
        hits=_triplet_zero_difference,
        witnesses=(
            (
                Case(loss, "default", "float64", {"anchor": z, "positive": z, "negative": ones},
                     {"margin": 1.0, "p": 2.0, "eps": 0.0, "swap": False}, "none"),
                ("anchor", "positive", "negative"),
            ),
            (
                Case(loss, "default", "float64",
                     {"anchor": z, "positive": np.array([[0.5, 0.0], [0.5, 0.25]]), "negative": ones},
                     {"margin": 1.0, "p": 1.5, "eps": 0.0, "swap": False}, "none"),
                ("anchor", "positive", "negative"),
            ),
            (
                Case(loss, "default", "float64",
                     {"anchor": z, "positive": ones, "negative": np.array([[0.0, 2.0], [2.0, 2.0]])},
                     {"margin": 1.0, "p": 2.5, "eps": 0.0, "swap": False}, "none"),
                ("anchor", "positive", "negative"),
            ),
            (
                Case(loss, "default", "float32", {"anchor": z, "positive": z, "negative": z},
                     {"margin": 1.0, "p": 2.0, "eps": 2.0**-149, "swap": False}, "none"),
                ("anchor", "positive", "negative"),
            ),
            (
                Case(loss, "default", "float64",
                     {"anchor": np.full((2, 2), 2.0**-149), "positive": z, "negative": np.full((2, 2), 1e-6)},
                     {"margin": 1.0, "p": 1.5, "eps": 1e-6, "swap": False}, "none"),
                ("anchor", "positive", "negative"),
            ),
        ),
        order=2,
        hvp=_triplet_hvp(2, 1.5),
    )  # fmt: skip


def _pairwise_distance_zero_difference_double_backward() -> Divergence:
    """triplet_margin_with_distance_loss with its default distance, pairwise_distance (p = 2,
    eps = 1e-6): the same double backward as triplet_margin_loss's at a zero difference."""
    loss = "triplet_margin_with_distance_loss"
    z = np.zeros((2, 2))
    return Divergence(
        id="pairwise-distance-zero-difference-double-backward",
        backends="torch-*",
        loss=loss,
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order, the default distance_function (pairwise_distance, p = 2, eps = 1e-6) "
            "at a zero difference u = x - y + eps: torch's double backward is NaN, as "
            "triplet-margin-loss-zero-difference-double-backward records for triplet_margin_loss "
            "(the spec: 0). Measured on torch 2.13.0+cpu, float64 (a false alarm of the default "
            "profile under -n 2, --hypothesis-seed=3256082743): anchor and positive 0, negative "
            "1e-6 (a - n + eps = 0), reduction 'none', upstream 0.5, directions 0.5, 1.5, 0.5 -> "
            "the anchor's Hessian-vector product nan (spec 1.2e-10 there in the drawn case). torch "
            "adds eps in the dtype: float32, anchor and positive 0, negative float32(1e-6) gives "
            "a - n + eps = 0 there (2.5e-15 with eps in float64) -> nan, spec 3.4e-10 (a false "
            "alarm of the default profile, --hypothesis-seed=950507255, float32 and bfloat16)."
        ),
        hits=lambda case, wrt: case.variant == "default" and _triplet_zero_difference(case, wrt),
        witnesses=(
            (
                Case(loss, "default", "float64",
                     {"anchor": z, "positive": z, "negative": np.full((2, 2), 1e-6)},
                     {"margin": 1.0, "swap": False}, "none"),
                ("anchor", "positive", "negative"),
            ),
        ),
        order=2,
        hvp=_triplet_hvp(2, 1.5),
    )  # fmt: skip


def _zero_total_weight(case: Case) -> bool:
    """Targets not all ignored whose class weights sum to 0."""
    t = np.asarray(case.arrays["target"]).ravel()
    kept = t[t != int(case.options.get("ignore_index", -100))]
    w = case.arrays.get("weight")
    if kept.size == 0 or w is None:
        return False
    return float(np.sum(round_to(np.asarray(w, np.float64), case.dtype)[kept])) == 0.0


def _smooth_l1_reciprocal_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """Second order along input and target: an element on the quadratic side (|x - y| < β in the
    dtype) where a term u·v/β of autograd's sum may overflow the dtype (u and v at most 2)."""
    from conformance.errormodel import _FINFO

    if not {"input", "target"} <= set(wrt):
        return False
    beta = float(case.options.get("beta", 1.0))
    if beta <= 0 or 4.0 / beta <= _FINFO[case.dtype][1]:
        return False
    x, y = (np.asarray(case.arrays[n], np.float64) for n in ("input", "target"))
    return bool(np.any(np.abs(round_to(x - y, case.dtype)) < beta))


def _poisson_reciprocal_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """Second order, log_input=False: a term u·v·∂²ℓ/∂x∂y = -u·v/(x + eps) of autograd's sum may
    overflow the dtype (x + eps below 4 / max: u and v at most 2) at some element."""
    from conformance.errormodel import _FINFO

    if not wrt or case.options.get("log_input", True):
        return False
    x = round_to(
        np.asarray(case.arrays["input"], np.float64) + float(case.options.get("eps", 1e-8)), case.dtype
    )
    return bool(np.any(np.abs(x) < 4.0 / _FINFO[case.dtype][1]))


def _bce_target_term_underflows(case: Case, wrt: Sequence[str]) -> bool:
    """Second order along input and target: an input ∈ {0, 1}, where ∂²ℓ/∂x∂y = -w/(x(1 - x)) is
    infinite, and a weight so small that w times the upstream and the target's direction (each at
    most 2 in magnitude; over n for 'mean') may underflow the dtype to 0."""
    if not {"input", "target"} <= set(wrt):
        return False
    w = case.arrays.get("weight", np.ones(()))
    x, w = np.broadcast_arrays(np.asarray(case.arrays["input"], np.float64), np.asarray(w, np.float64))
    n = x.size if case.reduction == "mean" else 1
    tiny = _FINFO[case.dtype][2] * _FINFO[case.dtype][0]  # the smallest subnormal
    return bool(np.any((x * (1 - x) == 0) & (np.abs(w) * 4 / n < 2 * tiny)))


def _gaussian_second_order_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """Second order: at some element a term of autograd's sums, u times a direction (each at most
    2) times one of the second derivatives 1/v², d/v², d²/v³ (v = max(var, eps), d = x - y, in the
    dtype), overflows the dtype."""
    if not wrt:
        return False
    x, y, var = (np.asarray(case.arrays[n], np.float64) for n in ("input", "target", "var"))
    if var.ndim == x.ndim - 1:
        var = var[..., None]  # one variance per sample: broadcast over the last dim
    eps = float(case.options.get("eps", 1e-6))
    v = round_to(np.maximum(var, eps), case.dtype)
    d = np.abs(round_to(x - y, case.dtype))
    with np.errstate(all="ignore"):
        worst = 4 * (1 / v**2 + d / v**2 + d**2 / v**3)
    return bool(np.any(~(worst <= _FINFO[case.dtype][1])))


#: the smallest subnormal of each dtype the Stirling witnesses run in
_SUBNORMAL_TARGETS: tuple[tuple[DType, float], ...] = (
    ("float32", 1.401298464324817e-45),
    ("float64", 5e-324),
)


def _poisson_stirling_double_backward_nan(case: Case, wrt: Sequence[str]) -> bool:
    """Second order, full=True: some target t is in (0, 2/max] of the dtype (t rounded to it)."""
    from conformance.errormodel import _FINFO

    if "target" not in wrt or not case.options.get("full"):
        return False
    t = round_to(np.asarray(case.arrays["target"], np.float64), case.dtype)
    edge = float(round_to(np.asarray(2.0 / _FINFO[case.dtype][1]), case.dtype))
    return bool(np.any((t > 0) & (t <= edge)))


def _mean_of_sum_overflows(case: Case, wrt: Sequence[str]) -> bool:
    """The mean (batchmean) is formed from the sum over the batch, and the exact sum (weighted as
    the mean's numerator is) exceeds the dtype's largest value."""
    import oracle
    from conformance.errormodel import _FINFO

    if case.reduction not in _MEAN_OF_SUM[case.loss][1]:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        arrays: dict[str, Any] = dict(case.arrays)
        r = oracle.evaluate(case.loss, reduction="sum", wrt=(), **arrays, **case.options)
    with np.errstate(all="ignore"):
        return bool(abs(float(r.value)) > _FINFO[case.dtype][1])


def _mean_of_sum_witness(loss: str, variant: str) -> Case:
    """float16, 4 samples whose loss is 20000 each: the sum 80000 overflows, the mean does not."""
    x = np.zeros((4, 3))
    x[:, 0] = -20000.0
    target = np.zeros(4, dtype=np.int64)
    by_loss: dict[str, dict[str, np.ndarray[Any, Any]]] = {
        "cross_entropy": {"input": x, "target": target},
        "nll_loss": {"input": x, "target": target},  # log-probabilities: -x[t] = 20000
        "kl_div": {"input": np.full(4, -20000.0), "target": np.ones(4)},
    }
    arrays = by_loss[loss]
    if variant == "probabilities":
        arrays = {"input": x, "target": np.eye(3)[target]}
    return Case(loss, variant, "float16", arrays, _MEAN_OF_SUM[loss][2], _MEAN_OF_SUM[loss][1][0])


#: the losses whose reduction divides a sum formed in the dtype: their variants, those reductions,
#: and the witnesses' options
_MEAN_OF_SUM: dict[str, tuple[tuple[str, ...], tuple[str, ...], dict[str, Any]]] = {
    "cross_entropy": (("class_index", "probabilities"), ("mean",), {"label_smoothing": 0.0}),
    "nll_loss": (("default",), ("mean",), {"ignore_index": -100}),
    "kl_div": (("default",), ("batchmean",), {"log_target": False}),
}


def _means_of_sums() -> tuple[Divergence, ...]:
    return tuple(
        Divergence(
            id=f"{loss.replace('_', '-')}-{reductions[0]}-of-sum-overflow",
            backends="torch-*",
            loss=loss,
            dtypes=("float64", "float32", "float16", "bfloat16"),
            library="torch",
            versions="2.13.*",
            reason=(
                f"reduction={reductions[0]!r} is the sum over the batch divided by the batch's "
                "size (total weight), the sum formed in the input's dtype: inf where the exact "
                "sum exceeds the dtype's largest value and the exact mean does not. Measured on "
                "torch 2.13.0+cpu: cross_entropy on float16 logits (4, 3) with column 0 at -20000, "
                "targets 0 -> inf (exact 20000; 2 samples give 20000), the same with probability "
                "targets, nll_loss, and kl_div(full(8, -20000.), ones(8), "
                "reduction='batchmean'); bfloat16 at -1e38 and float32 at -3e38 the same (8 "
                "samples); and on 4096 x 32000 logits of spread 4 in float16 (the large profile), "
                "a mean loss of 18.1 -> inf. The gradients are right (the spec's). The "
                "elementwise losses' means (mse_loss, l1_loss, binary_cross_entropy, ...) do not "
                "overflow there: torch's mean accumulates wider."
            ),
            hits=_mean_of_sum_overflows,
            witnesses=tuple((_mean_of_sum_witness(loss, v), ()) for v in variants),
        )
        for loss, (variants, reductions, _) in _MEAN_OF_SUM.items()
    )


DIVERGENCES: tuple[Divergence, ...] = (
    Divergence(
        id="bce-float16-grad-0-over-0",
        backends="torch-*",
        loss="binary_cross_entropy",
        dtypes=("float16",),
        library="torch",
        versions="2.13.*",
        reason=(
            "float16 input gradient is NaN or ±inf where the spec's w·(x - y)/max(x(1 - x), eps) "
            "is finite: torch forms (x - y)/max(x(1 - x), eps) in float16 before the weight and the "
            "upstream gradient, and eps = float32(1e-12) rounds to 0 there, so at input ∈ {0, 1} it "
            "divides by 0 and near them it overflows (its float32/float64/bfloat16 results are "
            "right). Measured on torch 2.13.0+cpu: x = [0., 1.], y = [0., 1.] -> grad [nan, nan] "
            "(spec 0); x = 0, y = 2^-24, upstream 0.5 -> nan (spec -29802.3); x = 2^-24, y = 1, "
            "weight 0 -> nan (spec -0)."
        ),
        hits=_bce_half_zero_over_zero,
        witnesses=(
            (
                Case(
                    "binary_cross_entropy",
                    "default",
                    "float16",
                    {"input": np.array([0.0, 1.0]), "target": np.array([0.0, 1.0])},
                    {},
                    "sum",
                ),
                ("input",),
            ),
        ),
    ),
    Divergence(
        id="bce-with-logits-pos-weight-cancellation",
        backends="torch-*",
        loss="binary_cross_entropy_with_logits",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "with pos_weight p < 1 the loss and its input gradient lose relative accuracy ~eps/p: "
            "torch computes (1 - y) x - (1 + (p - 1) y) logsigmoid(x) and the gradient "
            "(p y + 1 - y) sigmoid(x) - p y, where 1 + (p - 1) and p + 1 - 1 cancel. Measured on "
            "torch 2.13.0+cpu, float32, x = 0, y = 1: p = 1e-8 gives loss 0.0 (exact 6.93e-9) and "
            "gradient -1e-8 (exact -5e-9); p = 1e-3 gives loss 6.931383e-4 (exact 6.931472e-4, "
            "~100 ulp)."
        ),
        hits=_bce_logits_pos_weight_cancels,
        witnesses=(
            (
                Case(
                    "binary_cross_entropy_with_logits",
                    "default",
                    "float32",
                    {
                        "input": np.array([0.0]),
                        "target": np.array([1.0]),
                        "pos_weight": np.array([float(np.float32(1e-8))]),
                    },
                    {},
                    "sum",
                ),
                ("input",),
            ),
        ),
    ),
    Divergence(
        id="cross-entropy-smoothing-mean-overflow",
        backends="torch-*",
        loss="cross_entropy",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "reduction='mean' with label_smoothing overflows to inf where the exact mean is finite: "
            "the smoothing term is reduced as (ε/C)·(Σ s_n / Σ w[y]), and the quotient overflows "
            "before the small factor ε/C applies. Measured on torch 2.13.0+cpu, float64: logits "
            "[0, 0], target 0, weight [2.225073858507203e-309, 1], label_smoothing 0.0625 -> inf "
            "(exact 9.734890062045177e+306; 'none' and 'sum' are right); float16: logits "
            "[[0, 0, 0], [0, 0, -64]], targets [0, 1], weight [0, 0.0010004, 1], label_smoothing 1 "
            "-> inf (exact 21922.3; a false alarm of the default profile, --hypothesis-seed=424242)."
        ),
        hits=_ce_smoothing_term_overflows,
        witnesses=(
            (
                Case(
                    "cross_entropy",
                    "class_index",
                    "float64",
                    {
                        "input": np.array([0.0, 0.0]),
                        "target": np.array(0),
                        "weight": np.array([2.225073858507203e-309, 1.0]),
                    },
                    {"ignore_index": -100, "label_smoothing": 0.0625},
                    "mean",
                ),
                (),
            ),
        ),
    ),
    Divergence(
        id="soft-margin-exp-overflow",
        backends="torch-*",
        loss="soft_margin_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "the loss log(1 + exp(-y x)) is inf, and its gradient NaN (inf / inf), where exp(-y x) "
            "overflows the dtype although the loss itself is ≈ -y x and finite: torch evaluates the "
            "formula as written. Measured on torch 2.13.0+cpu, y = -1: float64 x = 709.79 -> inf "
            "(exact 709.79; last finite at 709.78), float32 and bfloat16 from x = 88.73 and 89, "
            "float16 from x = 11.09; soft_margin_loss([1000.], [-1.]) -> inf, gradient nan "
            "(exact 1000, gradient 1)."
        ),
        hits=_soft_margin_exp_overflows,
        witnesses=(
            (
                Case(
                    "soft_margin_loss",
                    "default",
                    "float64",
                    {"input": np.array([1000.0, 2.0]), "target": np.array([-1.0, 1.0])},
                    {},
                    "mean",
                ),
                ("input",),
            ),
        ),
    ),
    Divergence(
        id="nll-loss-zero-total-weight-double-backward",
        backends="torch-*",
        loss="nll_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order, reduction='mean' over a total weight of 0 (targets not ignored, each of "
            "class weight 0): the loss is 0/0 and its gradient NaN (torch's too), but torch's "
            "double backward is 0 (its gradient, -w[t]/Σw, does not depend on the input, so "
            "autograd gives the structural 0), where the spec's second derivative of the "
            "undefined loss is undefined: NaN. Measured on torch 2.13.0+cpu, float64: "
            "nll_loss(zeros(1), tensor(0), weight=zeros(1)), upstream 0.5 -> value nan, gradient "
            "[nan], Hessian-vector product along 0.5: [0.] (spec NaN)."
        ),
        hits=lambda case, wrt: "input" in wrt and case.reduction == "mean" and _zero_total_weight(case),
        witnesses=(
            (
                Case(
                    "nll_loss",
                    "default",
                    "float64",
                    {"input": np.zeros(1), "target": np.array(0, dtype=np.int64), "weight": np.zeros(1)},
                    {"ignore_index": -100},
                    "mean",
                ),
                ("input",),
            ),
        ),
        order=2,
        hvp={"upstream": np.array(0.5), "directions": {"input": np.array([0.5])}},
    ),
    Divergence(
        id="nll-loss-channels-last-backward-raises",
        backends="torch-*",
        loss="nll_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "raises on valid input: the input gradient of nll_loss on a 4-D (N, C, H, W) input in "
            "channels_last memory format fails with 'RuntimeError: grad_input must be contiguous', "
            "for every reduction (the forward is right; cross_entropy on the same layout works, "
            "its log_softmax output being contiguous). Measured on torch 2.13.0+cpu: nll_loss("
            "zeros(2, 3, 2, 2).contiguous(memory_format=torch.channels_last), zeros(2, 2, 2)).backward()."
        ),
        hits=lambda case, wrt: "input" in wrt and case.arrays["input"].ndim == 4,
        witnesses=(
            (
                Case(
                    "nll_loss",
                    "default",
                    "float32",
                    {"input": np.zeros((2, 3, 2, 2)), "target": np.zeros((2, 2, 2), dtype=np.int64)},
                    {"ignore_index": -100},
                    "mean",
                ),
                ("input",),
                "channels_last",
            ),
        ),
        layouts=("channels_last",),
    ),
    Divergence(
        id="kl-div-target-grad-nan-at-zero",
        backends="torch-*",
        loss="kl_div",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "with log_target=False the target gradient at target = 0 is NaN where the spec's "
            "d/dy [xlogy(y, y) - y x] = log y + 1 - x is -inf (its one-sided limit): torch's "
            "xlogy backward gives y/y = 0/0 for its second argument (pytorch/pytorch#89558). "
            "Measured on torch 2.13.0+cpu, float64: kl_div(log([.9, .1]), [0., 1.], "
            "reduction='sum') target gradient [nan, 3.3026] (spec [-inf, 3.3026])."
        ),
        hits=_target_zero_grad("log_target", False),
        witnesses=(
            (
                Case(
                    "kl_div",
                    "default",
                    "float64",
                    {"input": np.log(np.array([0.9, 0.1])), "target": np.array([0.0, 1.0])},
                    {"log_target": False},
                    "sum",
                ),
                ("target",),
            ),
        ),
    ),
    Divergence(
        id="kl-div-target-grad-subnormal-target",
        backends="torch-*",
        loss="kl_div",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "with log_target=False the target gradient loses accuracy where the target is subnormal "
            "(or nearly, after the upstream): torch's xlogy backward computes upstream·y / y, whose "
            "product is subnormal, for the spec's exact 1 of d/dy xlogy(y, y) = log y + 1. "
            "Measured on torch 2.13.0+cpu, float64: kl_div(zeros(1, 4), [[1, 1, 1, 2.2250738585e-313]], "
            "'sum') with upstream 0.25: gradient -179.72733599931806 (exact -179.72733599930694, "
            "~390 ulp)."
        ),
        hits=_kl_target_grad_subnormal,
        witnesses=(
            (
                Case(
                    "kl_div",
                    "default",
                    "float64",
                    {"input": np.zeros((1, 4)), "target": np.array([[1.0, 1.0, 1.0, 2.2250738585e-313]])},
                    {"log_target": False},
                    "mean",
                ),
                ("target",),
            ),
        ),
    ),
    Divergence(
        id="poisson-nll-full-target-grad-nan-at-zero",
        backends="torch-*",
        loss="poisson_nll_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "with full=True the target gradient at target <= 0 is NaN where the spec's is finite: "
            "torch masks the Stirling term to 0 where target <= 1 with masked_fill, whose backward "
            "still multiplies the term's gradient log y + 1/(2y) (NaN at y <= 0) by the mask. "
            "Measured on torch 2.13.0+cpu, float64: poisson_nll_loss(zeros(4), [0., 1., 2., 3.], "
            "full=True, reduction='sum') target gradient [nan, 0, 0.9431, 1.2653] (spec [0, 0, "
            "0.9431, 1.2653]); target [[-1e-8]], input [[0.]], log_input=False -> nan (spec "
            "18.4207; found by the default profile, --hypothesis-seed=31337)."
        ),
        hits=lambda case, wrt: (
            "target" in wrt
            and bool(case.options.get("full"))
            and bool(np.any(np.asarray(case.arrays["target"]) <= 0))
        ),
        witnesses=(
            (
                Case(
                    "poisson_nll_loss",
                    "default",
                    "float64",
                    {"input": np.zeros(4), "target": np.array([0.0, 1.0, 2.0, 3.0])},
                    {"log_input": True, "full": True, "eps": 1e-8},
                    "sum",
                ),
                ("target",),
            ),
        ),
    ),
    Divergence(
        id="gaussian-nll-grad-reciprocal-overflow",
        backends="torch-*",
        loss="gaussian_nll_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "the gradients are NaN or ±inf where the clamped variance max(var, eps) is below "
            "1/max of the dtype, although the exact gradients are finite: torch's backward of "
            "(x - y)²/v forms upstream·½/v first, which overflows. The default eps = 1e-6 is such "
            "a variance in float16 (1/1e-6 > 65504). Measured on torch 2.13.0+cpu, float16: "
            "gaussian_nll_loss(zeros(()), zeros(()), zeros(()), reduction='none') input gradient "
            "nan (exact 0); float32 with eps = 1.4e-45 likewise."
        ),
        hits=_gaussian_reciprocal_overflows,
        witnesses=(
            (
                Case(
                    "gaussian_nll_loss",
                    "default",
                    "float16",
                    {"input": np.zeros(()), "target": np.zeros(()), "var": np.zeros(())},
                    {"full": False, "eps": float(np.float16(1e-6))},
                    "none",
                ),
                ("input",),
            ),
        ),
    ),
    Divergence(
        id="poisson-nll-exp-overflow-before-the-reduction",
        backends="torch-*",
        loss="poisson_nll_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "log_input=True, reduction 'mean' or 'sum': torch forms each element's exp(x) - t·x in "
            "the input's dtype, inf where exp(x) overflows it, and reduces those: inf where the exact "
            "mean (or a sum with negative terms) is finite; the input gradient u·exp(x) (over n) is "
            "inf there too, also for 'none' with |u| < 1: float16 x = 11.5, upstream 0.5 -> inf "
            "(exact 49357.9). Measured on torch 2.13.0+cpu, float16 (a "
            "false alarm of the default profile, --hypothesis-seed=2170178123): "
            "poisson_nll_loss([12., 0., 0.], zeros(3), reduction='mean') -> inf (exact 54251.6; "
            "'none' gives [inf, 1, 1], its first element beyond float16's range). mse_loss and "
            "gaussian_nll_loss do the same where an element overflows (float16 mse_loss([300., 0., "
            "0.], zeros(3)) -> inf, exact 30000), which their drawn inputs do not reach."
        ),
        hits=_poisson_exp_overflows,
        witnesses=(
            (
                Case(
                    "poisson_nll_loss",
                    "default",
                    "float16",
                    {"input": np.array([12.0, 0.0, 0.0]), "target": np.zeros(3)},
                    {"log_input": True, "full": False, "eps": 1e-8},
                    "mean",
                ),
                (),
            ),
        ),
    ),
    Divergence(
        id="gaussian-nll-square-overflow",
        backends="torch-*",
        loss="gaussian_nll_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "the loss is inf where it is finite: torch evaluates 0.5 * (log(v) + (x - y)**2 / v) "
            "as written, and (x - y)² or (x - y)²/v overflows the dtype before the halving. "
            "The var gradient likewise forms ((x - y)²/v)/v before multiplying by upstream·½. "
            "Measured on torch 2.13.0+cpu, float16: gaussian_nll_loss([23.], [0.], [0.0078125], "
            "eps=0.0078125, reduction='none') -> inf (exact 33853.57); x = 4.18359375, y = "
            "5.1171875, var = 0, eps = 0.003063201904296875, upstream 0.5: var gradient -inf "
            "(exact -23140.65)."
        ),
        hits=_gaussian_square_overflows,
        witnesses=(
            (
                Case(
                    "gaussian_nll_loss",
                    "default",
                    "float16",
                    {"input": np.array([23.0]), "target": np.array([0.0]), "var": np.array([0.0078125])},
                    {"full": False, "eps": 0.0078125},
                    "none",
                ),
                (),
            ),
        ),
    ),
    Divergence(
        id="squared-euclidean-distance-overflow",
        backends="torch-*",
        loss="triplet_margin_with_distance_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "distance_function = the squared Euclidean distance, (x - y).pow(2).sum(-1) in the "
            "dtype: a distance beyond the dtype's range is inf, and the loss "
            "d(a, p) - d(a, n) + margin inf where the difference of the two distances is finite. "
            "Measured on torch 2.13.0+cpu, float16 (a false alarm of the default profile, "
            "--hypothesis-seed=583268384): anchor 51 ×5, positive -64 ×5, negative 0 ×5, "
            "reduction 'none' -> inf (d(a, p) = 66125 > 65504; spec 53121)."
        ),
        hits=_squared_distance_overflows,
        witnesses=(
            (
                Case(
                    "triplet_margin_with_distance_loss",
                    "squared_euclidean_distance",
                    "float16",
                    {"anchor": np.full(5, 51.0), "positive": np.full(5, -64.0), "negative": np.zeros(5)},
                    {"margin": 1.0, "swap": False, "distance_function": "squared_euclidean_distance"},
                    "none",
                ),
                (),
            ),
        ),
    ),
    *_weighted_means(),
    *_means_of_sums(),
    _weighted_mean_double_backward("l1_loss"),
    _weighted_mean_double_backward("mse_loss"),
    _empty_batch_garbage("multi_margin_loss"),
    _empty_batch_garbage("multilabel_margin_loss"),
    Divergence(
        id="cosine-embedding-float16-eps-vanishes",
        backends="torch-*",
        loss="cosine_embedding_loss",
        dtypes=("float16",),
        library="torch",
        versions="2.13.*",
        reason=(
            "float16: the loss is NaN for a zero vector, where the spec's cos = 0 / sqrt(ε·ε) = 0 "
            "(ε = 1e-12 added to each squared norm): torch adds ε in float16, where it rounds to 0, "
            "and divides 0 by 0 (float32, bfloat16 and float64 keep ε). Measured on torch "
            "2.13.0+cpu: cosine_embedding_loss(zeros(1, 1), zeros(1, 1), tensor([-1.]), "
            "'none') in float16 -> [nan] (spec 0). Likewise the product of the squared norms "
            "overflows float16: input1 [4, 0], input2 [64, 0], y = 1 -> 1. (16·4096 > 65504: "
            "cos = 0; spec 3.1e-14), and underflows: input1 [2^-6], input2 [2^-7], y = -1 -> inf "
            "(spec 0.99999999)."
        ),
        hits=_cosine_float16_eps_vanishes,
        witnesses=(
            (
                Case(
                    "cosine_embedding_loss",
                    "default",
                    "float16",
                    {"input1": np.zeros((1, 1)), "input2": np.zeros((1, 1)), "target": np.array([-1.0])},
                    {"margin": 0.0},
                    "none",
                ),
                (),
            ),
        ),
    ),
    _triplet_underflow(),
    _triplet_double_backward_underflow(),
    _triplet_component_double_backward_overflow(),
    _triplet_zero_difference_double_backward(),
    _pairwise_distance_zero_difference_double_backward(),
    Divergence(
        id="poisson-nll-double-backward-reciprocal-overflow",
        backends="torch-*",
        loss="poisson_nll_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order, log_input=False: torch's double backward forms each element's "
            "-v/(input + eps) in the dtype, ±inf where 1/(input + eps) overflows, and sums them: "
            "NaN (inf - inf) where directions of both signs meet, where the exact Hessian-vector "
            "product is beyond the range (-inf). Measured on torch 2.13.0+cpu, float64: "
            "poisson_nll_loss(zeros(4), tensor(0.), log_input=False, eps=5e-324, reduction='mean'), "
            "upstream 2, directions input [0.5, 0.5, 0.5, -0.5], target 2 -> the target's "
            "Hessian-vector product nan (spec: 2/4 · Σ -v/(5e-324) = -inf); and where only the "
            "product with u·v overflows: input 0, target 1, eps = 1.1125369292536007e-308, "
            "'none', upstream -1.455, directions input -0.818, target -1.637 -> the input's nan "
            "(spec +inf: t·u·v_x/(x + eps)² dominates; a false alarm of the default profile under "
            "-n 2, --hypothesis-seed=993824140); at eps = 2.1e-308 torch agrees."
        ),
        hits=_poisson_reciprocal_overflows,
        witnesses=(
            (
                Case(
                    "poisson_nll_loss",
                    "default",
                    "float64",
                    {"input": np.zeros(4), "target": np.array(0.0)},
                    {"log_input": False, "full": False, "eps": 5e-324},
                    "mean",
                ),
                ("input", "target"),
            ),
        ),
        order=2,
        hvp={
            "upstream": np.array(2.0),
            "directions": {"input": np.array([0.5, 0.5, 0.5, -0.5]), "target": np.array(2.0)},
        },
    ),
    Divergence(
        id="smooth-l1-double-backward-reciprocal-overflow",
        backends="torch-*",
        loss="smooth_l1_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order along input and target, on the quadratic side |x - y| < β with β so "
            "small that 1/β times the upstream and a direction overflows: torch's double backward "
            "forms u·v_x/β and -u·v_y/β apart, each ±inf, and sums them: NaN (inf - inf), where "
            "the exact Hessian-vector product u·(v_x - v_y)/β is beyond the range (-inf). Measured "
            "on torch 2.13.0+cpu, float64 (a false alarm of the default profile, "
            "--hypothesis-seed=2169329989): smooth_l1_loss(tensor(0.), tensor(0.), "
            "beta=2.2250738585e-313, reduction='none'), upstream 0.5, directions input 0.5, "
            "target 2 -> both Hessian-vector products nan (spec: -inf and inf). In float32 at "
            "beta=1e-39, where the terms stay finite, torch agrees (-inf, inf)."
        ),
        hits=_smooth_l1_reciprocal_overflows,
        witnesses=(
            (
                Case(
                    "smooth_l1_loss",
                    "default",
                    "float64",
                    {"input": np.array(0.0), "target": np.array(0.0)},
                    {"beta": 2.2250738585e-313},
                    "none",
                ),
                ("input", "target"),
            ),
        ),
        order=2,
        hvp={"upstream": np.array(0.5), "directions": {"input": np.array(0.5), "target": np.array(2.0)}},
    ),
    Divergence(
        id="bce-double-backward-target-term-underflow",
        backends="torch-*",
        loss="binary_cross_entropy",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order along input and target, at an input in {0, 1} where ∂²ℓ/∂x∂y = "
            "-w/(x(1 - x)) is infinite: torch differentiates its target gradient -w·logit(x) "
            "through logit's backward, which divides the incoming u·w·v_y (over n for 'mean'), "
            "formed in the dtype, by x(1 - x) = 0; where a tiny weight makes that product "
            "underflow to 0 it is 0/0 = NaN, where the exact term is ∓inf. Measured on torch "
            "2.13.0+cpu, float64 (a false alarm of the default profile, --hypothesis-seed="
            "1444062066): binary_cross_entropy(zeros(4), zeros(4), weight=tensor(5e-324), "
            "reduction='mean'), upstream 0.5, directions input 0.5, target 2 -> the input's "
            "Hessian-vector product nan (spec -inf); with reduction='sum' (no underflow) torch "
            "agrees: -inf."
        ),
        hits=_bce_target_term_underflows,
        witnesses=(
            (
                Case(
                    "binary_cross_entropy",
                    "default",
                    "float64",
                    {"input": np.zeros(4), "target": np.zeros(4), "weight": np.array(5e-324)},
                    {},
                    "mean",
                ),
                ("input", "target"),
            ),
        ),
        order=2,
        hvp={"upstream": np.array(0.5), "directions": {"input": np.full(4, 0.5), "target": np.full(4, 2.0)}},
    ),
    Divergence(
        id="gaussian-nll-double-backward-overflow",
        backends="torch-*",
        loss="gaussian_nll_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order at a variance clamped to a tiny eps, where the second derivatives "
            "1/v², (x - y)/v² and (x - y)²/v³ (v = max(var, eps)) overflow the dtype: torch's "
            "double backward forms each element's term in the dtype, ±inf, and sums them (over "
            "the directions, and over the last dim where var has one entry per sample): NaN "
            "(inf - inf) where terms of both signs meet, where the exact sum is ±inf. Measured on "
            "torch 2.13.0+cpu, float64 (a false alarm of the default profile, --hypothesis-seed="
            "1444062066): gaussian_nll_loss(zeros((1, 2)), tensor(1.), zeros(1), eps=2.99e-118, "
            "reduction='none'), upstream [[-2, 0.5]], directions input 0.5, target 1.5, var 0.75 "
            "-> var's Hessian-vector product nan (spec -inf: the upstream sums to -1.5 times a "
            "second derivative beyond the range)."
        ),
        hits=_gaussian_second_order_overflows,
        witnesses=(
            (
                Case(
                    "gaussian_nll_loss",
                    "default",
                    "float64",
                    {"input": np.zeros((1, 2)), "target": np.array(1.0), "var": np.zeros(1)},
                    {"full": False, "eps": 2.99e-118},
                    "none",
                ),
                ("input", "target", "var"),
            ),
        ),
        order=2,
        hvp={
            "upstream": np.array([[-2.0, 0.5]]),
            "directions": {"input": np.full((1, 2), 0.5), "target": np.array(1.5), "var": np.array([0.75])},
        },
    ),
    Divergence(
        id="poisson-nll-full-stirling-double-backward-nan",
        backends="torch-*",
        loss="poisson_nll_loss",
        dtypes=("float64", "float32", "float16", "bfloat16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order, full=True: the target's Hessian-vector product is NaN at a target t "
            "with 0 < t <= 2/max of the dtype, where the Stirling term is masked to 0 (t <= 1) and "
            "so is each of its derivatives in the spec: torch's double backward of the masked "
            "term forms an intermediate that overflows to inf there and multiplies it by the "
            "mask's 0. The first-order gradient is right (the spec's). Measured on torch "
            "2.13.0+cpu (found by the default profile, --hypothesis-seed=617472154): "
            "poisson_nll_loss([0.], [1.4e-45], log_input=False, full=True, reduction='none'), "
            "float32, upstream 0.5, directions input 0.5, target 2 -> the target's product nan "
            "(spec -2.5e7, the mixed term -u·v_x/(x + eps)); float64 target 5e-324 the same. "
            "The boundary, scanned over every float16 and bfloat16 value in (0, 1) and 20000 "
            "log-spaced float32 and float64 ones, with the seven values around it checked bit "
            "by bit: NaN exactly where t <= 2/max rounded to the dtype."
        ),
        hits=_poisson_stirling_double_backward_nan,
        witnesses=tuple(
            (
                Case(
                    "poisson_nll_loss",
                    "default",
                    dtype,
                    {"input": np.array([0.0]), "target": np.array([t])},
                    {"log_input": False, "full": True, "eps": 1e-8},
                    "none",
                ),
                ("input", "target"),
            )
            for dtype, t in _SUBNORMAL_TARGETS
        ),
        order=2,
        hvp={
            "upstream": np.array([0.5]),
            "directions": {"input": np.array([0.5]), "target": np.array([2.0])},
        },
    ),
    Divergence(
        id="cosine-similarity-float16-norm-out-of-range",
        backends="torch-*",
        loss="triplet_margin_with_distance_loss",
        dtypes=("float16",),
        library="torch",
        versions="2.13.*",
        reason=(
            "float16, distance_function = 1 - cosine_similarity: torch clamps each norm at eps "
            "in float16, where eps = 1e-8 rounds to 0, so a zero vector gives 0/0 = NaN where the "
            "spec's cos = 0 / max(0, 1e-8)² = 0 (the float32, bfloat16 and float64 clamps keep "
            "eps); a norm above 65504 is inf (x/inf = 0). Measured on torch 2.13.0+cpu: "
            "F.cosine_similarity(zeros(3), tensor([1., 1., 0.]), dim=-1) in float16 -> nan "
            "(float32: 0.); the triplet loss of three zero vectors (D = 1, reduction 'none') -> nan "
            "(spec 1.0)."
        ),
        hits=_cosine_similarity_float16_norm_out_of_range,
        witnesses=(
            (
                Case(
                    "triplet_margin_with_distance_loss",
                    "cosine_distance",
                    "float16",
                    {"anchor": np.zeros(1), "positive": np.zeros(1), "negative": np.zeros(1)},
                    {"margin": 1.0, "swap": False, "distance_function": "cosine_distance"},
                    "none",
                ),
                (),
            ),
        ),
    ),
    Divergence(
        id="cosine-similarity-double-backward-zero-vector",
        backends="torch-*",
        loss="triplet_margin_with_distance_loss",
        dtypes=("float64", "float32", "bfloat16", "float16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "second order, distance_function = 1 - cosine_similarity: torch's double backward is NaN "
            "w.r.t. a zero vector, where its first derivative is finite (the norm clamped at "
            "eps = 1e-8: 1e8-sized) and so is the spec's second derivative (of the clamped norm). "
            "Measured on torch 2.13.0+cpu, float64: anchor [0., 0.], positive [1., 2.], negative "
            "[3., 1.], margin 1, reduction 'none', upstream 1, directions 0.5 everywhere -> the "
            "anchor's Hessian-vector product [nan, nan] (the positive's and negative's finite: "
            "[-8944271.9, 4472135.95], [-3162277.66, 9486832.98]); three zero vectors -> NaN for all. "
            "A vector whose squares underflow in the dtype is zero there: float32, anchor and "
            "positive ones(4), negative full(4, 1e-30), directions 0.5, 2, 0.5 -> the negative's "
            "[nan] ×4 (spec -1e16)."
        ),
        hits=_cosine_similarity_zero_vector,
        witnesses=(
            (
                Case(
                    "triplet_margin_with_distance_loss",
                    "cosine_distance",
                    "float64",
                    {
                        "anchor": np.zeros(2),
                        "positive": np.array([1.0, 2.0]),
                        "negative": np.array([3.0, 1.0]),
                    },
                    {"margin": 1.0, "swap": False, "distance_function": "cosine_distance"},
                    "none",
                ),
                ("anchor", "positive", "negative"),
            ),
        ),
        order=2,
        hvp={
            "upstream": np.array(1.0),
            "directions": {n: np.full(2, 0.5) for n in ("anchor", "positive", "negative")},
        },
    ),
    Divergence(
        id="cosine-embedding-grad-intermediate-underflow",
        backends="torch-*",
        loss="cosine_embedding_loss",
        dtypes=("float64", "float32", "bfloat16", "float16"),
        library="torch",
        versions="2.13.*",
        reason=(
            "the gradient loses its accuracy where cos is tiny against large norms: torch's autograd "
            "of prod_sum / sqrt(m1·m2) forms prod_sum / denom² · (0.5 / denom), a subnormal number "
            "there, and multiplies it by m2·2x1 afterwards. Measured on torch 2.13.0+cpu, float32: "
            "input1 [6, 0, 0], input2 [1e-30, 350, 350], y = -1, margin 0, upstream 0.5 -> input1 "
            "gradient [-1.72e-39, ...] where the spec's is [4.69e-48, ...] (error 1.07 × the error "
            "model's bound; bfloat16 alike); float16, input1 [0.125], input2 [0.015625], y = -1 "
            "-> gradient -inf (spec 2.56e-10: m1·m2 = 3.8e-6 is subnormal in float16)."
        ),
        hits=_cosine_grad_intermediate_underflows,
        witnesses=(),  # 1.07 × the bound: a witness would pin the error model's constant, not torch
    ),
)


def known(
    backend: Any, case: Case, wrt: Sequence[str], layout: str = "contiguous", order: int = 1
) -> Divergence | None:
    """The divergence ``case`` (in ``layout``) hits on ``backend`` in a check of derivatives up to
    ``order``; None for a loss replaced by an override (a divergence belongs to the implementation
    it was measured on)."""
    if case.loss in getattr(backend, "overrides", {}):
        return None
    while hasattr(backend, "overrides") and hasattr(backend, "base"):  # a loss not replaced runs on
        backend = backend.base  # the wrapped backend: its divergences are that backend's, by its name
    for d in DIVERGENCES:
        if d.applies(backend, case, wrt, layout, order):
            return d
    return None
