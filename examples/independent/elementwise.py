"""Independent re-implementations of torch's element-wise losses, in plain torch tensor ops.

Each function here has exactly the signature of the ``torch.nn.functional`` function of its name
(torch 2.13) and implements its whole contract: every reduction, the deprecated
``size_average``/``reduce`` arguments, every option, torch's broadcasting rules and warnings, and the
same exception types on invalid input. None of them calls ``torch.nn.functional``, an ``nn`` loss
module or a ``torch._C`` loss kernel: each is written from the loss's documented formula (``spec/``,
``docs/losses/``) with elementary tensor ops, and its gradients come from autograd through those
ops, except where torch's documented convention is not the derivative of its forward
(binary_cross_entropy's floored input gradient and its double backward, gaussian_nll_loss's
straight-through variance clamp) or where autograd's own derivative would be 0/0 (kl_div's
y·log y at y = 0): small ``torch.autograd.Function`` classes state those explicitly, with
backward passes written in differentiable tensor ops, so second derivatives work too.

They exist to show that the conformance suite raises no false alarm on correct code other than
torch's own, written differently, and usually more carefully, than torch's kernels::

    pytest conformance --impl mse_loss=examples.independent.elementwise:mse_loss --loss mse_loss

Numerical choices common to all: float16 and bfloat16 are computed in float32 and rounded once at
the end (torch's "opmath" type); overflow-prone forms are rewritten (softplus with a sign split,
weighted means over normalised weights, products ordered to avoid squaring overflows), and each
branch of a ``torch.where`` is evaluated on inputs masked to its own side, so that the branch not
taken contributes an exact 0, never ``0 · inf = NaN``, to the gradient.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor
from torch.nn import _reduction

#: torch's EPSILON of the BCE input-gradient floor: the float32 literal 1e-12, in every dtype
_BCE_EPS = 9.999999960041972e-13
#: the eps of torch's BCE double backward: the double literal 1e-12
_BCE_EPS2 = 1e-12
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG_2PI = math.log(2 * math.pi)
_LOW_PRECISION = (torch.float16, torch.bfloat16)

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "margin_ranking_loss",
    "mse_loss",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
]


# ---------------------------------------------------------------------------------------------
# shared machinery


def _legacy(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """The reduction, overridden (with torch's deprecation warning) by either legacy argument."""
    if size_average is not None or reduce is not None:
        return _reduction.legacy_get_string(size_average, reduce)
    return reduction


def _checked(reduction: str) -> str:
    """torch's ``_Reduction.get_enum`` rule: 'elementwise_mean' warns and means 'mean'; a name
    other than 'none', 'mean' or 'sum' is a ValueError."""
    if reduction == "elementwise_mean":
        warnings.warn(
            "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
            stacklevel=3,
        )
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply a (checked) reduction: the mean is over the elements (NaN when there are none)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def _compute_dtype(*tensors: Tensor) -> tuple[torch.dtype, torch.dtype]:
    """(result dtype, dtype to compute in): float16 and bfloat16 are computed in float32."""
    out = tensors[0].dtype
    for t in tensors[1:]:
        out = torch.promote_types(out, t.dtype)
    return out, (torch.float32 if out in _LOW_PRECISION else out)


def _up(t: Tensor, dtype: torch.dtype) -> Tensor:
    """``t`` in the compute dtype (a differentiable cast; the identity when it already is; integers
    are promoted)."""
    return t if t.dtype == dtype else t.to(dtype)


def _down(t: Tensor, dtype: torch.dtype) -> Tensor:
    """The result rounded once to the result dtype (only float16/bfloat16 were widened)."""
    return t.to(dtype) if dtype in _LOW_PRECISION and t.dtype != dtype else t


def _warn_target_size(input: Tensor, target: Tensor) -> None:
    if target.size() != input.size():
        warnings.warn(
            f"Using a target size ({target.size()}) that is different to the input size ({input.size()}). "
            "This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            stacklevel=3,
        )


def _no_larger_than(input: Tensor, *others: Tensor | None) -> None:
    """torch's in-place output kernels cannot grow the output beyond input's shape."""
    shape = torch.broadcast_shapes(input.shape, *(o.shape for o in others if o is not None))
    if shape != input.shape:
        raise RuntimeError(
            f"output with shape {list(input.shape)} doesn't match the broadcast shape {list(shape)}"
        )


def _weighted_mean(loss: Tensor, weight: Tensor) -> Tensor:
    """Σ w·ℓ / Σ w, evaluated as Σ p·ℓ with p = w' / Σ w' and w' = w / 2^k (2^k the binade of
    max |w|, a detached exact power of two): neither Σ w·ℓ nor u / Σ w overflows where the mean
    and its gradients are finite, and the quotient is unchanged (0/0 = NaN for zero weights)."""
    if weight.numel() == 0:
        return (loss * weight).sum() / weight.sum()
    with torch.no_grad():
        top = weight.abs().amax()
        mantissa, _ = torch.frexp(top)  # top = mantissa · 2^e, mantissa in [1/2, 1)
        scale = top / (2 * mantissa)  # 2^(e - 1): representable for every finite top > 0
    w = weight / scale
    return (loss * (w / w.sum())).sum()


def _softplus(z: Tensor) -> Tensor:
    """log(1 + exp(z)) split at 0 so that exp never overflows: z + log1p(exp(-z)) for z > 0,
    log1p(exp(z)) otherwise; its gradient is sigmoid(z) (1/2 at 0) and its second derivative
    finite everywhere, each branch evaluated on z masked to its own side."""
    zero = torch.zeros_like(z)
    pos = z > 0
    z_pos = torch.where(pos, z, zero)
    z_neg = torch.where(pos, zero, z)
    return torch.where(pos, z + torch.log1p(torch.exp(-z_pos)), torch.log1p(torch.exp(z_neg)))


# ---------------------------------------------------------------------------------------------
# autograd functions for torch's non-derivative conventions


def _times(w: Tensor | None, t: Tensor) -> Tensor:
    """w·t, or t where there is no weight."""
    return t if w is None else w * t


class _BCEInputGrad(torch.autograd.Function):
    """(w·(x - y)/max(x(1 - x), float32(1e-12)))·g, with torch's own double backward. Each product
    takes the weight first and the incoming gradients last, so that a tiny weight or upstream
    does not underflow before it meets the large factors."""

    @staticmethod
    def forward(ctx: Any, g: Tensor, x: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
        ctx.save_for_backward(g, x, y, w)
        return _times(w, (x - y) / torch.clamp(x * (1 - x), min=_BCE_EPS)) * g

    @staticmethod
    def backward(ctx: Any, gg: Tensor) -> Any:
        g, x, y, w = ctx.saved_tensors
        dg = dx = dy = None
        if ctx.needs_input_grad[0]:
            dg = _times(w, (x - y) / torch.clamp(x * (1 - x), min=_BCE_EPS)) * gg
        if ctx.needs_input_grad[1]:
            # (x² - 2xy + y) / ((x + eps)²(1 - x + eps)²), its numerator written as
            # x²(1 - y) + y(1 - x)²: two non-negative terms, no cancellation
            q = (x + _BCE_EPS2) * (1 - x + _BCE_EPS2)
            dx = _times(w, (x * x * (1 - y) + y * (1 - x) ** 2) / q / q) * g * gg
        if ctx.needs_input_grad[2]:
            dy = -_times(w, 1 / torch.clamp(x * (1 - x), min=_BCE_EPS2)) * g * gg
        return dg, dx, dy, None


class _BCETargetGrad(torch.autograd.Function):
    """(w·(log1p(-x) - log x))·g = -w·logit(x)·g, unclamped (+inf at x = 0); its derivative in x
    is -w·g/(x(1 - x)), formed weight first (-inf at x in {0, 1}, not 0/0 where w·g underflows)."""

    @staticmethod
    def forward(ctx: Any, g: Tensor, x: Tensor, w: Tensor | None) -> Tensor:
        ctx.save_for_backward(g, x, w)
        return _times(w, torch.log1p(-x) - torch.log(x)) * g

    @staticmethod
    def backward(ctx: Any, gg: Tensor) -> Any:
        g, x, w = ctx.saved_tensors
        dg = dx = None
        if ctx.needs_input_grad[0]:
            dg = _times(w, torch.log1p(-x) - torch.log(x)) * gg
        if ctx.needs_input_grad[1]:
            dx = -_times(w, 1 / (x * (1 - x))) * g * gg
        return dg, dx, None


class _BCE(torch.autograd.Function):
    """Per-element -w[y·max(log x, -100) + (1 - y)·max(log1p(-x), -100)], with torch's gradients."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, y, w)
        log_x = torch.clamp(torch.log(x), min=-100)
        log_1mx = torch.clamp(torch.log1p(-x), min=-100)  # log1p: exact for x near 0
        return _times(w, -(y * log_x + (1 - y) * log_1mx))

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        x, y, w = ctx.saved_tensors
        gx = _BCEInputGrad.apply(g, x, y, w) if ctx.needs_input_grad[0] else None
        gy = _BCETargetGrad.apply(g, x, w) if ctx.needs_input_grad[1] else None
        return gx, gy, None


class _ClampMinStraightThrough(torch.autograd.Function):
    """max(v, eps) in the forward, the identity in the backward (torch clamps a clone of var
    under no_grad)."""

    @staticmethod
    def forward(ctx: Any, v: Tensor, eps: float) -> Tensor:
        return v.clamp(min=eps)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Any:
        return grad, None


class _XLogX(torch.autograd.Function):
    """y·log y, 0 at y = 0, with gradient log y + 1 (-inf at 0, not NaN) and second derivative 1/y."""

    @staticmethod
    def forward(ctx: Any, y: Tensor) -> Tensor:
        ctx.save_for_backward(y)
        return torch.special.xlogy(y, y)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        (y,) = ctx.saved_tensors
        return g * (torch.log(y) + 1)


# ---------------------------------------------------------------------------------------------
# binary classification


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """BCE of probabilities: log1p(-x) for log(1 - x), each log clamped at -100; input gradient
    w(x - y)/max(x(1 - x), float32(1e-12)) and torch's double backward (rewritten without
    cancellation) by autograd.Function; unclamped target gradient w·(log1p(-x) - log x)."""
    reduction = _checked(_legacy(size_average, reduce, reduction))
    if target.size() != input.size():
        raise ValueError(
            f"Using a target size ({target.size()}) that is different to the input size ({input.size()}) "
            "is deprecated. Please ensure they have the same size."
        )
    if weight is not None:
        weight = weight.expand(torch.broadcast_shapes(target.size(), weight.size()))
        _no_larger_than(input, weight)
    if not bool(((input >= 0) & (input <= 1)).all()):  # NaN fails too
        raise RuntimeError("all elements of input should be between 0 and 1")
    if not bool(((target >= 0) & (target <= 1)).all()):
        raise RuntimeError("all elements of target should be between 0 and 1")
    if not target.is_floating_point():
        raise RuntimeError(f"Found dtype {target.dtype} but expected {input.dtype}")
    out, dt = _compute_dtype(input, target)
    w = None if weight is None else _up(weight, dt)
    loss = _BCE.apply(_up(input, dt), _up(target, dt), w)
    return _down(_reduce(loss, reduction), out)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """BCE of logits as (1 - y)·softplus(x) + p·y·softplus(-x), softplus split at 0 (no exp
    overflow, no log(sigmoid) underflow, no 1 + (p - 1)y cancellation; exact gradient sigmoid)."""
    reduction = _checked(_legacy(size_average, reduce, reduction))
    if target.size() != input.size():
        raise ValueError(f"Target size ({target.size()}) must be the same as input size ({input.size()})")
    _no_larger_than(input, weight, pos_weight)
    out, dt = _compute_dtype(input, target)
    x, y = _up(input, dt), _up(target, dt)
    negative = _softplus(x)  # -log(1 - sigmoid(x))
    positive = _softplus(-x)  # -log(sigmoid(x))
    if pos_weight is not None:
        positive = positive * _up(pos_weight, dt)
    loss = (1 - y) * negative + y * positive
    if weight is not None:
        loss = loss * _up(weight, dt)
    return _down(_reduce(loss, reduction), out)


def soft_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """log(1 + exp(-y·x)) as softplus(-y·x) split at 0: finite wherever the loss is (torch's
    literal form overflows); the target is detached (torch does not differentiate it)."""
    reduction = _checked(_legacy(size_average, reduce, reduction))
    _no_larger_than(input, target)
    out, dt = _compute_dtype(input, target)
    loss = _softplus(-_up(target, dt).detach() * _up(input, dt))
    return _down(_reduce(loss, reduction), out)


# ---------------------------------------------------------------------------------------------
# likelihoods and divergences


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Pointwise KL: y·log y by an autograd.Function (0 at y = 0, target gradient log y + 1 - x
    without 0/0), or exp(y)·(y - x) with log_target; 'mean' warns, 'batchmean' divides by size(0)."""
    if size_average is not None or reduce is not None:
        reduction = _checked(_reduction.legacy_get_string(size_average, reduce))
    else:
        if reduction == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the support size."
                "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                stacklevel=2,
            )
        if reduction != "batchmean":
            reduction = _checked(reduction)
    if not isinstance(log_target, bool):
        raise TypeError(f"kl_div(): argument 'log_target' must be bool, not {type(log_target).__name__}")
    if input.is_complex() or target.is_complex():
        raise RuntimeError("kl_div: Complex inputs not supported.")
    if not input.is_floating_point() or not target.is_floating_point():
        raise RuntimeError("kl_div: Integral inputs not supported.")
    out, dt = _compute_dtype(input, target)
    x, y = _up(input, dt), _up(target, dt)
    if log_target:
        loss = torch.exp(y) * (y - x)
    else:
        loss = _XLogX.apply(y) - y * x
    if reduction == "batchmean":
        total = loss.sum()
        return _down(total / input.size(0) if input.dim() != 0 else total, out)
    return _down(_reduce(loss, reduction), out)


