"""Wrong implementations of the suite's losses, one planted bug each.

Every mutant is a plain function with the exact ``torch.nn.functional`` signature of its loss, so a
backend override (``conformance.backends.override.OverrideBackend``, and a future
``--impl LOSS=tests.planted.mutants:NAME``) runs it unchanged. Apart from its one bug, each mutant is
written to implement the whole signature (the three reductions, the deprecated ``size_average`` /
``reduce``, ``weight``, ``pos_weight``, ``ignore_index``, ``label_smoothing``, class-index and
probability targets), mostly by delegating to torch. ``PLANTED`` maps each mutant to the spec variant
it implements and the check expected to catch it; ``LOSS_OF`` to its torch.nn.functional name.

What ``tests/test_planted.py`` checks of each mutant: its parameters (names, kinds, defaults) are
those of its torch function; the check named below, searched with the suite's own strategies, fails
it with a readable reproduction on a case where torch-cpu conforms; and on a typical case it passes
the suite's check for each reduction (the value check only, for a gradient plant). "value" is
``conformance/test_values.py::test_value``; "gradient" is ``conformance/test_gradients.py::test_gradient``.

============================  ================================  ========  ==================================
mutant                        variant                           check     planted bug
============================  ================================  ========  ==================================
l1_mean_over_batch            l1_loss                           value     'mean' divides by input.size(0)
                                                                          (the batch size), not by numel
l1_grad_one_at_zero           l1_loss                           gradient  d|d|/dd = +1 at d = 0 (the sign is
                                                                          written (d >= 0)·2 - 1), not 0
mse_grad_no_factor_two        mse_loss                          gradient  d(d²)/dd = d: the factor 2 is lost
mse_none_squeezed             mse_loss                          value     'none' returns ``.squeeze()`` of
                                                                          the result: size-1 dims vanish
smooth_l1_beta_zero_nan       smooth_l1_loss                    gradient  torch.where of both branches: at
                                                                          beta = 0 the unused d²/beta branch
                                                                          leaks 0·inf = NaN into the gradient
smooth_l1_sum_in_half         smooth_l1_loss                    value     'sum' accumulates in float16
bce_no_clamp                  binary_cross_entropy              value     logs not clamped at -100: inf or
                                                                          NaN at input ∈ {0, 1}
bce_clamps_input_in_place     binary_cross_entropy              value     clamps the caller's ``input`` to
                                                                          [1e-7, 1 - 1e-7] in place
bce_grad_ignores_weight       binary_cross_entropy              gradient  the input gradient leaves out weight
bce_logits_naive              binary_cross_entropy_with_logits  value     log(sigmoid(x)), log(1 - sigmoid(x))
                                                                          as written: inaccurate, then inf or
                                                                          NaN, as |x| grows
bce_logits_pos_weight_grad    binary_cross_entropy_with_logits  gradient  the input gradient ignores
                                                                          pos_weight (the value is right)
ce_no_max_subtraction         cross_entropy[class_index]        value     log Σ exp(x) without subtracting
                                                                          max(x): overflow at large logits
ce_smoothing_ignores_mask     cross_entropy[class_index]        value     the label-smoothing term is not
                                                                          masked by ignore_index (the bug of
                                                                          pytorch#73205)
ce_weighted_mean_by_count     cross_entropy[class_index]        value     'mean' divides by the number of
                                                                          non-ignored samples, not Σ w[y]
ce_probs_mean_by_weight_mass  cross_entropy[probabilities]      value     with weight, 'mean' divides by
                                                                          Σ_n Σ_k w_k t_nk, not by the
                                                                          number of samples
huber_mean_by_weight          huber_loss                        value     with weight, 'mean' divides by Σ w
                                                                          (as l1/mse do), not by numel
huber_linear_ignores_delta    huber_loss                        value     the linear branch is |d| - δ/2, not
                                                                          δ(|d| - δ/2): right for δ = 1 only
soft_margin_ignores_target    soft_margin_loss                  value     log(1 + exp(-x)): the label is
                                                                          taken to be 1 everywhere
nll_weighted_mean_by_count    nll_loss                          value     with weight, 'mean' divides by the
                                                                          number of non-ignored samples
nll_ignored_counted           nll_loss                          value     'mean' counts ignored samples in
                                                                          its denominator (their w_y too)
margin_ranking_sign_flipped   margin_ranking_loss               value     max(0, y (x1 - x2) + margin): the
                                                                          label's sign is lost
margin_ranking_margin_negated margin_ranking_loss               value     max(0, -y (x1 - x2) - margin):
                                                                          right for margin = 0 only
hinge_embedding_margin_unclamped hinge_embedding_loss           value     margin - x for y = -1 without the
                                                                          clamp at 0: negative losses
mse_weight_detached           mse_loss                          gradient  the weight is detached: no gradient
                                                                          w.r.t. weight (the value is right)
bce_logits_weight_ignored     binary_cross_entropy_with_logits  value     ``weight`` is accepted and ignored
ce_probs_weight_detached      cross_entropy[probabilities]      gradient  the class weight is detached: no
                                                                          gradient w.r.t. weight
kl_div_plain_ylogy            kl_div                            value     y·log y as written: NaN at y = 0
                                                                          (torch uses xlogy: 0)
kl_div_log_target_ignored     kl_div                            value     ``log_target`` is ignored: the
                                                                          target is always probabilities
kl_div_batchmean_by_numel     kl_div                            value     'batchmean' divides by numel, as
                                                                          'mean' does, not by input.size(0)
poisson_stirling_everywhere   poisson_nll_loss                  value     full=True adds the Stirling term
                                                                          for every y > 0 (torch: y > 1 only)
poisson_eps_ignored           poisson_nll_loss                  value     log_input=False takes log(x), not
                                                                          log(x + eps)
poisson_log_input_ignored     poisson_nll_loss                  value     ``log_input`` is ignored: the input
                                                                          is always a log-rate
gaussian_eps_ignored          gaussian_nll_loss                 value     the variance is clamped at 1e-6
                                                                          whatever ``eps`` is
gaussian_var_grad_clamped     gaussian_nll_loss                 gradient  the clamp is differentiated: no var
                                                                          gradient below eps (torch's is
                                                                          straight-through)
gaussian_full_whole_log_2pi   gaussian_nll_loss                 value     full=True adds log(2π), not
                                                                          ½ log(2π)
multilabel_mean_over_dim1     multilabel_soft_margin_loss       value     the labels are dim 1, not the last
                                                                          dim (wrong for 3-D input)
multilabel_weight_detached    multilabel_soft_margin_loss       gradient  the weight is detached: no gradient
                                                                          w.r.t. weight
multi_margin_square_grad_halved multi_margin_loss               gradient  p = 2: h·h.detach(), so the
                                                                          gradient is h, not 2h
multi_margin_p_ignored        multi_margin_loss                 value     the hinges are never squared
multi_margin_margin_fixed     multi_margin_loss                 value     margin 1 whatever is passed
multi_margin_weighted_mean    multi_margin_loss                 value     'mean' divides by Σ w[y], not N
multilabel_margin_set_not_multiset multilabel_margin_loss       value     a repeated label counts once
multilabel_margin_reads_past_end multilabel_margin_loss         value     labels after the first -1 count
cosine_embedding_similarity_clamped cosine_embedding_loss       value     F.cosine_similarity (norms clamped
                                                                          at 1e-8), not ε added to each
                                                                          squared norm
cosine_embedding_margin_ignored cosine_embedding_loss           value     margin 0 whatever is passed
triplet_swap_ignored          triplet_margin_loss               value     ``swap`` is ignored
triplet_eps_outside_norm      triplet_margin_loss               value     ‖a - b‖ + eps, not ‖a - b + eps‖
triplet_p_ignored             triplet_margin_loss               value     the distance is Euclidean whatever p
triplet_distance_swap_wrong_pair triplet_margin_with_distance_loss value  swap takes d(a, p), not d(p, n)
triplet_distance_margin_fixed triplet_margin_with_distance_loss value     margin 1 whatever is passed
triplet_distance_function_ignored triplet_margin_with_distance_loss[cosine_distance] value
                                                                          pairwise_distance whatever
                                                                          distance_function is passed
triplet_distance_swap_max triplet_margin_with_distance_loss[squared_euclidean_distance] value
                                                                          swap takes the larger distance
l1_sum_accumulated_in_double  l1_loss                           value     'sum' of more than 4 elements
                                                                          returned in float64 (the dtype)
l1_custom_backward_ignores_upstream l1_loss                     gradient  an autograd.Function whose
                                                                          backward leaves out the upstream
smooth_l1_custom_backward_sums_upstream smooth_l1_loss          gradient  an autograd.Function whose
                                                                          backward scales by Σ upstream
kl_div_none_flattened         kl_div                            value     'none' flattened to 1-D (shape)
gaussian_var_clamped_in_place gaussian_nll_loss                 value     clamps the caller's ``var`` at
                                                                          eps in place
multilabel_soft_margin_naive  multilabel_soft_margin_loss       value     log(sigmoid(x)) written out:
                                                                          -inf where the sigmoid underflows
margin_ranking_target_detached margin_ranking_loss              gradient  the target takes no gradient
ce_smoothing_over_other_classes cross_entropy[class_index]      value     label smoothing ε/(C-1) on each
                                                                          other class, not ε/C on all
============================  ================================  ========  ==================================
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import _reduction as _legacy

Tensor = torch.Tensor

__all__ = [
    "LOSS_OF",
    "PLANTED",
    "bce_clamps_input_in_place",
    "bce_grad_ignores_weight",
    "bce_logits_naive",
    "bce_logits_pos_weight_grad",
    "bce_logits_weight_ignored",
    "bce_no_clamp",
    "ce_no_max_subtraction",
    "ce_probs_mean_by_weight_mass",
    "ce_probs_weight_detached",
    "ce_smoothing_ignores_mask",
    "ce_smoothing_over_other_classes",
    "ce_weighted_mean_by_count",
    "cosine_embedding_margin_ignored",
    "cosine_embedding_similarity_clamped",
    "gaussian_eps_ignored",
    "gaussian_full_whole_log_2pi",
    "gaussian_var_clamped_in_place",
    "gaussian_var_grad_clamped",
    "hinge_embedding_margin_unclamped",
    "huber_linear_ignores_delta",
    "huber_mean_by_weight",
    "kl_div_batchmean_by_numel",
    "kl_div_log_target_ignored",
    "kl_div_none_flattened",
    "kl_div_plain_ylogy",
    "l1_custom_backward_ignores_upstream",
    "l1_grad_one_at_zero",
    "l1_mean_over_batch",
    "l1_sum_accumulated_in_double",
    "margin_ranking_margin_negated",
    "margin_ranking_sign_flipped",
    "margin_ranking_target_detached",
    "mse_grad_no_factor_two",
    "mse_none_squeezed",
    "mse_weight_detached",
    "multi_margin_margin_fixed",
    "multi_margin_p_ignored",
    "multi_margin_square_grad_halved",
    "multi_margin_weighted_mean",
    "multilabel_margin_reads_past_end",
    "multilabel_margin_set_not_multiset",
    "multilabel_mean_over_dim1",
    "multilabel_soft_margin_naive",
    "multilabel_weight_detached",
    "nll_ignored_counted",
    "nll_weighted_mean_by_count",
    "poisson_eps_ignored",
    "poisson_log_input_ignored",
    "poisson_stirling_everywhere",
    "smooth_l1_beta_zero_nan",
    "smooth_l1_custom_backward_sums_upstream",
    "smooth_l1_sum_in_half",
    "soft_margin_ignores_target",
    "triplet_distance_function_ignored",
    "triplet_distance_margin_fixed",
    "triplet_distance_swap_max",
    "triplet_distance_swap_wrong_pair",
    "triplet_eps_outside_norm",
    "triplet_p_ignored",
    "triplet_swap_ignored",
]

#: torch's EPSILON in the BCE backward: the float32 literal 1e-12, in every dtype
_EPS_F32 = float(np.float32(1e-12))


# ---------------------------------------------------------------------------------------------
# shared, correct pieces (each mutant changes one thing)


def _mode(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        return str(_legacy.legacy_get_string(size_average, reduce))
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(e: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return e
    return e.sum() if reduction == "sum" else e.mean()


def _regression(e: Tensor, weight: Tensor | None, input: Tensor, reduction: str) -> Tensor:
    """torch 2.13's handling of l1/mse ``weight``: w·e, and 'mean' divides by Σ w."""
    if weight is None:
        return _reduce(e, reduction)
    if weight.size() != input.size():
        raise ValueError("Weights and input must have the same size.")
    we = e * weight
    if reduction == "mean":
        return we.sum() / weight.sum()
    return _reduce(we, reduction)


