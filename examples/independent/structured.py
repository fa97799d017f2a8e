"""Independent re-implementations of torch.nn.functional's structured losses, in plain torch ops.

These are not torch's code: each loss is written from its documented definition (the suite's
``spec/``) with ordinary tensor operations (``torch.logsumexp``, ``gather``, ``where``, ``clamp``,
``torch.linalg.vector_norm``, matmul), never calling ``torch.nn.functional``, a loss module,
``torch.cdist`` or a ``torch._C`` loss kernel. They exist to show that the conformance suite raises
no false alarm on correct code that is not torch's own: run one of them through the suite with,
for example::

    pytest conformance --impl cross_entropy=examples.independent.structured:cross_entropy \\
        --loss cross_entropy

Every function has exactly torch.nn.functional's signature (torch 2.13), the legacy
``size_average`` / ``reduce`` arguments included, and takes every option torch takes. Gradients
come from autograd through the ops chosen (forms picked so that the gradient is torch's at kinks
and finite where torch's is), except for ``ctc_loss``, whose backward states torch's convention
(the gradient w.r.t. the logits of a ``log_softmax``) in a ``torch.autograd.Function``.
Half-precision inputs are computed in float32 and the result cast back.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.nn import _reduction

if TYPE_CHECKING:
    from torch.nn import LinearCrossEntropyOptions

__all__ = [
    "cosine_embedding_loss",
    "cross_entropy",
    "ctc_loss",
    "linear_cross_entropy",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]

#: the EPSILON of torch's loss kernels: a float32 literal, whatever the dtype (cosine_embedding_loss)
_EPSILON_F32_1E12 = float(torch.tensor(1e-12, dtype=torch.float32).item())
_REDUCTIONS = ("none", "mean", "sum")


# ---------------------------------------------------------------------------------------------
# shared machinery


def _reduction_of(size_average: bool | None, reduce: bool | None, reduction: str, *, legacy_ok: bool) -> str:
    """The reduction string: the legacy pair overrides ``reduction`` (with torch's deprecation
    warning); ``'elementwise_mean'`` is accepted, with a warning, where torch's C++ losses take it."""
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)
    if legacy_ok and reduction == "elementwise_mean":
        warnings.warn(
            "reduction='elementwise_mean' is deprecated, please use reduction='mean' instead.",
            stacklevel=3,
        )
        reduction = "mean"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    """'none', 'sum' or the plain mean (NaN for an empty loss, 0/0); half precision is summed in
    float32, so a mean of representable losses does not overflow."""
    if reduction == "none":
        return loss
    acc = loss.to(_compute_dtype(loss.dtype))  # half: accumulate in float32, round once
    if reduction == "sum":
        return acc.sum().to(loss.dtype)
    return (acc.sum() / loss.numel()).to(loss.dtype)  # an empty loss: 0/0 = NaN, as torch


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half and bfloat16 are computed in float32 (their sums and logs would lose digits)."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _floating(t: Tensor) -> Tensor:
    """Integer and bool tensors as the default float dtype (torch promotes them in these losses)."""
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


def _logsumexp(x: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    """log Σ exp along ``dim``, max-shifted (no overflow); the shift is detached, so it only moves
    the evaluation point, and a row of all -inf gives -inf with a zero (not NaN) gradient."""
    m = x.detach().amax(dim=dim, keepdim=True)
    finite = torch.isfinite(m)
    shift = torch.where(finite, m, torch.zeros_like(m))
    out = torch.log(torch.exp(x - shift).sum(dim=dim, keepdim=True)) + shift
    return out if keepdim else out.squeeze(dim)


def _log_softmax(x: Tensor, dim: int) -> Tensor:
    """x - logsumexp(x): the max-shifted log-softmax (finite for any finite logits)."""
    return x - _logsumexp(x, dim, keepdim=True)


def _log_sigmoid(x: Tensor) -> Tensor:
    """log σ(x) = min(x, 0) - log1p(exp(-|x|)), both pieces chosen by one ``where`` on x >= 0 so
    that exp never overflows and the derivative is σ(-x) everywhere, 1/2 at x = 0."""
    nonneg = x >= 0
    neg_abs = torch.where(nonneg, -x, x)
    return torch.where(nonneg, torch.zeros_like(x), x) - torch.log1p(torch.exp(neg_abs))


# ---------------------------------------------------------------------------------------------
# nll_loss and cross_entropy


def _check_index_target(input: Tensor, target: Tensor) -> None:
    """Shape and dtype rules of torch's class-index path (input (C), (N, C) or (N, C, d1, ...))."""
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    if target.dtype not in (torch.int64, torch.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {target.dtype}")
    if target.dtype == torch.uint8 and input.dim() > 2:
        raise RuntimeError("expected scalar type Long but found Byte")
    if input.dim() == 1:
        if target.dim() > 1 or (target.dim() == 1 and target.shape[0] != 1):
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}"
            )
        return
    if target.dim() == 0 or input.shape[0] != target.shape[0]:
        got = target.shape[0] if target.dim() else 0
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target batch_size ({got}).")
    want = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != want:
        raise RuntimeError(f"Expected target size {list(want)}, got {list(target.shape)}")