def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """exp(x) - y·x, or x - y·log(x + eps); full adds Stirling y(log y - 1) + ½(log y + log 2π)
    where y > 1, evaluated at a masked target elsewhere so its gradients there are exact zeros."""
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not a valid value for reduction")
    out, dt = _compute_dtype(input, target)
    if not out.is_floating_point:  # integers are promoted, as torch does
        out = dt = torch.get_default_dtype()
    x, y = _up(input, dt), _up(target, dt)
    if log_input:
        loss = torch.exp(x) - y * x
    else:
        loss = x - y * torch.log(x + eps)
    if full:
        keep = ~(y <= 1)  # torch masks where target <= 1 (a NaN target is kept, and stays NaN)
        y_safe = torch.where(keep, y, torch.ones_like(y))
        log_y = torch.log(y_safe)
        stirling = y_safe * (log_y - 1) + 0.5 * (log_y + _LOG_2PI)
        loss = loss + torch.where(keep, stirling, torch.zeros_like(stirling))
    return _down(_reduce(loss, reduction), out)


def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var: Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """½(log v + d·(d/v)), v = max(var, eps) clamped straight-through (autograd.Function); d·(d/v)
    rather than d²/v so that neither d² overflows nor underflows where the quotient is in range."""
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * torch.ones_like(input)
    elif torch.any(var < 0):
        raise ValueError("var has negative entry/entries")
    if var.size() != input.size():
        if input.size()[:-1] == var.size():  # one variance per sample: along input's last dim
            var = torch.unsqueeze(var, -1)
        elif not (
            input.ndim == var.ndim
            and sum(v for i, v in zip(input.size(), var.size(), strict=True) if i != v) == 1
        ):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    out, dt = _compute_dtype(input, target, var)
    x, y = _up(input, dt), _up(target, dt)
    v = _ClampMinStraightThrough.apply(_up(var, dt), eps)
    d = x - y
    loss = 0.5 * torch.log(v) + (0.5 * d) * (d / v)
    if full:
        loss = loss + _HALF_LOG_2PI
    return _down(_reduce(loss, reduction), out)


