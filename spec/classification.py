"""Classification losses: binary (element-wise) and multi-class (over a class axis).

Multi-class expressions are per sample: ``input[k]`` is the logit of class ``k`` of one sample, sums
run over ``k`` (or ``i``) in ``[0, C)``, and the class axis of the tensor is dim 1 (dim 0 for an
unbatched ``(C)`` input), as in torch.
"""

from __future__ import annotations

import sympy as sp

from spec._core import (
    CLASS_INDEX,
    EPSILON_F32_1E12,
    NONNEGATIVE,
    PROBABILITIES,
    REAL,
    SIGN,
    UNIT,
    Arg,
    C,
    Convention,
    Param,
    choice,
    hinge,
    i,
    k,
    loss,
)

# ---------------------------------------------------------------------------------------------
# binary_cross_entropy


#: the eps of torch's BCE double backward: the double literal 1e-12 (not the first order's float32)
BCE_EPS2 = sp.Rational(1, 10**12)


def _bce_conventions(input: sp.Symbol, target: sp.Symbol, weight: sp.Symbol) -> tuple[Convention, ...]:
    eps = EPSILON_F32_1E12
    unclamped = (sp.log(input) > -100) & (sp.log(1 - input) > -100)
    return (
        Convention(
            "bce_log_clamp",
            "Each log is clamped at -100 in the forward (torch docs), so x in {0, 1} gives a finite "
            "loss of at most 100·w.",
            points=(
                ({"input": 0.0, "target": 1.0, "weight": 1.0}, {"value": 100.0}),
                ({"input": 1.0, "target": 0.0, "weight": 1.0}, {"value": 100.0}),
                ({"input": 0.0, "target": 0.0, "weight": 1.0}, {"value": 0.0}),
                ({"input": 0.0, "target": 0.5, "weight": 1.0}, {"value": 50.0}),
            ),
        ),
        Convention(
            "bce_input_grad_floor",
            "The input gradient is w (x - y) / max(x (1 - x), eps), eps = float32(1e-12) in every "
            "dtype (aten binary_cross_entropy_backward), not the derivative of the clamped forward "
            "(which is 0 where the clamp is active).",
            grads={"input": weight * (input - target) / sp.Max(input * (1 - input), eps)},
            agrees_where=unclamped & (input * (1 - input) > eps),
            # torch's double backward is not the derivative of this gradient: aten
            # binary_cross_entropy_double_backward (FunctionsManual.cpp) takes
            # (x² - 2xy + y) / ((x + eps2)² (1 - x + eps2)²) and ..._double_backward_target
            # -1 / max(x (1 - x), eps2), eps2 = 1e-12 a double there (float32(1e-12) once cast to a
            # float32 tensor). Measured on torch 2.13.0+cpu, float64, w = 1.5: x = 1e-13, y = 0.5 ->
            # H_xx 6.198347107425623e+23 (the derivative of the floored gradient: 1.5e12),
            # H_xy -1.5e12 (1.5 / 1e-12; the floor's float32(1e-12) would give -1.5000000060e12).
            hessian={
                ("input", "input"): weight
                * (input**2 - 2 * input * target + target)
                / ((input + BCE_EPS2) ** 2 * (1 - input + BCE_EPS2) ** 2),
                ("input", "target"): -weight / sp.Max(input * (1 - input), BCE_EPS2),
            },
            points=(
                # torch 2.13 float64 at x=0, y=0.5: -0.5/float32(1e-12) = -500000001997.9014 (fact sheet)
                ({"input": 0.0, "target": 0.5, "weight": 1.0}, {"grad_input": -500000001997.9014}),
            ),
        ),
        Convention(
            "bce_target_grad_unclamped",
            "The target gradient is -w logit(x) = w (log(1 - x) - log x), without the forward's "
            "clamp (FunctionsManual binary_cross_entropy_target_backward): +inf at x = 0.",
            grads={"target": weight * (sp.log(1 - input) - sp.log(input))},
            agrees_where=unclamped,
        ),
    )


@loss(
    family="classification",
    signature=("input", "target", "weight"),
    args=(
        Arg("input", UNIT, differentiable=True, checked=True),
        Arg("target", UNIT, differentiable=True, checked=True),
        Arg("weight", NONNEGATIVE, optional=True, broadcast="input"),
    ),
    conventions=_bce_conventions,
)
def binary_cross_entropy(input: sp.Symbol, target: sp.Symbol, weight: sp.Symbol) -> sp.Expr:
    r"""Binary cross entropy of probabilities, each log clamped at -100.

    .. math:: \ell = -w\,[\,y \max(\log x, -100) + (1 - y) \max(\log(1 - x), -100)\,]

    Convention: torch.nn.functional.binary_cross_entropy (log clamp; input gradient floored at
    float32(1e-12); unclamped target gradient).
    Reference: PyTorch documentation, ``torch.nn.BCELoss``.
    """
    return -weight * (target * sp.Max(sp.log(input), -100) + (1 - target) * sp.Max(sp.log(1 - input), -100))


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits


@loss(
    family="classification",
    signature=("input", "target", "weight", "pos_weight"),
    args=(
        Arg("input", REAL, differentiable=True),
        Arg("target", UNIT, differentiable=True),
        Arg("weight", NONNEGATIVE, optional=True, broadcast="input"),
        Arg("pos_weight", NONNEGATIVE, optional=True, broadcast="last_dim"),
    ),
)
def binary_cross_entropy_with_logits(
    input: sp.Symbol, target: sp.Symbol, weight: sp.Symbol, pos_weight: sp.Symbol
) -> sp.Expr:
    r"""Binary cross entropy of logits, with a weight on the positive term.

    .. math:: \ell = -w\,[\,p\,y \log \sigma(x) + (1 - y) \log(1 - \sigma(x))\,],
              \quad \sigma(x) = 1 / (1 + e^{-x})

    Convention: torch.nn.functional.binary_cross_entropy_with_logits; targets are not range-checked.
    Reference: PyTorch documentation, ``torch.nn.BCEWithLogitsLoss``.
    """
    sigma = 1 / (1 + sp.exp(-input))
    return -weight * (pos_weight * target * sp.log(sigma) + (1 - target) * sp.log(1 - sigma))


# ---------------------------------------------------------------------------------------------
# nll_loss


@loss(
    family="classification",
    signature=("input", "target", "weight", "ignore_index"),
    args=(
        Arg("input", REAL, axis="class", differentiable=True),
        Arg("target", CLASS_INDEX, axis="index"),
        Arg("weight", NONNEGATIVE, axis="class", optional=True, broadcast="class"),
    ),
    params=(Param("ignore_index", -100, sp.Integers, "target value whose samples are ignored", True),),
    mean_weight=lambda weight, target: weight[target],
    ignore="ignore_index",
)
def nll_loss(input: sp.IndexedBase, target: sp.Symbol, weight: sp.IndexedBase) -> sp.Expr:
    r"""Negative log likelihood: minus the (weighted) input at the target class.

    .. math:: \ell = -w_y\, x_y

    ``input`` holds log-probabilities by convention (any reals are accepted); shapes (C), (N, C)
    and (N, C, d1, ..., dk) — the seed documents' NLLLoss2d is the (N, C, H, W) case.
    ``reduction='mean'`` divides by the sum of ``w_y`` over non-ignored samples (NaN when it is 0).
    Convention: torch.nn.functional.nll_loss (LossNLL.cpp); the gradient is -w_y at the target
    class and 0 elsewhere, 0 for ignored samples.
    Reference: PyTorch documentation, ``torch.nn.NLLLoss``.
    """
    return -weight[target] * input[target]


# ---------------------------------------------------------------------------------------------
# soft_margin_loss


@loss(
    family="classification",
    signature=("input", "target"),
    args=(
        Arg("input", REAL, differentiable=True),
        Arg("target", SIGN),  # torch: "not differentiable with respect to argument 'target'"
    ),
)
def soft_margin_loss(input: sp.Symbol, target: sp.Symbol) -> sp.Expr:
    r"""Two-class logistic loss of a score against a label in {-1, 1}.

    .. math:: \ell = \log(1 + e^{-y x})

    ``reduction='mean'`` divides by the number of elements. Targets are documented as -1 or 1 and
    not checked; torch does not differentiate w.r.t. the target (it raises if asked).
    Convention: torch.nn.functional.soft_margin_loss.
    Reference: PyTorch documentation, ``torch.nn.SoftMarginLoss``.
    """
    return sp.log(1 + sp.exp(-target * input))


# ---------------------------------------------------------------------------------------------
# multilabel_soft_margin_loss