def _check_weight(weight: Tensor | None, c: int, dtype: torch.dtype, prefix: str = "") -> None:
    if weight is None:
        return
    if weight.dim() != 1 or weight.numel() != c:
        raise RuntimeError(
            f"{prefix}weight tensor should be defined either for all {c} classes or no classes but "
            f"got weight tensor of shape: {list(weight.shape)}"
        )
    if weight.dtype != dtype:
        raise RuntimeError(f"expected scalar type {dtype} but found {weight.dtype}")


def _class_last(input: Tensor) -> Tensor:
    """The class axis (dim 1, or 0 for an unbatched (C) input) moved last: (..., C)."""
    return input.movedim(0 if input.dim() == 1 else 1, -1)


def _index_loss(
    logp: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    smoothing: float = 0.0,
) -> Tensor:
    """The class-index loss (1 - ε)·(-w[y] logp[y]) + (ε/C)·Σ_k -w_k logp_k per sample, ``logp``
    class-last. Ignored samples: class replaced by 0 before the gather (any ignore_index is safe)
    and the loss masked by ``where`` (exact 0 and zero gradient); a kept target outside [0, C)
    raises IndexError. 'mean' divides by W = Σ w[y] over the kept samples by scaling the weights
    by 1/W first (Σ (w/W)·ℓ: neither Σ w·ℓ nor upstream/W can overflow); W = 0 gives NaN (0/0)."""
    c = logp.shape[-1]
    t = target.to(torch.int64).reshape(logp.shape[:-1])
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= c))
    if bool(bad.any()):
        raise IndexError(f"Target {int(t[bad][0])} is out of bounds.")
    safe = torch.where(keep, t, torch.zeros_like(t))
    picked = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    w_all = torch.ones(c, dtype=logp.dtype, device=logp.device) if weight is None else weight.to(logp.dtype)
    zero = torch.zeros_like(picked)
    w_y = torch.where(keep, w_all[safe], zero)
    total_weight = w_y.sum()
    normalise = reduction == "mean" and bool(total_weight != 0)
    # the smoothing coefficients (ε/C)·w_k, scaled by 1/W after the small factor ε/C applies
    w_smooth = w_all * (smoothing / c)
    if normalise:
        w_y = torch.where(keep, w_all[safe] / total_weight, zero)
        w_smooth = w_smooth / total_weight

    nll = torch.where(keep, -w_y * picked, zero)
    smooth = torch.where(keep, -(logp * w_smooth).sum(dim=-1), zero) if smoothing > 0 else zero
    if reduction == "none":
        return (1 - smoothing) * nll + smooth if smoothing > 0 else nll
    if reduction == "sum" or normalise:
        return ((1 - smoothing) * nll + smooth).sum() if smoothing > 0 else nll.sum()
    # a mean over W = 0: each term 0/0 = NaN (NaN gradients for kept samples, 0 for ignored)
    return (1 - smoothing) * (nll.sum() / total_weight) + smooth.sum() / total_weight