# ---------------------------------------------------------------------------------------------
# ranking and embedding


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, -y·(x1 - x2) + margin) by clamp(min=0), whose gradient passes at the kink as
    torch's does; same-ndim tensors broadcast."""
    reduction = _checked(_legacy(size_average, reduce, reduction))
    if input1.dim() != input2.dim() or input1.dim() != target.dim():
        raise RuntimeError(
            f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {input1.size()}, input2: {input2.size()}, target: {target.size()} "
        )
    out, dt = _compute_dtype(input1, input2, target)
    if not out.is_floating_point:
        out = dt = torch.get_default_dtype()
    x1, x2, y = _up(input1, dt), _up(input2, dt), _up(target, dt)
    loss = torch.clamp(-y * (x1 - x2) + margin, min=0)
    return _down(_reduce(loss, reduction), out)


def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """where(y ≠ 1, max(0, margin - x), 0) + where(y ≠ -1, x, 0): x for y = 1, the hinge for
    y = -1 (gradient passing at x = margin), both terms otherwise, as torch; no target gradient."""
    reduction = _checked(_legacy(size_average, reduce, reduction))
    out, dt = _compute_dtype(input, target)
    x = _up(input, dt)
    zero = torch.zeros_like(x)
    hinge = torch.clamp(margin - x, min=0)
    loss = torch.where(target != 1, hinge, zero) + torch.where(target != -1, x, zero)
    return _down(_reduce(loss, reduction), out)