@loss(
    family="classification",
    signature=("input", "target", "weight"),
    args=(
        Arg("input", REAL, axis="class", differentiable=True),
        Arg("target", UNIT, axis="class", differentiable=True),
        # differentiable: torch multiplies by it in plain tensor arithmetic
        Arg("weight", NONNEGATIVE, axis="class", differentiable=True, optional=True, broadcast="class"),
    ),
    class_dim="last",
)
def multilabel_soft_margin_loss(
    input: sp.IndexedBase, target: sp.IndexedBase, weight: sp.IndexedBase
) -> sp.Expr:
    r"""One-vs-all logistic loss over C labels, averaged over the labels.

    .. math:: \ell = \frac{1}{C} \sum_k -w_k \left[ y_k \log \sigma(x_k)
              + (1 - y_k) \log (1 - \sigma(x_k)) \right]

    The labels are the LAST dim of ``input`` (``(C)``, ``(N, C)``, ``(N, d, C)``: unlike
    cross_entropy's dim 1); the per-sample loss is the mean over them, then the reduction applies
    over the samples. Targets are documented as 0 or 1 and not checked.
    Convention: torch.nn.functional.multilabel_soft_margin_loss (logsigmoid: stable at |x| = 1000).
    Reference: PyTorch documentation, ``torch.nn.MultiLabelSoftMarginLoss``.
    """
    sigma = 1 / (1 + sp.exp(-input[k]))
    term = -weight[k] * (target[k] * sp.log(sigma) + (1 - target[k]) * sp.log(1 - sigma))
    return sp.Sum(term, (k, 0, C - 1)) / C


# ---------------------------------------------------------------------------------------------
# cross_entropy


def _log_softmax(x: sp.IndexedBase, at: sp.Basic) -> sp.Expr:
    return x[at] - sp.log(sp.Sum(sp.exp(x[i]), (i, 0, C - 1)))


_CE_SIGNATURE = ("input", "target", "weight", "ignore_index", "label_smoothing")
_LABEL_SMOOTHING = Param("label_smoothing", 0.0, sp.Interval(0, 1), "mass moved uniformly onto all C classes")


@loss(
    family="classification",
    signature=_CE_SIGNATURE,
    variant="class_index",
    args=(
        Arg("input", REAL, axis="class", differentiable=True),
        Arg("target", CLASS_INDEX, axis="index"),
        Arg("weight", NONNEGATIVE, axis="class", optional=True, broadcast="class"),
    ),
    params=(
        Param("ignore_index", -100, sp.Integers, "target value whose samples are ignored", True),
        _LABEL_SMOOTHING,
    ),
    mean_weight=lambda weight, target: weight[target],
    ignore="ignore_index",
    properties=("shift_invariant", "grad_sums_to_zero"),
)
def cross_entropy__class_index(
    input: sp.IndexedBase, target: sp.Symbol, weight: sp.IndexedBase, label_smoothing: sp.Symbol
) -> sp.Expr:
    r"""Cross entropy of logits against a class index, with optional label smoothing.

    .. math:: \ell = (1 - \varepsilon)\, w_y (-\log p_y) + \frac{\varepsilon}{C} \sum_k w_k (-\log p_k),
              \quad p = \operatorname{softmax}(x)

    ``reduction='mean'`` divides by the sum of ``w_y`` over non-ignored samples (NaN when that is 0).
    Convention: torch.nn.functional.cross_entropy, class-index path (LossNLL.cpp); smoothing uses
    every class weight ``w_k`` and the same denominator as the unsmoothed loss.
    Reference: PyTorch documentation, ``torch.nn.CrossEntropyLoss``; Szegedy et al. (2016).
    """
    eps = label_smoothing
    nll = -weight[target] * _log_softmax(input, target)
    smooth = sp.Sum(-weight[k] * _log_softmax(input, k), (k, 0, C - 1))
    return (1 - eps) * nll + eps / C * smooth


@loss(
    family="classification",
    signature=_CE_SIGNATURE,
    variant="probabilities",
    args=(
        Arg("input", REAL, axis="class", differentiable=True),
        Arg("target", PROBABILITIES, axis="class", differentiable=True),
        # differentiable on this path only (torch's composite implementation; the index path raises)
        Arg("weight", NONNEGATIVE, axis="class", differentiable=True, optional=True, broadcast="class"),
    ),
    params=(_LABEL_SMOOTHING,),
    properties=("shift_invariant", "grad_sums_to_zero"),
)
def cross_entropy__probabilities(
    input: sp.IndexedBase, target: sp.IndexedBase, weight: sp.IndexedBase, label_smoothing: sp.Symbol
) -> sp.Expr:
    r"""Cross entropy of logits against class probabilities (same shape as ``input``).

    .. math:: \ell = -\sum_k w_k\, t'_k \log p_k, \quad t' = (1 - \varepsilon)\, t + \varepsilon / C

    ``reduction='mean'`` divides by the number of samples N·d1·…·dk, not by the weights.
    Targets are not required to sum to 1 (documented).
    Convention: torch.nn.functional.cross_entropy, probability-target path.
    Reference: PyTorch documentation, ``torch.nn.CrossEntropyLoss``.
    """
    eps = label_smoothing
    smoothed = (1 - eps) * target[k] + eps / C
    return sp.Sum(-weight[k] * smoothed * _log_softmax(input, k), (k, 0, C - 1))