def _check_floating(input: Tensor, name: str) -> None:
    if not input.is_floating_point():
        raise NotImplementedError(f'"{name}" not implemented for {input.dtype}')


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """-w[y]·x[y] by gather; ignored samples masked by ``where`` (exact zero loss and gradient);
    the weighted mean as Σ (w[y]/Σw)·ℓ (no overflow of the sum or of upstream/Σw)."""
    reduction = _reduction_of(size_average, reduce, reduction, legacy_ok=True)
    _check_index_target(input, target)
    _check_floating(input, "nll_loss_out_frame")
    c = input.shape[0 if input.dim() == 1 else 1]
    _check_weight(weight, c, input.dtype)
    out_dtype = input.dtype
    x = _class_last(input.to(_compute_dtype(out_dtype)))
    return _index_loss(x, target, weight, ignore_index, reduction).to(out_dtype)


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Max-shifted log-softmax; smoothing term (ε/C)·Σ_k w_k log p_k computed only when ε > 0,
    masked for ignored samples; index path mean as Σ (w/Σw[y])·ℓ with ε/C applied before 1/Σw
    (no intermediate overflow); probability path mean by N·d1·…."""
    reduction = _reduction_of(size_average, reduce, reduction, legacy_ok=True)
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    eps = float(label_smoothing) if label_smoothing > 0.0 else 0.0  # torch: negative acts as 0
    if input.dim() < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.dim()})")
    _check_floating(input, "log_softmax")
    c = input.shape[0 if input.dim() == 1 else 1]
    out_dtype = input.dtype
    logp = _log_softmax(_class_last(input.to(_compute_dtype(out_dtype))), -1)  # (..., C)

    if input.shape == target.shape:  # class probabilities
        if not target.is_floating_point():
            raise RuntimeError(
                f"Expected floating point type for target with class probabilities, got {target.dtype}"
            )
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        _check_weight(weight, c, input.dtype, prefix="cross_entropy: ")
        t = _class_last(target).to(logp.dtype)
        if eps > 0:
            t = (1 - eps) * t + eps / c
        terms = t * logp
        if weight is not None:
            terms = terms * weight.to(logp.dtype)
        loss = -terms.sum(dim=-1)
        return _reduce(loss, reduction).to(out_dtype)

    _check_index_target(input, target)
    _check_weight(weight, c, input.dtype)
    return _index_loss(logp, target, weight, ignore_index, reduction, eps).to(out_dtype)


# ---------------------------------------------------------------------------------------------
# multilabel_soft_margin_loss


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """-(y log σ(x) + (1-y) log σ(-x)) with an overflow-free log σ whose derivative is exact at 0;
    the mean over the LAST dim, then the reduction."""
    if size_average is not None or reduce is not None:
        reduction = _reduction.legacy_get_string(size_average, reduce)
    if reduction not in _REDUCTIONS:
        raise ValueError(reduction + " is not valid")
    if input.dim() < 1:
        raise IndexError("Dimension specified as -1 but tensor has no dimensions")
    _check_floating(input, "log_sigmoid_forward")
    out_dtype = input.dtype
    x = input.to(_compute_dtype(out_dtype))
    y = target.to(x.dtype) if target.is_floating_point() or x.is_floating_point() else target
    loss = -(y * _log_sigmoid(x) + (1 - y) * _log_sigmoid(-x))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(dim=-1) / input.shape[-1]
    return _reduce(loss, reduction).to(out_dtype)


# ---------------------------------------------------------------------------------------------
# multi_margin_loss and multilabel_margin_loss


def _as_matrix(input: Tensor) -> Tensor:
    """Input (C) or (N, C) (a 0-d input is one class) as (N, C); anything else raises."""
    if (
        input.dim() > 2
        or (input.dim() == 2 and input.shape[1] == 0)
        or (input.dim() == 1 and not input.numel())
    ):
        raise RuntimeError(
            "Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
            f"{list(input.shape)}"
        )
    return input.reshape(1, -1) if input.dim() < 2 else input


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """(1/C) Σ_{k≠y} w[y]·max(0, margin - x[y] + x[k])^p with the strict ``z > 0`` of torch's
    kernel as a ``where`` (loss and gradient 0 at the kink); mean over samples, not weights."""
    reduction = _reduction_of(size_average, reduce, reduction, legacy_ok=True)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.dim() != 1:
        raise ValueError("weight must be one-dimensional")
    if target.dtype != torch.int64:
        raise RuntimeError(f"expected scalar type Long but found {target.dtype}")
    _check_floating(input, "multi_margin_loss_cpu")
    out_dtype = input.dtype
    x = _as_matrix(input.to(_compute_dtype(out_dtype)))
    n, c = x.shape
    if target.numel() != n or target.dim() > 1 or (input.dim() == 2 and target.dim() != 1):
        raise RuntimeError(
            "inconsistent target size, expected target tensor should be 1-D with size equal to "
            f"the batch size {n} but got {list(target.shape)}"
        )
    if weight is not None and weight.numel() != c:
        raise RuntimeError(f"inconsistent weight size, expected {c} but got {list(weight.shape)}")
    t = target.reshape(n)
    if bool(((t < 0) | (t >= c)).any()):
        raise RuntimeError("target out of range")
    x_y = x.gather(1, t.unsqueeze(1))  # (N, 1)
    z = margin - x_y + x
    other = torch.arange(c, device=x.device).unsqueeze(0) != t.unsqueeze(1)
    active = other & (z > 0)
    h = torch.where(active, z if p == 1 else z * z, torch.zeros_like(z))
    if weight is not None:
        h = h * weight.to(x.dtype)[t].unsqueeze(1)
    loss = h.sum(dim=1) / c
    if reduction == "none":
        return loss.reshape(target.shape).to(out_dtype)
    return _reduce(loss, reduction).to(out_dtype)


def multilabel_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """(1/C) Σ_j Σ_{i∉T} max(0, 1 - x[y_j] + x[i]) over the prefix before the first -1 (repeats
    counted once each), the strict ``z > 0`` as a ``where`` (gradient 0 at the kink)."""
    reduction = _reduction_of(size_average, reduce, reduction, legacy_ok=True)
    if target.dtype != torch.int64:
        raise RuntimeError(f"expected scalar type Long but found {target.dtype}")
    _check_floating(input, "multilabel_margin_loss_forward_out_frame")
    out_dtype = input.dtype
    x = _as_matrix(input.to(_compute_dtype(out_dtype)))
    n, c = x.shape
    if target.shape != input.shape:
        raise RuntimeError(
            f"inconsistent target size: {list(target.shape)} for input of size: {list(input.shape)}"
        )
    t = target.reshape(n, c)
    if bool(((t < -1) | (t >= c)).any()):
        raise RuntimeError("argument #2 'target' is out of range")
    in_prefix = torch.cumprod((t != -1).to(torch.int64), dim=1).bool()  # before the first -1
    classes = torch.arange(c, device=x.device)
    onehot = (t.unsqueeze(-1) == classes) & in_prefix.unsqueeze(-1)  # (N, j, k)
    counts = onehot.sum(dim=1).to(x.dtype)  # (N, C): how often class k is in the prefix
    member = counts > 0
    z = 1 - x.unsqueeze(2) + x.unsqueeze(1)  # (N, k, i): 1 - x[k] + x[i]
    active = member.unsqueeze(2) & ~member.unsqueeze(1) & (z > 0)
    h = torch.where(active, z, torch.zeros_like(z))
    loss = (counts.unsqueeze(2) * h).sum(dim=(1, 2)) / c
    if input.dim() < 2:
        loss = loss.reshape(())
    return _reduce(loss, reduction).to(out_dtype)


# ---------------------------------------------------------------------------------------------
# cosine_embedding_loss


def _eps_norm(x: Tensor) -> Tensor:
    """sqrt(Σx² + ε) over the last dim, evaluated as c·sqrt(Σ(x/c)² + ε/c²) with the detached scale
    c = max(max|x|, sqrt ε): the same function, but no intermediate (the squares, or the gradient
    w.r.t. Σx², ~cos/Σx²) overflows or underflows where the norm and its gradient x/norm do not."""
    eps = _EPSILON_F32_1E12
    c = x.detach().abs().amax(dim=-1, keepdim=True).clamp(min=math.sqrt(eps))
    r = x / c
    return c.squeeze(-1) * torch.sqrt((r * r).sum(dim=-1) + eps / (c.squeeze(-1) ** 2))


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """cos = Σ x1 x2 / (sqrt(Σx1² + ε)·sqrt(Σx2² + ε)), ε = float32(1e-12) added to each squared
    norm, each root taken apart and max-scaled (no overflow of the product, no underflow of the
    gradient through Σx²); y = -1 hinge by ``clamp`` (gradient passes at the kink); labels other
    than ±1 give 0."""
    reduction = _reduction_of(size_average, reduce, reduction, legacy_ok=True)
    if target.dim() > 1:
        raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
    if target.dim() == 1 and not (input1.dim() == 2 and input2.dim() == 2):
        raise RuntimeError(
            "1D target tensor expects 2D input tensors, but found inputs with sizes "
            f"{list(input1.shape)} and {list(input2.shape)}."
        )
    if target.dim() == 0 and not (input1.dim() == 1 and input2.dim() == 1):
        raise RuntimeError(
            "0D target tensor expects 1D input tensors, but found inputs with sizes "
            f"{list(input1.shape)} and {list(input2.shape)}."
        )
    a, b = _floating(input1), _floating(input2)
    out_dtype = torch.promote_types(a.dtype, b.dtype)
    a, b = a.to(_compute_dtype(out_dtype)), b.to(_compute_dtype(out_dtype))
    dot = (a * b).sum(dim=-1)
    norm1, norm2 = _eps_norm(a), _eps_norm(b)
    cos = dot / norm1 / norm2
    zero = torch.zeros_like(cos)
    pos = torch.where(target == 1, 1 - cos, zero)
    neg = torch.where(target == -1, torch.clamp(cos - margin, min=0), zero)
    return _reduce(pos + neg, reduction).to(out_dtype)


# ---------------------------------------------------------------------------------------------
# triplet_margin_loss and triplet_margin_with_distance_loss


def _p_norm(u: Tensor, p: float) -> Tensor:
    """‖u‖_p over the last dim. p = 1: Σ|u| (sign(0) = 0). p = 2: sqrt(Σu²). Other p: scaled by
    m = max|u| (Σ (|u|/m)^p ≤ D: no overflow or underflow of the powers, in the value or its
    derivatives). A zero vector is masked by double ``where`` (computed on 1s and discarded), so
    every derivative there is an exact 0 (torch's convention for a zero norm), not 0·inf = NaN."""
    a = u.abs()
    if p == 1:
        return a.sum(dim=-1)
    if math.isinf(p):
        return a.amax(dim=-1) if p > 0 else a.amin(dim=-1)
    if p == 2:
        total = (u * u).sum(dim=-1)
        z = total == 0
        norm = torch.sqrt(torch.where(z, torch.ones_like(total), total))
        return torch.where(z, torch.zeros_like(norm), norm)
    m = a.detach().amax(dim=-1, keepdim=True)
    zero = m == 0
    r = torch.where(zero, torch.ones_like(a), a / torch.where(zero, torch.ones_like(m), m))  # in [0, 1]
    root = (r**p).sum(dim=-1) ** (1.0 / p)
    z = zero.squeeze(-1)
    norm = torch.where(z, torch.ones_like(root), m.squeeze(-1)) * root
    return torch.where(z, torch.zeros_like(norm), norm)


def _pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6) -> Tensor:
    """‖x1 - x2 + eps‖_p over the last dim (torch.pairwise_distance's eps placement), by a
    max-scaled p-norm (``_p_norm``); half precision computed in float32."""
    x1, x2 = _floating(x1), _floating(x2)
    dtype = torch.promote_types(x1.dtype, x2.dtype)
    cd = _compute_dtype(dtype)
    return _p_norm(x1.to(cd) - x2.to(cd) + eps, p).to(dtype)