def _softplus(x: Tensor) -> Tensor:
    """log(1 + e^x) without overflow or a threshold cut-off."""
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))


def _cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    *,
    naive_logsumexp: bool = False,
    mask_smoothing: bool = True,
    index_mean_by_count: bool = False,
    probs_mean_by_weight_mass: bool = False,
    smoothing_over_others: bool = False,
) -> Tensor:
    """torch.nn.functional.cross_entropy written out (LossNLL.cpp); each keyword plants one bug."""
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    cdim = 0 if input.dim() == 1 else 1
    c = input.shape[cdim]
    if naive_logsumexp:
        logp = input - torch.log(torch.exp(input).sum(dim=cdim, keepdim=True))
    else:
        logp = torch.log_softmax(input, dim=cdim)
    lp = logp.movedim(cdim, -1)  # (..., C)
    w = torch.ones(c, dtype=input.dtype, device=input.device) if weight is None else weight
    eps = label_smoothing
    if target.shape == input.shape and target.is_floating_point():  # class probabilities
        t = target.movedim(cdim, -1)
        if eps > 0:
            t = t * (1 - eps) + eps / c
        per = -(lp * w * t).sum(-1)
        if reduction != "mean":
            return _reduce(per, reduction)
        if probs_mean_by_weight_mass and weight is not None:
            return per.sum() / (target.movedim(cdim, -1) * w).sum()
        return per.sum() / per.numel()
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    wy = w[safe]
    zero = torch.zeros((), dtype=input.dtype, device=input.device)
    nll = torch.where(keep, -lp.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * wy, zero)
    smooth = -(lp * w).sum(-1)
    if smoothing_over_others and eps > 0:
        # BUG: ε spread over the C - 1 other classes (ε/(C-1) each), not over all C (ε/C)
        smooth = (smooth - torch.where(keep, nll, zero)) * c / max(c - 1, 1)
    if mask_smoothing:
        smooth = torch.where(keep, smooth, zero)
    if reduction == "none":
        return (1 - eps) * nll + eps / c * smooth if eps > 0 else nll
    if reduction == "sum":
        return (1 - eps) * nll.sum() + eps / c * smooth.sum() if eps > 0 else nll.sum()
    denom = keep.sum().to(input.dtype) if index_mean_by_count else torch.where(keep, wy, zero).sum()
    total = (1 - eps) * nll.sum() + eps / c * smooth.sum() if eps > 0 else nll.sum()
    return total / denom


# ---------------------------------------------------------------------------------------------
# l1_loss


class _AbsSignAtZeroIsOne(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, d: Tensor) -> Tensor:
        ctx.save_for_backward(d)
        return d.abs()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (d,) = ctx.saved_tensors
        return grad * ((d >= 0).to(grad.dtype) * 2 - 1)  # BUG: +1 at d = 0 (sgn(0) is 0)


def l1_mean_over_batch(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """l1_loss whose 'mean' divides by the batch size input.size(0) instead of the element count."""
    reduction = _mode(size_average, reduce, reduction)
    x, y = torch.broadcast_tensors(input, target)
    e = (x - y).abs()
    if weight is None and reduction == "mean":
        return e.sum() / (e.shape[0] if e.dim() else 1)  # BUG: numel is the denominator
    return _regression(e, weight, x, reduction)


def l1_grad_one_at_zero(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """l1_loss whose gradient at input == target is ±1 instead of 0."""
    reduction = _mode(size_average, reduce, reduction)
    x, y = torch.broadcast_tensors(input, target)
    return _regression(_AbsSignAtZeroIsOne.apply(x - y), weight, x, reduction)


# ---------------------------------------------------------------------------------------------
# mse_loss


class _SquareWithoutTwo(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, d: Tensor) -> Tensor:
        ctx.save_for_backward(d)
        return d * d

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (d,) = ctx.saved_tensors
        return grad * d  # BUG: d(d²)/dd = 2d


def mse_grad_no_factor_two(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """mse_loss with the right value and half the right gradient."""
    reduction = _mode(size_average, reduce, reduction)
    x, y = torch.broadcast_tensors(input, target)
    return _regression(_SquareWithoutTwo.apply(x - y), weight, x, reduction)


def mse_none_squeezed(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """mse_loss whose 'none' result is squeezed (loses every size-1 dim)."""
    reduction = _mode(size_average, reduce, reduction)
    x, y = torch.broadcast_tensors(input, target)
    out = _regression((x - y) ** 2, weight, x, reduction)
    return out.squeeze() if reduction == "none" else out  # BUG


# ---------------------------------------------------------------------------------------------
# smooth_l1_loss


def smooth_l1_beta_zero_nan(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """smooth_l1_loss as torch.where of both branches: right values, NaN gradients at beta = 0."""
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    reduction = _mode(size_average, reduce, reduction)
    x, y = torch.broadcast_tensors(input, target)
    d = x - y
    ad = d.abs()
    # BUG: at beta = 0 the unselected branch 0.5 d²/beta is inf or NaN, and its gradient reaches
    # the result as 0 · inf = NaN through torch.where's backward.
    e = torch.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta)
    return _reduce(e, reduction)


def smooth_l1_sum_in_half(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """smooth_l1_loss whose 'sum' is accumulated in float16 (right for float16 inputs only)."""
    reduction = _mode(size_average, reduce, reduction)
    e = torch.nn.functional.smooth_l1_loss(input, target, reduction="none", beta=beta)
    if reduction == "sum":
        return e.to(torch.float16).sum().to(e.dtype)  # BUG: precision and range of float16
    return _reduce(e, reduction)


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy


class _BCEGradWithoutWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(x, y, w)
        return torch.nn.functional.binary_cross_entropy(x, y, w, reduction="none")

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None]:
        x, y, w = ctx.saved_tensors
        gx = grad * (x - y) / torch.clamp(x * (1 - x), min=_EPS_F32)  # BUG: times w
        gy = grad * w * (torch.log1p(-x) - torch.log(x))
        return gx, gy, None


def bce_no_clamp(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """binary_cross_entropy without torch's clamp of each log at -100."""
    reduction = _mode(size_average, reduce, reduction)
    e = -(target * torch.log(input) + (1 - target) * torch.log(1 - input))  # BUG: no clamp
    if weight is not None:
        e = e * weight
    return _reduce(e, reduction)


def bce_clamps_input_in_place(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """binary_cross_entropy that "protects" its logs by clamping the caller's input in place."""
    with torch.no_grad():
        input.clamp_(1e-7, 1 - 1e-7)  # BUG: modifies the caller's tensor
    return torch.nn.functional.binary_cross_entropy(input, target, weight, size_average, reduce, reduction)


def bce_grad_ignores_weight(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """binary_cross_entropy with the right value whose input gradient leaves out ``weight``."""
    reduction = _mode(size_average, reduce, reduction)
    x, y = torch.broadcast_tensors(input, target)
    w = torch.ones_like(x) if weight is None else weight.expand_as(x)
    return _reduce(_BCEGradWithoutWeight.apply(x, y, w), reduction)


# ---------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits


class _BCELogitsGradWithoutPosWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor, w: Tensor, p: Tensor) -> Tensor:
        ctx.save_for_backward(x, y, w, p)
        # w [p y softplus(-x) + (1 - y) softplus(x)]: the stable form of the documented loss
        return w * (p * y * _softplus(-x) + (1 - y) * _softplus(x))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        x, y, w, p = ctx.saved_tensors
        gx = grad * w * ((1 - y) * torch.sigmoid(x) - y * torch.sigmoid(-x))  # BUG: p y σ(-x)
        gy = grad * w * (p * _softplus(-x) - _softplus(x))
        return gx, gy, None, None


def bce_logits_naive(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """binary_cross_entropy_with_logits as the textbook formula: log of a saturated sigmoid."""
    reduction = _mode(size_average, reduce, reduction)
    s = torch.sigmoid(input)
    pos = target * torch.log(s)  # BUG: log(sigmoid(x)) and log(1 - sigmoid(x)) underflow to -inf
    if pos_weight is not None:
        pos = pos * pos_weight
    e = -(pos + (1 - target) * torch.log(1 - s))
    if weight is not None:
        e = e * weight
    return _reduce(e, reduction)


def bce_logits_pos_weight_grad(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """binary_cross_entropy_with_logits with the right value; the input gradient drops pos_weight."""
    reduction = _mode(size_average, reduce, reduction)
    one = torch.ones((), dtype=input.dtype, device=input.device)
    w = one if weight is None else weight
    p = one if pos_weight is None else pos_weight
    x, y, w, p = torch.broadcast_tensors(input, target, w, p)
    return _reduce(_BCELogitsGradWithoutPosWeight.apply(x, y, w, p), reduction)


# ---------------------------------------------------------------------------------------------
# cross_entropy


def ce_no_max_subtraction(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """cross_entropy whose log-softmax is x - log Σ exp(x), without subtracting max(x) first."""
    return _cross_entropy(
        input,
        target,
        weight,
        ignore_index,
        _mode(size_average, reduce, reduction),
        label_smoothing,
        naive_logsumexp=True,
    )


def ce_smoothing_ignores_mask(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """cross_entropy whose label-smoothing term still counts the samples with target == ignore_index."""
    return _cross_entropy(
        input,
        target,
        weight,
        ignore_index,
        _mode(size_average, reduce, reduction),
        label_smoothing,
        mask_smoothing=False,
    )


def ce_weighted_mean_by_count(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """cross_entropy (class indices) whose 'mean' divides by the count of non-ignored samples even
    when class weights are given (torch divides by Σ weight[target])."""
    return _cross_entropy(
        input,
        target,
        weight,
        ignore_index,
        _mode(size_average, reduce, reduction),
        label_smoothing,
        index_mean_by_count=True,
    )


def ce_probs_mean_by_weight_mass(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """cross_entropy (probability targets, with weight) whose 'mean' divides by the weighted target
    mass Σ_n Σ_k w_k t_nk (torch divides by the number of samples)."""
    return _cross_entropy(
        input,
        target,
        weight,
        ignore_index,
        _mode(size_average, reduce, reduction),
        label_smoothing,
        probs_mean_by_weight_mass=True,
    )


#: mutant -> (the spec variant it implements, the check expected to catch it)
# ---------------------------------------------------------------------------------------------
# huber_loss


def _huber(d: Tensor, delta: float, linear_scale: float | None = None) -> Tensor:
    ad = d.abs()
    scale = delta if linear_scale is None else linear_scale
    return torch.where(ad < delta, 0.5 * d * d, scale * (ad - 0.5 * delta))


def huber_mean_by_weight(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0, weight: Tensor | None = None
) -> Tensor:
    """huber_loss whose weighted 'mean' is Σ w·ℓ / Σ w, as l1/mse's (torch's is Σ w·ℓ / numel)."""
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    x, y = torch.broadcast_tensors(input, target)
    return _regression(_huber(x - y, delta), weight, x, _mode(None, None, reduction))  # BUG: / Σ w


def huber_linear_ignores_delta(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0, weight: Tensor | None = None
) -> Tensor:
    """huber_loss whose linear branch is |d| - δ/2 (smooth_l1's), not δ(|d| - δ/2)."""
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    x, y = torch.broadcast_tensors(input, target)
    e = _huber(x - y, delta, linear_scale=1.0)  # BUG: the linear branch is not scaled by delta
    if weight is not None:
        e = e * weight
    return _reduce(e, _mode(None, None, reduction))


# ---------------------------------------------------------------------------------------------
# nll_loss


def _nll_terms(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int) -> tuple[Tensor, ...]:
    """Per-sample -w_y x_y (0 where ignored), w_y (0 where ignored), w_y of every sample."""
    cdim = 0 if input.dim() == 1 else 1
    x = input.movedim(cdim, -1)
    w = torch.ones(x.shape[-1], dtype=x.dtype, device=x.device) if weight is None else weight
    keep = target != ignore_index
    safe = torch.where(keep, target, torch.zeros_like(target))
    picked = x.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    wy = w[safe]
    zero = torch.zeros_like(picked)
    return torch.where(keep, -wy * picked, zero), torch.where(keep, wy, zero), wy


def nll_weighted_mean_by_count(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """nll_loss whose weighted 'mean' divides by the count of non-ignored samples, not Σ w_y."""
    reduction = _mode(size_average, reduce, reduction)
    e, _, _ = _nll_terms(input, target, weight, ignore_index)
    if reduction != "mean":
        return _reduce(e, reduction)
    return e.sum() / (target != ignore_index).sum()  # BUG: not Σ w_y


def nll_ignored_counted(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """nll_loss whose 'mean' denominator also counts the ignored samples' weights."""
    reduction = _mode(size_average, reduce, reduction)
    e, _, wy_all = _nll_terms(input, target, weight, ignore_index)
    if reduction != "mean":
        return _reduce(e, reduction)
    return e.sum() / wy_all.sum()  # BUG: ignored samples' w_y in the denominator


# ---------------------------------------------------------------------------------------------
# margin_ranking_loss


def margin_ranking_sign_flipped(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """margin_ranking_loss with the label's sign lost."""
    reduction = _mode(size_average, reduce, reduction)
    return _reduce((target * (input1 - input2) + margin).clamp_min(0), reduction)  # BUG: +y


def margin_ranking_margin_negated(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """margin_ranking_loss that subtracts the margin."""
    reduction = _mode(size_average, reduce, reduction)
    return _reduce((-target * (input1 - input2) - margin).clamp_min(0), reduction)  # BUG: -margin


# ---------------------------------------------------------------------------------------------
# hinge_embedding_loss


def hinge_embedding_margin_unclamped(
    input: Tensor, target: Tensor, margin: float = 1.0,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """hinge_embedding_loss whose y = -1 term is margin - x, not max(0, margin - x)."""
    reduction = _mode(size_average, reduce, reduction)
    zeros = torch.zeros_like(input)
    e = torch.where(target != 1, margin - input, zeros) + torch.where(target != -1, input, zeros)  # BUG
    return _reduce(e, reduction)


# ---------------------------------------------------------------------------------------------
# soft_margin_loss


def soft_margin_ignores_target(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """soft_margin_loss that treats every label as 1."""
    reduction = _mode(size_average, reduce, reduction)
    e = torch.nn.functional.softplus(-input) + 0 * target  # BUG: -x, not -y·x
    return _reduce(e, reduction)


# ---------------------------------------------------------------------------------------------
# options of the first six: differentiable weights, BCE-with-logits weight


def mse_weight_detached(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """mse_loss whose weight takes no gradient."""
    w = None if weight is None else weight.detach()  # BUG: torch differentiates the weight
    return torch.nn.functional.mse_loss(input, target, size_average, reduce, reduction, weight=w)


def bce_logits_weight_ignored(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean", pos_weight: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """binary_cross_entropy_with_logits that drops ``weight``."""
    f = torch.nn.functional.binary_cross_entropy_with_logits
    return f(input, target, None, size_average, reduce, reduction, pos_weight)  # BUG: weight dropped


def ce_probs_weight_detached(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:  # fmt: skip
    """cross_entropy whose class weight takes no gradient (on the probability-target path, where
    torch differentiates it)."""
    w = None if weight is None else weight.detach()  # BUG
    return torch.nn.functional.cross_entropy(
        input, target, w, size_average, ignore_index, reduce, reduction, label_smoothing
    )


# ---------------------------------------------------------------------------------------------
# kl_div, poisson_nll_loss, gaussian_nll_loss, multilabel_soft_margin_loss


def _kl_reduce(e: Tensor, input: Tensor, reduction: str) -> Tensor:
    if reduction == "batchmean":
        return e.sum() / (input.size(0) if input.dim() else 1)
    return _reduce(e, reduction)


def kl_div_plain_ylogy(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", log_target: bool = False,
) -> Tensor:  # fmt: skip
    """kl_div with y·log y written out (NaN at y = 0, where xlogy gives 0)."""
    if reduction == "mean":
        import warnings

        warnings.warn("reduction: 'mean' divides the total loss by the batch and support sizes", stacklevel=2)
    if log_target:
        e = target.exp() * (target - input)
    else:
        e = target * target.log() - target * input  # BUG: 0·log 0 = NaN
    return _kl_reduce(e, input, reduction)


def kl_div_log_target_ignored(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", log_target: bool = False,
) -> Tensor:  # fmt: skip
    """kl_div that ignores ``log_target``."""
    return torch.nn.functional.kl_div(input, target, size_average, reduce, reduction)  # BUG


def kl_div_batchmean_by_numel(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", log_target: bool = False,
) -> Tensor:  # fmt: skip
    """kl_div whose 'batchmean' is the mean over every element."""
    f = torch.nn.functional.kl_div
    if reduction == "batchmean":
        return f(input, target, reduction="sum", log_target=log_target) / input.numel()  # BUG
    return f(input, target, size_average, reduce, reduction, log_target)


def _poisson(
    input: Tensor,
    target: Tensor,
    log_input: bool,
    full: bool,
    eps: float,
    *,
    everywhere: bool,
    with_eps: bool,
) -> Tensor:
    if log_input:
        e = input.exp() - target * input
    else:
        e = input - target * (input + eps).log() if with_eps else input - target * input.log()
    if full:
        st = target * target.log() - target + 0.5 * (2 * np.pi * target).log()
        e = e + st.masked_fill(target <= 0 if everywhere else target <= 1, 0)
    return e


def poisson_stirling_everywhere(
    input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
    size_average: bool | None = None, eps: float = 1e-8, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """poisson_nll_loss whose Stirling term applies to every positive count, not only above 1."""
    reduction = _mode(size_average, reduce, reduction)
    e = _poisson(input, target, log_input, full, eps, everywhere=True, with_eps=True)  # BUG: y > 0
    return _reduce(e, reduction)


def poisson_eps_ignored(
    input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
    size_average: bool | None = None, eps: float = 1e-8, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """poisson_nll_loss whose log_input=False branch takes log(x) without eps."""
    reduction = _mode(size_average, reduce, reduction)
    e = _poisson(input, target, log_input, full, eps, everywhere=False, with_eps=False)  # BUG: log(x)
    return _reduce(e, reduction)


def poisson_log_input_ignored(
    input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
    size_average: bool | None = None, eps: float = 1e-8, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """poisson_nll_loss that always reads the input as a log-rate."""
    reduction = _mode(size_average, reduce, reduction)
    e = _poisson(input, target, True, full, eps, everywhere=False, with_eps=True)  # BUG: log_input
    return _reduce(e, reduction)


def _gaussian(
    input: Tensor,
    target: Tensor,
    var: Tensor,
    full: bool,
    eps: float,
    reduction: str,
    clamp_grad: bool,
    c: float,
) -> Tensor:
    if var.size() != input.size() and input.size()[:-1] == var.size():
        var = var.unsqueeze(-1)
    if clamp_grad:
        v = var.clamp(min=eps)
    else:
        v = var.clone()
        with torch.no_grad():
            v.clamp_(min=eps)
    e = 0.5 * (v.log() + (input - target) ** 2 / v)
    if full:
        e = e + c * float(np.log(2 * np.pi))
    return _reduce(e, reduction)


def gaussian_var_grad_clamped(
    input: Tensor, target: Tensor, var: Tensor | float, full: bool = False, eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """gaussian_nll_loss that clamps with autograd: no var gradient where var < eps."""
    return _gaussian(input, target, torch.as_tensor(var), full, eps, reduction, True, 0.5)  # BUG: True


def gaussian_eps_ignored(
    input: Tensor, target: Tensor, var: Tensor | float, full: bool = False, eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """gaussian_nll_loss whose clamp ignores ``eps`` (always 1e-6, the default)."""
    return _gaussian(input, target, torch.as_tensor(var), full, 1e-6, reduction, False, 0.5)  # BUG: 1e-6


def gaussian_full_whole_log_2pi(
    input: Tensor, target: Tensor, var: Tensor | float, full: bool = False, eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """gaussian_nll_loss whose full=True constant is log(2π), not ½ log(2π)."""
    return _gaussian(input, target, torch.as_tensor(var), full, eps, reduction, False, 1.0)  # BUG: 1.0


def multilabel_mean_over_dim1(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """multilabel_soft_margin_loss that averages over dim 1 (cross_entropy's class dim)."""
    reduction = _mode(size_average, reduce, reduction)
    f = torch.nn.functional.logsigmoid
    e = -(target * f(input) + (1 - target) * f(-input))
    if weight is not None:
        e = e * weight
    dim = 1 if input.dim() > 1 else 0  # BUG: torch averages over the last dim
    return _reduce(e.sum(dim=dim) / input.size(dim), reduction)


def multilabel_weight_detached(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """multilabel_soft_margin_loss whose weight takes no gradient."""
    w = None if weight is None else weight.detach()  # BUG
    return torch.nn.functional.multilabel_soft_margin_loss(input, target, w, size_average, reduce, reduction)


# ---------------------------------------------------------------------------------------------
# multi_margin_loss, multilabel_margin_loss


def _multi_margin(
    input: Tensor, target: Tensor, p: int, margin: float, weight: Tensor | None, reduction: str,
    *, half_square_grad: bool = False, weighted_mean: bool = False, margin_fixed: bool = False,
    power_fixed: bool = False,
) -> Tensor:  # fmt: skip
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    x = input if input.dim() > 1 else input.unsqueeze(0)
    t = target.reshape(-1)
    c = x.size(1)
    if weight is not None and weight.shape != (c,):
        raise RuntimeError("inconsistent weight size")
    if (t < 0).any() or (t >= c).any():
        raise RuntimeError("target out of range")
    m = 1.0 if margin_fixed else margin
    z = m - x.gather(1, t[:, None]) + x
    h = torch.where(z > 0, z, torch.zeros_like(z))
    h = h if (power_fixed or p == 1) else h * (h.detach() if half_square_grad else h)
    others = torch.ones_like(x, dtype=torch.bool).scatter_(1, t[:, None], False)
    w = torch.ones(c, dtype=x.dtype) if weight is None else weight
    e = (h * others).sum(1) * w[t] / c
    if input.dim() == 1 and target.dim() == 0:
        e = e.reshape(())
    if reduction == "mean" and weighted_mean and weight is not None:
        return e.sum() / w[t].sum()
    return _reduce(e, reduction)


def multi_margin_square_grad_halved(
    input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """multi_margin_loss whose p = 2 hinge is h·h.detach(): the value is right, the gradient h, not 2h."""
    reduction = _mode(size_average, reduce, reduction)
    return _multi_margin(input, target, p, margin, weight, reduction, half_square_grad=True)  # BUG


def multi_margin_p_ignored(
    input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """multi_margin_loss that never squares its hinges."""
    reduction = _mode(size_average, reduce, reduction)
    return _multi_margin(input, target, p, margin, weight, reduction, power_fixed=True)  # BUG


def multi_margin_margin_fixed(
    input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """multi_margin_loss with margin 1 whatever is passed."""
    reduction = _mode(size_average, reduce, reduction)
    return _multi_margin(input, target, p, margin, weight, reduction, margin_fixed=True)  # BUG


def multi_margin_weighted_mean(
    input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """multi_margin_loss whose 'mean' divides by Σ w[y], not by N."""
    reduction = _mode(size_average, reduce, reduction)
    return _multi_margin(input, target, p, margin, weight, reduction, weighted_mean=True)  # BUG


def _multilabel_margin(
    input: Tensor, target: Tensor, reduction: str, *, as_set: bool, past_end: bool
) -> Tensor:
    x = input if input.dim() > 1 else input.unsqueeze(0)
    t = target if target.dim() > 1 else target.unsqueeze(0)
    if t.shape != x.shape or t.dtype != torch.int64:
        raise RuntimeError("inconsistent target size")
    if (t < -1).any() or (t >= x.size(1)).any():
        raise RuntimeError("target out of range")
    c = x.size(1)
    valid = t != -1 if past_end else torch.cumprod((t != -1).to(torch.int64), dim=1).bool()
    counts = torch.zeros_like(x).scatter_add_(1, t.clamp_min(0), valid.to(x.dtype))
    if as_set:
        counts = counts.clamp_max(1)
    z = 1 - x[:, :, None] + x[:, None, :]  # (N, target k, other i)
    mask = counts[:, :, None] * (counts[:, None, :] == 0).to(x.dtype)
    e = (torch.where(z > 0, z, torch.zeros_like(z)) * mask).sum((1, 2)) / c
    return _reduce(e if input.dim() > 1 else e.reshape(()), reduction)


def multilabel_margin_set_not_multiset(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """multilabel_margin_loss that counts a repeated label once (torch counts each appearance)."""
    reduction = _mode(size_average, reduce, reduction)
    return _multilabel_margin(input, target, reduction, as_set=True, past_end=False)  # BUG


def multilabel_margin_reads_past_end(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """multilabel_margin_loss that takes every entry other than -1, also after the first -1."""
    reduction = _mode(size_average, reduce, reduction)
    return _multilabel_margin(input, target, reduction, as_set=False, past_end=True)  # BUG


# ---------------------------------------------------------------------------------------------
# cosine_embedding_loss


def cosine_embedding_similarity_clamped(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """cosine_embedding_loss through F.cosine_similarity (norms clamped at 1e-8, not ε added)."""
    reduction = _mode(size_average, reduce, reduction)
    cos = torch.nn.functional.cosine_similarity(input1, input2, dim=-1)  # BUG
    e = torch.where(target == 1, 1 - cos, torch.where(target == -1, (cos - margin).clamp_min(0), 0 * cos))
    return _reduce(e, reduction)


def cosine_embedding_margin_ignored(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """cosine_embedding_loss with margin 0 whatever is passed."""
    return torch.nn.functional.cosine_embedding_loss(
        input1, input2, target, 0.0, size_average, reduce, reduction
    )  # BUG


# ---------------------------------------------------------------------------------------------
# triplet_margin_loss, triplet_margin_with_distance_loss


def _triplet(d_ap: Tensor, d_an: Tensor, d_pn: Tensor, margin: float, swap: bool, reduction: str) -> Tensor:
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    if swap:
        d_an = torch.minimum(d_an, d_pn)
    return _reduce((margin + d_ap - d_an).clamp_min(0), reduction)


def triplet_swap_ignored(
    anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
    swap: bool = False, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """triplet_margin_loss that never swaps."""
    reduction = _mode(size_average, reduce, reduction)
    d = lambda a, b: torch.pairwise_distance(a, b, p, eps)  # noqa: E731
    return _triplet(
        d(anchor, positive), d(anchor, negative), d(positive, negative), margin, False, reduction
    )  # BUG


def triplet_eps_outside_norm(
    anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
    swap: bool = False, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """triplet_margin_loss whose distance is ‖a - b‖ + eps, not ‖a - b + eps‖."""
    reduction = _mode(size_average, reduce, reduction)
    d = lambda a, b: torch.linalg.vector_norm(a - b, p, dim=-1) + eps  # noqa: E731  BUG
    return _triplet(d(anchor, positive), d(anchor, negative), d(positive, negative), margin, swap, reduction)


def triplet_p_ignored(
    anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2, eps: float = 1e-6,
    swap: bool = False, size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """triplet_margin_loss with the Euclidean distance whatever p is."""
    reduction = _mode(size_average, reduce, reduction)
    d = lambda a, b: torch.pairwise_distance(a, b, 2, eps)  # noqa: E731  BUG
    return _triplet(d(anchor, positive), d(anchor, negative), d(positive, negative), margin, swap, reduction)


def triplet_distance_swap_wrong_pair(
    anchor: Tensor, positive: Tensor, negative: Tensor, *, distance_function: Any = None,
    margin: float = 1.0, swap: bool = False, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """triplet_margin_with_distance_loss whose swap takes d(anchor, positive), not d(positive, negative)."""
    d = distance_function if distance_function is not None else torch.pairwise_distance
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return _triplet(
        d(anchor, positive), d(anchor, negative), d(anchor, positive), margin, swap, reduction
    )  # BUG


def triplet_distance_margin_fixed(
    anchor: Tensor, positive: Tensor, negative: Tensor, *, distance_function: Any = None,
    margin: float = 1.0, swap: bool = False, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """triplet_margin_with_distance_loss with margin 1 whatever is passed (still checked > 0)."""
    d = distance_function if distance_function is not None else torch.pairwise_distance
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    return _triplet(
        d(anchor, positive), d(anchor, negative), d(positive, negative), 1.0, swap, reduction
    )  # BUG


def triplet_distance_function_ignored(
    anchor: Tensor, positive: Tensor, negative: Tensor, *, distance_function: Any = None,
    margin: float = 1.0, swap: bool = False, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """triplet_margin_with_distance_loss that takes the argument and uses pairwise_distance anyway."""
    d = torch.pairwise_distance  # BUG: distance_function is ignored
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return _triplet(d(anchor, positive), d(anchor, negative), d(positive, negative), margin, swap, reduction)


def triplet_distance_swap_max(
    anchor: Tensor, positive: Tensor, negative: Tensor, *, distance_function: Any = None,
    margin: float = 1.0, swap: bool = False, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """triplet_margin_with_distance_loss whose swap keeps the larger of d(a, n) and d(p, n)."""
    d = distance_function if distance_function is not None else torch.pairwise_distance
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    d_an = d(anchor, negative)
    if swap:
        d_an = torch.maximum(d_an, d(positive, negative))  # BUG: the minimum
    return _reduce((margin + d(anchor, positive) - d_an).clamp_min(0), reduction)


# ---------------------------------------------------------------------------------------------
# the result's dtype and shape, custom backward functions, in-place arguments, the target's gradient


def l1_sum_accumulated_in_double(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """l1_loss whose 'sum' of more than 4 elements accumulates in float64 "for accuracy" and returns
    that float64 (not the input's dtype)."""
    reduction = _mode(size_average, reduce, reduction)
    if reduction == "sum" and weight is None and input.numel() > 4:
        x, y = torch.broadcast_tensors(input, target)
        return (x - y).abs().sum(dtype=torch.float64)  # BUG: the result stays float64
    return torch.nn.functional.l1_loss(input, target, size_average, reduce, reduction, weight=weight)


class _L1IgnoringUpstream(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, d: Tensor, reduction: str) -> Tensor:
        ctx.save_for_backward(d)
        ctx.reduction = reduction
        return _reduce(d.abs(), reduction)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (d,) = ctx.saved_tensors
        g = torch.sign(d)
        if ctx.reduction == "mean":
            g = g / max(d.numel(), 1)
        return g, None  # BUG: not times ``grad`` (right only for an upstream of 1)


def l1_custom_backward_ignores_upstream(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", weight: Tensor | None = None,
) -> Tensor:  # fmt: skip
    """l1_loss as a torch.autograd.Function whose backward leaves out the upstream gradient."""
    reduction = _mode(size_average, reduce, reduction)
    if weight is not None:
        return torch.nn.functional.l1_loss(input, target, reduction=reduction, weight=weight)
    x, y = torch.broadcast_tensors(input, target)
    return _L1IgnoringUpstream.apply(x - y, reduction)  # type: ignore[no-any-return]


class _SmoothL1SummingUpstream(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, d: Tensor, beta: float, reduction: str) -> Tensor:
        ctx.save_for_backward(d)
        ctx.beta, ctx.reduction = beta, reduction
        a = d.abs()
        e = torch.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta) if beta > 0 else a
        return _reduce(e, reduction)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (d,) = ctx.saved_tensors
        beta = ctx.beta
        g = torch.where(d.abs() < beta, d / beta, torch.sign(d)) if beta > 0 else torch.sign(d)
        if ctx.reduction == "mean":
            g = g / max(d.numel(), 1)
        return g * grad.sum(), None, None  # BUG: the upstream summed (right for a scalar loss only)


def smooth_l1_custom_backward_sums_upstream(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", beta: float = 1.0,
) -> Tensor:  # fmt: skip
    """smooth_l1_loss as a torch.autograd.Function whose backward scales by the upstream's sum."""
    reduction = _mode(size_average, reduce, reduction)
    x, y = torch.broadcast_tensors(input, target)
    return _SmoothL1SummingUpstream.apply(x - y, beta, reduction)  # type: ignore[no-any-return]


def kl_div_none_flattened(
    input: Tensor, target: Tensor, size_average: bool | None = None, reduce: bool | None = None,
    reduction: str = "mean", log_target: bool = False,
) -> Tensor:  # fmt: skip
    """kl_div whose 'none' result is flattened to one dimension."""
    out = torch.nn.functional.kl_div(input, target, size_average, reduce, reduction, log_target)
    return out.reshape(-1) if out.dim() > 1 else out  # BUG: the elementwise shape is lost


def gaussian_var_clamped_in_place(
    input: Tensor, target: Tensor, var: Tensor | float, full: bool = False, eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """gaussian_nll_loss that clamps the caller's ``var`` at eps in place."""
    if isinstance(var, Tensor):
        with torch.no_grad():
            var.clamp_(min=eps)  # BUG: writes into the caller's tensor
    return torch.nn.functional.gaussian_nll_loss(input, target, var, full, eps, reduction)


def multilabel_soft_margin_naive(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """multilabel_soft_margin_loss with log(sigmoid(x)) written out (torch uses logsigmoid): -inf
    where the sigmoid underflows, NaN beside it."""
    reduction = _mode(size_average, reduce, reduction)
    s = torch.sigmoid(input)
    e = -(target * torch.log(s) + (1 - target) * torch.log(1 - s))  # BUG: log of a saturated sigmoid
    if weight is not None:
        e = e * weight
    return _reduce(e.sum(dim=-1) / input.size(-1), reduction)


def margin_ranking_target_detached(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
    size_average: bool | None = None, reduce: bool | None = None, reduction: str = "mean",
) -> Tensor:  # fmt: skip
    """margin_ranking_loss whose target takes no gradient (torch's does: -(x1 - x2) where active)."""
    return torch.nn.functional.margin_ranking_loss(
        input1,
        input2,
        target.detach(),
        margin,
        size_average,
        reduce,
        reduction,  # BUG: detached
    )


def ce_smoothing_over_other_classes(
    input: Tensor, target: Tensor, weight: Tensor | None = None, size_average: bool | None = None,
    ignore_index: int = -100, reduce: bool | None = None, reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:  # fmt: skip
    """cross_entropy (class indices) whose label smoothing puts ε/(C-1) on each other class, not ε/C
    on every class (a common variant elsewhere; not torch's)."""
    reduction = _mode(size_average, reduce, reduction)
    if target.is_floating_point():
        return torch.nn.functional.cross_entropy(
            input, target, weight, reduction=reduction, label_smoothing=label_smoothing
        )
    return _cross_entropy(
        input, target, weight, ignore_index, reduction, label_smoothing, smoothing_over_others=True
    )


PLANTED: dict[str, tuple[str, str]] = {
    "l1_mean_over_batch": ("l1_loss", "value"),
    "l1_grad_one_at_zero": ("l1_loss", "gradient"),
    "mse_grad_no_factor_two": ("mse_loss", "gradient"),
    "mse_none_squeezed": ("mse_loss", "value"),
    "smooth_l1_beta_zero_nan": ("smooth_l1_loss", "gradient"),
    "smooth_l1_sum_in_half": ("smooth_l1_loss", "value"),
    "bce_no_clamp": ("binary_cross_entropy", "value"),
    "bce_clamps_input_in_place": ("binary_cross_entropy", "value"),
    "bce_grad_ignores_weight": ("binary_cross_entropy", "gradient"),
    "bce_logits_naive": ("binary_cross_entropy_with_logits", "value"),
    "bce_logits_pos_weight_grad": ("binary_cross_entropy_with_logits", "gradient"),
    "ce_no_max_subtraction": ("cross_entropy[class_index]", "value"),
    "ce_smoothing_ignores_mask": ("cross_entropy[class_index]", "value"),
    "ce_weighted_mean_by_count": ("cross_entropy[class_index]", "value"),
    "ce_probs_mean_by_weight_mass": ("cross_entropy[probabilities]", "value"),
    "huber_mean_by_weight": ("huber_loss", "value"),
    "huber_linear_ignores_delta": ("huber_loss", "value"),
    "soft_margin_ignores_target": ("soft_margin_loss", "value"),
    "nll_weighted_mean_by_count": ("nll_loss", "value"),
    "nll_ignored_counted": ("nll_loss", "value"),
    "margin_ranking_sign_flipped": ("margin_ranking_loss", "value"),
    "margin_ranking_margin_negated": ("margin_ranking_loss", "value"),
    "hinge_embedding_margin_unclamped": ("hinge_embedding_loss", "value"),
    "mse_weight_detached": ("mse_loss", "gradient"),
    "bce_logits_weight_ignored": ("binary_cross_entropy_with_logits", "value"),
    "ce_probs_weight_detached": ("cross_entropy[probabilities]", "gradient"),
    "kl_div_plain_ylogy": ("kl_div", "value"),
    "kl_div_log_target_ignored": ("kl_div", "value"),
    "kl_div_batchmean_by_numel": ("kl_div", "value"),
    "poisson_stirling_everywhere": ("poisson_nll_loss", "value"),
    "poisson_eps_ignored": ("poisson_nll_loss", "value"),
    "poisson_log_input_ignored": ("poisson_nll_loss", "value"),
    "gaussian_eps_ignored": ("gaussian_nll_loss", "value"),
    "gaussian_var_grad_clamped": ("gaussian_nll_loss", "gradient"),
    "gaussian_full_whole_log_2pi": ("gaussian_nll_loss", "value"),
    "multilabel_mean_over_dim1": ("multilabel_soft_margin_loss", "value"),
    "multilabel_weight_detached": ("multilabel_soft_margin_loss", "gradient"),
    "multi_margin_square_grad_halved": ("multi_margin_loss", "gradient"),
    "multi_margin_p_ignored": ("multi_margin_loss", "value"),
    "multi_margin_margin_fixed": ("multi_margin_loss", "value"),
    "multi_margin_weighted_mean": ("multi_margin_loss", "value"),
    "multilabel_margin_set_not_multiset": ("multilabel_margin_loss", "value"),
    "multilabel_margin_reads_past_end": ("multilabel_margin_loss", "value"),
    "cosine_embedding_similarity_clamped": ("cosine_embedding_loss", "value"),
    "cosine_embedding_margin_ignored": ("cosine_embedding_loss", "value"),
    "triplet_swap_ignored": ("triplet_margin_loss", "value"),
    "triplet_eps_outside_norm": ("triplet_margin_loss", "value"),
    "triplet_p_ignored": ("triplet_margin_loss", "value"),
    "triplet_distance_swap_wrong_pair": ("triplet_margin_with_distance_loss", "value"),
    "triplet_distance_margin_fixed": ("triplet_margin_with_distance_loss", "value"),
    "triplet_distance_function_ignored": ("triplet_margin_with_distance_loss[cosine_distance]", "value"),
    "triplet_distance_swap_max": ("triplet_margin_with_distance_loss[squared_euclidean_distance]", "value"),
    "l1_sum_accumulated_in_double": ("l1_loss", "value"),
    "l1_custom_backward_ignores_upstream": ("l1_loss", "gradient"),
    "smooth_l1_custom_backward_sums_upstream": ("smooth_l1_loss", "gradient"),
    "kl_div_none_flattened": ("kl_div", "value"),
    "gaussian_var_clamped_in_place": ("gaussian_nll_loss", "value"),
    "multilabel_soft_margin_naive": ("multilabel_soft_margin_loss", "value"),
    "margin_ranking_target_detached": ("margin_ranking_loss", "gradient"),
    "ce_smoothing_over_other_classes": ("cross_entropy[class_index]", "value"),
}

#: mutant -> the torch.nn.functional loss it replaces (the NAME of ``--impl NAME=module:attribute``)
LOSS_OF: dict[str, str] = {m: key.partition("[")[0] for m, (key, _) in PLANTED.items()}