# ---------------------------------------------------------------------------------------------
# multi_margin_loss


def _hinge_strict(z: sp.Expr, p: sp.Expr = sp.S.One) -> sp.Expr:
    """max(0, z)^p as torch's margin kernels compute it: a term counts where ``z > 0`` (strictly),
    so at the kink the gradient is 0 (LossMultiMargin.cpp, LossMultiLabelMargin.cpp).

    For p in {1, 2} (multi_margin_loss's choices) it is written ``(2 - p) max(0, z) + (p - 1)
    max(0, z)^2``, equal there: the general form's second derivative ``p (p - 1) max(0, z)^(p-2)``
    is 0·inf = NaN at p = 1 wherever the term is inactive (z <= 0), where the exact one is 0."""
    h = hinge(z, 0)
    if p == 1:
        return h
    return (2 - p) * h + (p - 1) * h**2


@loss(
    family="classification",
    signature=("input", "target", "p", "margin", "weight"),
    args=(
        Arg("input", REAL, axis="class", differentiable=True),
        Arg("target", CLASS_INDEX, axis="index"),
        # not differentiable: the native kernel has no weight gradient (torch raises if asked)
        Arg("weight", NONNEGATIVE, axis="class", optional=True, broadcast="class"),
    ),
    params=(
        choice("p", 1, (1, 2), "the power of each hinge: 1 or 2"),
        Param("margin", 1.0, sp.Reals, "by how much the target logit should exceed the others"),
    ),
    input_ndims=(1, 2),
)
def multi_margin_loss(
    input: sp.IndexedBase, target: sp.Symbol, weight: sp.IndexedBase, p: sp.Symbol, margin: sp.Symbol
) -> sp.Expr:
    r"""Multi-class hinge: every other class's logit should be below the target's by the margin.

    .. math:: \ell = \frac{1}{C} \sum_{k \ne y} w_y \max(0,\; \text{margin} - x_y + x_k)^p

    The weight is the TARGET class's, multiplying each term; ``reduction='mean'`` divides by the
    number of samples (not by the weights). Shapes (C) with a 0-d target, or (N, C) with (N).
    Convention: torch.nn.functional.multi_margin_loss (LossMultiMargin.cpp): a term counts where
    margin - x_y + x_k > 0, so the gradient is 0 at the kink.
    Reference: PyTorch documentation, ``torch.nn.MultiMarginLoss``.
    """
    z = margin - input[target] + input[k]
    return (
        sp.Sum((1 - sp.KroneckerDelta(k, target)) * weight[target] * _hinge_strict(z, p), (k, 0, C - 1)) / C
    )


# ---------------------------------------------------------------------------------------------
# multilabel_margin_loss


@loss(
    family="classification",
    signature=("input", "target"),
    args=(
        Arg("input", REAL, axis="class", differentiable=True),
        # the class indices of each sample, terminated by the first -1: written here as the count
        # of each class among them (``ArgRole`` "index_set"), which the oracle computes
        Arg("target", CLASS_INDEX, axis="index_set"),
    ),
    input_ndims=(1, 2),
)
def multilabel_margin_loss(input: sp.IndexedBase, target: sp.IndexedBase) -> sp.Expr:
    r"""Multi-label hinge: every target class's logit should exceed every non-target's by 1.

    .. math:: \ell = \frac{1}{C} \sum_{k} c_k \sum_{i : c_i = 0} \max(0,\; 1 - (x_k - x_i))

    where :math:`c_k` is how many times class k appears in the sample's target before its first
    -1 (the rest is ignored; torch counts a repeated class once per appearance). Shapes (C) or
    (N, C), target of input's shape; ``reduction='mean'`` divides by N.
    Convention: torch.nn.functional.multilabel_margin_loss (LossMultiLabelMargin.cpp): a term
    counts where 1 - x_k + x_i > 0, so the gradient is 0 at the kink.
    Reference: PyTorch documentation, ``torch.nn.MultiLabelMarginLoss``.
    """
    non_target = sp.Max(0, 1 - target[i])  # 1 where class i is not in the set, else 0 (counts >= 1)
    body = target[k] * non_target * _hinge_strict(1 - input[k] + input[i])
    return sp.Sum(body, (i, 0, C - 1), (k, 0, C - 1)) / C