def _check_triplet(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float) -> None:
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    a, p, n = anchor.dim(), positive.dim(), negative.dim()
    if not (a == p == n):
        raise RuntimeError(
            "The anchor, positive, and negative tensors are expected to have the same number of "
            f"dimensions, but got: anchor {a}D, positive {p}D, and negative {n}D inputs"
        )


def _triplet(d_ap: Tensor, d_an: Tensor, d_pn: Tensor | None, margin: float) -> Tensor:
    """max(0, margin + d(a,p) - d(a,n)) by ``clamp`` (gradient passes at the kink); with swap,
    d(a,n) := ``torch.minimum(d(a,n), d(p,n))`` (a tie splits the gradient in half)."""
    if d_pn is not None:
        d_an = torch.minimum(d_an, d_pn)
    return torch.clamp(margin + d_ap - d_an, min=0)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-06,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Distances ‖u - v + eps‖_p by vector_norm (no overflow-prone power sums, gradient 0 at a zero
    norm); hinge by ``clamp``; swap by ``torch.minimum``."""
    reduction = _reduction_of(size_average, reduce, reduction, legacy_ok=True)
    _check_triplet(anchor, positive, negative, margin)
    out_dtype = torch.promote_types(_floating(anchor).dtype, _floating(positive).dtype)
    out_dtype = torch.promote_types(out_dtype, _floating(negative).dtype)
    cd = _compute_dtype(out_dtype)
    a, pos, neg = (_floating(t).to(cd) for t in (anchor, positive, negative))
    d_ap = _pairwise_distance(a, pos, p, eps)
    d_an = _pairwise_distance(a, neg, p, eps)
    d_pn = _pairwise_distance(pos, neg, p, eps) if swap else None
    return _reduce(_triplet(d_ap, d_an, d_pn, margin), reduction).to(out_dtype)


def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function: Callable[[Tensor, Tensor], Tensor] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """Default distance ‖u - v + 1e-6‖_2 by vector_norm; hinge by ``clamp`` (gradient passes at
    the kink); swap by ``torch.minimum``."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    _check_triplet(anchor, positive, negative, margin)
    dist = distance_function if distance_function is not None else _pairwise_distance
    d_ap = dist(anchor, positive)
    d_an = dist(anchor, negative)
    d_pn = dist(positive, negative) if swap else None
    return _reduce(_triplet(d_ap, d_an, d_pn, margin), reduction)