# ---------------------------------------------------------------------------------------------
# regression


def _regression_pair(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor, torch.dtype]:
    """Broadcast input and target as torch does (after its size warning), in the compute dtype."""
    out, dt = _compute_dtype(input, target)
    x, y = torch.broadcast_tensors(_up(input, dt), _up(target, dt))
    return x, y, out


def _same_size_weight(input: Tensor, weight: Tensor) -> None:
    if weight.size() != input.size():
        raise ValueError("Weights and input must have the same size.")


def _weighted(loss: Tensor, weight: Tensor, reduction: str, out: torch.dtype, *, by_weights: bool) -> Tensor:
    """The functional ``weight`` path: w·ℓ reduced; 'mean' is Σ w·ℓ / Σ w (``by_weights``: l1_loss,
    mse_loss; over normalised weights) or Σ w·ℓ / n (huber_loss)."""
    w = _up(weight, loss.dtype)
    if reduction == "mean":
        return _down(_weighted_mean(loss, w) if by_weights else (loss * w).mean(), out)
    if reduction == "none":
        return _down(loss * w, out)
    if reduction == "sum":
        return _down((loss * w).sum(), out)
    raise ValueError(f"Invalid reduction mode: {reduction}. Expected one of 'none', 'mean', 'sum'.")


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """|x - y| by torch.abs (gradient sign(d), 0 at d = 0; complex |z| too); weighted 'mean' is
    Σ w|d| / Σ w over normalised weights (no overflow of the sum or of u / Σ w)."""
    _warn_target_size(input, target)
    reduction = _legacy(size_average, reduce, reduction)
    x, y, out = _regression_pair(input, target)
    if weight is not None:
        _same_size_weight(input, weight)
        return _weighted(torch.abs(x - y), weight, reduction, out, by_weights=True)
    reduction = _checked(reduction)
    return _down(_reduce(torch.abs(x - y), reduction), out)


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """(x - y)² as d·d (gradient 2d); weighted 'mean' is Σ w·d² / Σ w over normalised weights."""
    _warn_target_size(input, target)
    reduction = _legacy(size_average, reduce, reduction)
    x, y, out = _regression_pair(input, target)
    if out.is_complex or not out.is_floating_point:
        raise NotImplementedError(f'"mse_cpu" not implemented for {out}')
    d = x - y
    loss = d * d
    if weight is not None:
        _same_size_weight(input, weight)
        return _weighted(loss, weight, reduction, out, by_weights=True)
    return _down(_reduce(loss, _checked(reduction)), out)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """½d²/β for |d| < β as (½d)·(d/β) on d masked to that side (no d² under/overflow, no 0·inf
    in the branch not taken), else |d| - ½β; β = 0 is exactly L1 (gradient sign(d), 0 at 0)."""
    _warn_target_size(input, target)
    reduction = _legacy(size_average, reduce, reduction)
    x, y, out = _regression_pair(input, target)
    reduction = _checked(reduction)
    if beta == 0.0:
        return _down(_reduce(torch.abs(x - y), reduction), out)
    if not beta >= 0:  # negative (or NaN) beta
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    d = x - y
    ad = torch.abs(d)
    inside = ad < beta  # |d| = beta takes the linear branch
    d_in = torch.where(inside, d, torch.zeros_like(d))
    loss = torch.where(inside, (0.5 * d_in) * (d_in / beta), ad - 0.5 * beta)
    return _down(_reduce(loss, reduction), out)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """½d² for |d| < δ as (½d)·d on d masked to that side (no overflow where ½d² is finite), else
    δ(|d| - ½δ); weighted 'mean' is the plain mean of w·ℓ, as torch 2.13's."""
    _warn_target_size(input, target)
    x, y, out = _regression_pair(input, target)
    if weight is None:
        reduction = _checked(reduction)
    if not delta > 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    d = x - y
    ad = torch.abs(d)
    inside = ad < delta  # |d| = delta takes the linear branch
    d_in = torch.where(inside, d, torch.zeros_like(d))
    loss = torch.where(inside, (0.5 * d_in) * d_in, delta * (ad - 0.5 * delta))
    if weight is None:
        return _down(_reduce(loss, reduction), out)
    _same_size_weight(input, weight)
    return _weighted(loss, weight, reduction, out, by_weights=False)