# ---------------------------------------------------------------------------------------------
# ctc_loss


def _lengths(name: str, value: Any, n: int, batched: bool) -> Tensor:
    """input_lengths / target_lengths (tuple, list or integral tensor) as an int64 (N) tensor."""
    if isinstance(value, Tensor):
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise RuntimeError(f"{name} must be integral")
        t = value.to(torch.int64)
    else:
        t = torch.as_tensor(value, dtype=torch.int64)
    t = t.reshape(-1)
    if t.numel() != n:
        raise RuntimeError(f"{name} must be of size batch_size")
    return t


def _ctc_nll(lp: Tensor, ext: Tensor, skip: Tensor, valid: Tensor, il: Tensor, tl: Tensor) -> Tensor:
    """-log p(target | lp) per sample by the α recursion in log space (Graves et al. 2006) over the
    blank-extended labels ``ext`` (N, S'); every log-sum-exp is max-shifted and all-(-inf)-safe,
    so unreachable states carry -inf values and exactly zero gradients."""
    t_max, n, _ = lp.shape
    s_max = ext.shape[1]
    neg_inf = torch.full((), -math.inf, dtype=lp.dtype, device=lp.device)
    lpe = lp.gather(2, ext.unsqueeze(0).expand(t_max, n, s_max))  # (T, N, S')
    pos = torch.arange(s_max, device=lp.device).unsqueeze(0)
    start = (pos == 0) | ((pos == 1) & (tl.unsqueeze(1) > 0))
    alpha = torch.where(start & valid, lpe[0], neg_inf) if t_max else None
    alphas = [] if alpha is None else [alpha]
    pad1 = torch.full((n, 1), -math.inf, dtype=lp.dtype, device=lp.device)
    pad2 = torch.full((n, 2), -math.inf, dtype=lp.dtype, device=lp.device)
    for t in range(1, t_max):
        a = alphas[-1]
        a1 = torch.cat([pad1, a[:, :-1]], dim=1)[:, :s_max]
        a2 = torch.where(skip, torch.cat([pad2, a[:, :-2]], dim=1)[:, :s_max], neg_inf)
        step = _safe_logsumexp(torch.stack([a, a1, a2]), dim=0)
        alphas.append(torch.where(valid, lpe[t] + step, neg_inf))
    if not alphas:
        return torch.where(tl == 0, 0.0, math.inf).to(lp.dtype)
    alpha_all = torch.stack(alphas)  # (T, N, S')
    t_end = (il - 1).clamp(min=0)
    a_end = alpha_all[t_end, torch.arange(n, device=lp.device)]  # (N, S')
    last = 2 * tl
    fin = a_end.gather(1, last.unsqueeze(1)).squeeze(1)
    fin_l = a_end.gather(1, (last - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
    fin_l = torch.where(tl > 0, fin_l, neg_inf)
    loglik = _safe_logsumexp(torch.stack([fin, fin_l]), dim=0)
    empty_ok = torch.where(tl == 0, torch.zeros_like(loglik), neg_inf)
    return -torch.where(il == 0, empty_ok, loglik)


def _safe_logsumexp(x: Tensor, dim: int) -> Tensor:
    """``_logsumexp`` whose all-(-inf) slices are computed on zeros and replaced by -inf after:
    their gradient is exactly 0 rather than 0·inf = NaN."""
    alive = torch.isfinite(x.detach().amax(dim=dim))
    inner = _logsumexp(torch.where(alive.unsqueeze(dim), x, torch.zeros_like(x)), dim)
    return torch.where(alive, inner, torch.full_like(inner, -math.inf))


class _CTCLoss(torch.autograd.Function):
    """Per-sample CTC losses whose backward is torch's convention: exp(lp) + ∂loss/∂lp at
    t < input_length (the gradient w.r.t. logits through a log_softmax), 0 after; NaN for an
    infeasible sample, 0 with zero_infinity."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        lp: Tensor,
        ext: Tensor,
        skip: Tensor,
        valid: Tensor,
        il: Tensor,
        tl: Tensor,
        zero_infinity: bool,
    ) -> Tensor:
        with torch.no_grad():
            nll = _ctc_nll(lp, ext, skip, valid, il, tl)
        ctx.save_for_backward(lp, ext, skip, valid, il, tl)
        ctx.zero_infinity = zero_infinity
        return torch.where(nll == math.inf, torch.zeros_like(nll), nll) if zero_infinity else nll

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        lp, ext, skip, valid, il, tl = ctx.saved_tensors
        with torch.enable_grad():
            x = lp.detach().requires_grad_(True)
            nll = _ctc_nll(x, ext, skip, valid, il, tl)
            feasible = torch.isfinite(nll.detach())
            g = torch.where(feasible, grad, torch.zeros_like(grad))
            true = None
            if nll.requires_grad:
                (true,) = torch.autograd.grad(nll, x, g, allow_unused=True)
        if true is None:
            true = torch.zeros_like(lp)
        t_max = lp.shape[0]
        live = (torch.arange(t_max, device=lp.device).unsqueeze(1) < il.unsqueeze(0)).unsqueeze(2)
        out = torch.where(live, lp.exp() * grad.view(1, -1, 1) + true, torch.zeros_like(lp))
        bad = torch.full_like(lp, 0.0 if ctx.zero_infinity else math.nan)
        out = torch.where(live & ~feasible.view(1, -1, 1), bad, out)
        return out, None, None, None, None, None, None


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """α recursion in log space with max-shifted, all-(-inf)-safe log-sum-exps, in float64 for
    float32 input; torch's gradient convention by a custom backward (autograd of the recursion
    plus exp(lp)); 'mean' divides each loss by max(target_length, 1)."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if log_probs.dim() not in (2, 3):
        raise RuntimeError(f"log_probs must be 2-D (T, C) or 3-D (T, N, C), got {log_probs.dim()}-D")
    batched = log_probs.dim() == 3
    lp3 = log_probs if batched else log_probs.unsqueeze(1)
    t_max, n, c = lp3.shape
    if lp3.numel() == 0 and n == 0:
        raise RuntimeError("log_probs tensor must not be empty")
    if not 0 <= blank < c:
        raise RuntimeError("blank must be in label range")
    il = _lengths("input_lengths", input_lengths, n, batched)
    tl = _lengths("target_lengths", target_lengths, n, batched)
    if bool((il < 0).any()) or bool((il > t_max).any()):
        raise RuntimeError(f"Expected input_lengths to have value at most {t_max}, but got {il.tolist()}")
    if bool((tl < 0).any()):
        raise RuntimeError(f"Expected target_lengths to have value at least 0, but got {tl.tolist()}")
    if targets.is_floating_point() or targets.is_complex():
        targets = targets.to(torch.int64)
    tg = targets.to(torch.int64)
    if not batched:
        tg = tg.reshape(1, -1) if tg.dim() <= 1 else tg
    max_tl = int(tl.max()) if n else 0
    if tg.dim() == 2:  # padded (N, S)
        if tg.shape[0] != n or tg.shape[1] < max_tl:
            raise RuntimeError(
                f"Expected tensor to have size at least {max_tl} at dimension 1, but got size "
                f"{tg.shape[1]} for argument #2 'targets'"
            )
        rows = [tg[i, : int(tl[i])] for i in range(n)]
    elif tg.dim() == 1:  # concatenated
        if tg.shape[0] != int(tl.sum()):
            raise RuntimeError(
                f"Expected tensor to have size {int(tl.sum())} at dimension 0, but got size "
                f"{tg.shape[0]} for argument #2 'targets'"
            )
        ends = torch.cumsum(tl, 0).tolist()
        rows = [tg[e - int(k) : e] for e, k in zip(ends, tl.tolist(), strict=True)]
    else:
        raise RuntimeError(f"targets must be 1-D or 2-D, got {tg.dim()}-D")
    for r in rows:  # stricter than torch 2.13, which reads out of bounds (pytorch#174602)
        if bool(((r < 0) | (r >= c) | (r == blank)).any()):
            raise RuntimeError(f"targets must be labels in [0, {c}) other than blank={blank}")

    s_max = 2 * max_tl + 1
    ext = torch.full((n, s_max), blank, dtype=torch.int64, device=lp3.device)
    for i, r in enumerate(rows):
        ext[i, 1 : 2 * r.numel() : 2] = r.to(lp3.device)
    pos = torch.arange(s_max, device=lp3.device).unsqueeze(0)
    valid = pos < (2 * tl.to(lp3.device).unsqueeze(1) + 1)
    skip = torch.zeros((n, s_max), dtype=torch.bool, device=lp3.device)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])

    out_dtype = log_probs.dtype
    lp = lp3.to(torch.float64 if out_dtype != torch.float64 else out_dtype)
    nll = _CTCLoss.apply(lp, ext, skip, valid, il.to(lp3.device), tl.to(lp3.device), bool(zero_infinity))
    if reduction == "none":
        out = nll if batched else nll.reshape(())
    elif reduction == "sum":
        out = nll.sum()
    else:
        out = (nll / tl.to(lp3.device).clamp(min=1).to(nll.dtype)).mean()
    return out.to(out_dtype)


# ---------------------------------------------------------------------------------------------
# linear_cross_entropy


def linear_cross_entropy(
    input: Tensor,
    linear_weight: Tensor,
    target: Tensor,
    *,
    linear_bias: Tensor | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: LinearCrossEntropyOptions | None = None,
) -> Tensor:
    """cross_entropy (above: max-shifted log-softmax) of input @ Wᵀ + b by matmul, the logits
    reshaped to (N, C, d1, …) for a K-dim weight; ``options`` (torch's chunking strategy) changes
    nothing here: the same function is computed."""
    if input.dim() < 1 or input.dim() > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.dim()}")
    if linear_weight.dim() < 2:
        raise RuntimeError(
            f"expected linear_weight with dimensionality at least 2, got {linear_weight.dim()}"
        )
    h = input.shape[-1]
    if h != linear_weight.shape[-1]:
        raise RuntimeError(
            "expected equal input and linear_weight last dimensions (in_features), "
            f"got {h} and {linear_weight.shape[-1]}, respectively"
        )
    c = linear_weight.shape[0]
    out_features = tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (c, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(c, *out_features)}, got {tuple(linear_bias.shape)}")
    batch = tuple(input.shape[:-1])
    if out_features and not batch:
        raise RuntimeError(
            f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} requires"
            f" batched input, (N, {h}), got unbatched input with shape {tuple(input.shape)}"
        )
    logits_shape = (*batch, c, *out_features)
    probabilities = tuple(target.shape) == logits_shape
    if probabilities and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    if input.dtype != linear_weight.dtype or (linear_bias is not None and linear_bias.dtype != input.dtype):
        raise RuntimeError(
            f"expected m1 and m2 to have the same dtype, but got: {input.dtype} != {linear_weight.dtype}"
        )
    w2 = linear_weight.reshape(-1, h)
    logits = input @ w2.transpose(0, 1)
    if linear_bias is not None:
        logits = logits + linear_bias.reshape(-1)
    logits = logits.reshape(logits_shape)
    return cross_entropy(
        logits,
        target,
        weight=weight,
        ignore_index=-100 if ignore_index is None else ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )
