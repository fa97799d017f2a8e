"""CTC loss and its gradient by the forward–backward recursion in log space (``spec.sequence``).

Vectorised over the batch: one loop over time for α, one for β; everything else is array
arithmetic. The extended label sequence of sample n is ``l' = (blank, l_1, blank, ..., l_L, blank)``
of length 2L + 1, padded with blanks (masked) to the batch's longest. In log space:

* ``α_0(0) = lp_0(blank)``, ``α_0(1) = lp_0(l_1)``; ``α_t(s) = lp_t(l'_s) + logsumexp(α_{t-1}(s),
  α_{t-1}(s-1), α_{t-1}(s-2) where l'_s is not blank and l'_s ≠ l'_{s-2})``;
* β the same from ``t = T_n - 1`` down; ``loss_n = -log(exp α_{T_n-1}(2L) + exp α_{T_n-1}(2L-1))``;
* ``∂loss/∂lp_t(c) = -exp(logΣ_{s: l'_s = c} (α_t(s) + β_t(s) - lp_t(c)) - lp_t(c) + loss_n)``
  (Graves et al. 2006, eq. 15), and torch's gradient adds ``exp(lp_t(c))`` (``spec.sequence``).

The sums over alignments stay in log space, so the loss is accurate however small the probability
of the target (a loss of 1e4 is fine); ``tests/test_ctc.py`` bounds its error against mpmath
enumeration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
_NEG = -np.inf


class CTCInputError(ValueError):
    """An argument ctc_loss does not accept: names it and what was expected."""


@dataclass(frozen=True)
class CTCResult:
    """The reduced loss, the per-sample losses, and torch's gradient w.r.t. ``log_probs``
    (``grad``) next to the true ∂loss/∂log_probs (``true_grad``), both times ``upstream``."""

    value: Array
    losses: Array
    grad: Array
    true_grad: Array
    #: error scales (``docs/error-model.md``): a float evaluation of the recursion in a dtype with
    #: unit roundoff u errs by about u·scale. Each of the T_n steps rounds logs of magnitude up to
    #: L_n = Σ_t max_c |lp_t(c)| + |loss_n|, so the loss's is (T_n + 1)(1 + L_n); a posterior is
    #: exp of such a log (that relative error), and torch's gradient adds exp(lp): twice its size.
    value_scale: Array
    grad_scale: Array


def _fail(arg: str, expected: str, got: object) -> CTCInputError:
    return CTCInputError(f"{arg}: expected {expected}, got {got}")


def _lse(*xs: Array) -> Array:
    """logsumexp of arrays of one shape, elementwise; -inf where all are -inf."""
    m = np.maximum.reduce(xs)
    safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = sum(np.exp(x - safe) for x in xs)
        return np.where(np.isfinite(m), safe + np.log(s), m)


def _as_int(name: str, a: Any, shape: tuple[int, ...] | None = None) -> Array:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise _fail(name, "integers", f"dtype {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise _fail(name, f"shape {shape}", f"shape {arr.shape}")
    return arr.astype(np.int64)


def ctc_loss(
    log_probs: Any,
    targets: Any,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
    upstream: Any = None,
    underflow: float = 0.0,
) -> CTCResult:
    """CTC in float64 with torch.nn.functional's arguments: ``log_probs`` (T, N, C) or (T, C);
    ``targets`` (N, S) padded or (Σ target_lengths) concatenated ((S) unbatched);
    ``input_lengths``, ``target_lengths`` (N) (or 0-d unbatched). ``underflow``: the error-scale
    allowance for one rounding's underflow (as for :func:`oracle.evaluate`)."""
    lp = np.asarray(log_probs)
    if lp.dtype.kind != "f":
        raise _fail("log_probs", "a floating-point array", f"dtype {lp.dtype}")
    lp = lp.astype(np.float64)
    batched = lp.ndim == 3
    if lp.ndim == 2:
        lp = lp[:, None, :]
    elif lp.ndim != 3:
        raise _fail("log_probs", "shape (T, N, C) or (T, C)", f"shape {lp.shape}")
    t_max, n, c = lp.shape
    if lp.size == 0:
        raise _fail("log_probs", "a non-empty array (T, N, C >= 1)", f"shape {lp.shape}")
    if reduction not in ("none", "mean", "sum"):
        raise _fail("reduction", "one of ['none', 'mean', 'sum']", repr(reduction))
    if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)) or not 0 <= blank < c:
        raise _fail("blank", f"a class index in [0, {c})", repr(blank))
    if not isinstance(zero_infinity, (bool, np.bool_)):
        raise _fail("zero_infinity", "a bool", repr(zero_infinity))
    want = (n,) if batched else ()
    il = _as_int("input_lengths", input_lengths, want).reshape(n)
    tl = _as_int("target_lengths", target_lengths, want).reshape(n)
    if (il < 0).any() or (il > t_max).any():
        raise _fail("input_lengths", f"values in [0, {t_max}]", il.tolist())
    if (tl < 0).any():
        raise _fail("target_lengths", "values >= 0", tl.tolist())
    tg = _as_int("targets", targets)
    if batched and tg.ndim == 2:  # (N, S) padded
        if tg.shape[0] != n or (tl > tg.shape[1]).any():
            raise _fail(
                "targets", f"shape ({n}, S), S >= every target length {tl.tolist()}", f"shape {tg.shape}"
            )
        rows = [tg[i, : tl[i]] for i in range(n)]
    elif batched and tg.ndim == 1:  # concatenated
        if tg.shape[0] != int(tl.sum()):
            raise _fail(
                "targets", f"{int(tl.sum())} concatenated labels (Σ target_lengths)", f"shape {tg.shape}"
            )
        ends = np.cumsum(tl)
        rows = [tg[e - k : e] for e, k in zip(ends, tl, strict=True)]
    elif not batched and tg.ndim == 1 and tg.shape[0] == int(tl[0]):  # (S), S = target_length
        rows = [tg]
    else:
        want_t = "(N, S) or (Σ target_lengths)" if batched else f"({int(tl[0])},): target_length labels"
        raise _fail("targets", f"shape {want_t}", f"shape {tg.shape}")
    for r in rows:
        bad = (r < 0) | (r >= c) | (r == blank)
        if bad.any():
            raise _fail("targets", f"labels in [0, {c}) other than blank={blank}", int(r[bad][0]))

    # extended labels (N, S'), S' = 2·max L + 1, blank-padded; valid positions s < 2 L_n + 1
    s_max = 2 * int(tl.max(initial=0)) + 1
    ext = np.full((n, s_max), blank, np.int64)
    for i, r in enumerate(rows):
        ext[i, 1 : 2 * len(r) : 2] = r
    pos = np.arange(s_max)
    valid = pos[None, :] < (2 * tl[:, None] + 1)
    # the skip s-2 -> s is allowed where l'_s is a label different from l'_{s-2}
    skip = np.zeros((n, s_max), bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    lpe = np.take_along_axis(lp, np.broadcast_to(ext[None], (t_max, n, s_max)), axis=2)  # (T, N, S')
    lpe = np.where(valid[None], lpe, _NEG)

    def shift(a: Array, k: int) -> Array:
        out = np.full_like(a, _NEG)
        out[..., k:] = a[..., :-k] if k else a
        return out

    alpha = np.full((t_max, n, s_max), _NEG)
    if t_max:
        alpha[0, :, 0] = lpe[0, :, 0]
        if s_max > 1:
            alpha[0, :, 1] = np.where(tl > 0, lpe[0, :, 1], _NEG)
    for t in range(1, t_max):
        a = alpha[t - 1]
        alpha[t] = lpe[t] + _lse(a, shift(a, 1), np.where(skip, shift(a, 2), _NEG))
    beta = np.full((t_max, n, s_max), _NEG)
    last = 2 * tl  # index of the final blank
    for t in range(t_max - 1, -1, -1):
        at_end = (pos[None, :] == last[:, None]) | ((pos[None, :] == last[:, None] - 1) & (tl[:, None] > 0))
        start = np.where(at_end, lpe[t], _NEG)
        if t + 1 < t_max:
            b = beta[t + 1]
            nxt1 = np.full_like(b, _NEG)
            nxt1[:, :-1] = b[:, 1:]
            nxt2 = np.full_like(b, _NEG)
            nxt2[:, :-2] = np.where(skip[:, 2:], b[:, 2:], _NEG)
            rec = lpe[t] + _lse(b, nxt1, nxt2)
        else:
            rec = np.full((n, s_max), _NEG)
        here: Array = np.equal(il - 1, t)
        before: Array = np.greater(il - 1, t)
        beta[t] = np.where(here[:, None], start, np.where(before[:, None], rec, _NEG))

    # the loss: α at t = T_n - 1, final blank or final label
    idx_t = np.clip(il - 1, 0, max(t_max - 1, 0))
    if t_max:
        a_end = alpha[idx_t, np.arange(n)]  # (N, S')
        fin = np.take_along_axis(a_end, last[:, None], axis=1)[:, 0]
        fin_l = np.where(
            tl > 0, np.take_along_axis(a_end, np.maximum(last - 1, 0)[:, None], axis=1)[:, 0], _NEG
        )
        loglik = _lse(fin, fin_l)
    else:
        loglik = np.full(n, _NEG)
    loglik = np.where(il == 0, np.where(tl == 0, 0.0, _NEG), loglik)
    losses = -loglik
    infinite = np.isinf(losses)
    if zero_infinity:
        losses = np.where(infinite, 0.0, losses)

    # gradient: occupation of each class at each t, in log space
    with np.errstate(invalid="ignore", divide="ignore"):
        ab = alpha + beta  # (T, N, S'), both include lp_t(l'_s)
        m = np.max(ab, axis=2, keepdims=True)
        safe = np.where(np.isfinite(m), m, 0.0)
        onehot = (ext[:, :, None] == np.arange(c)) & valid[:, :, None]  # (N, S', C)
        occ = np.einsum("tns,nsc->tnc", np.exp(ab - safe), onehot.astype(np.float64))
        log_occ = np.log(occ) + safe  # log Σ_{s: l'_s = c} α_t(s) β_t(s)
        # ∂loss/∂lp_t(c): α β counts lp_t(c) twice, ∂p/∂y = Σ αβ / y², ∂(-log p)/∂lp = -y ∂p/∂y / p
        true_g = -np.exp(log_occ - lp - loglik[None, :, None])
        torch_g = np.exp(lp) + true_g
    live = np.arange(t_max)[:, None] < il[None, :]  # (T, N): t < T_n
    true_g = np.where(live[..., None], true_g, 0.0)
    torch_g = np.where(live[..., None], torch_g, 0.0)
    if zero_infinity:
        true_g = np.where(infinite[None, :, None], 0.0, true_g)
        torch_g = np.where(infinite[None, :, None], 0.0, torch_g)

    with np.errstate(invalid="ignore", over="ignore"):
        live_lp = np.where(live[..., None], np.abs(lp), 0.0)
        mag = np.sum(np.max(live_lp, axis=2), axis=0) + np.where(np.isfinite(losses), np.abs(losses), 0.0)
        s_n = (il + 1) * (1 + mag)  # (N)
        g_scale = s_n[None, :, None] * np.abs(true_g) + 2 * np.where(live[..., None], np.exp(lp), 0.0)

    if reduction == "none":
        value = losses if batched else losses.reshape(())
        factor: Array = (
            np.ones(n)
            if upstream is None
            else np.broadcast_to(np.asarray(upstream, np.float64), value.shape).reshape(n)
        )
    else:
        u = 1.0 if upstream is None else float(np.asarray(upstream, np.float64))
        if reduction == "sum":
            value = np.asarray(np.sum(losses))
            factor = np.full(n, u)
        else:
            per = losses / np.maximum(tl, 1)
            value = np.asarray(np.sum(per) / n) if n else np.asarray(np.nan)
            factor = u / (n * np.maximum(tl, 1))
    with np.errstate(invalid="ignore", over="ignore"):
        grad = torch_g * factor[None, :, None]
        true = true_g * factor[None, :, None]
        g_sc = g_scale * np.abs(factor)[None, :, None] + np.abs(grad) + 2 * underflow
        if reduction == "none":
            v_sc = s_n if batched else s_n.reshape(())
        else:
            weights = np.abs(factor) / (abs(u) if u else 1.0)  # 1 (sum) or 1 / (N max(L_n, 1)) (mean)
            terms = np.where(np.isfinite(losses), np.abs(losses), 0.0) * weights
            v_sc = np.asarray(np.sum(s_n * weights) + max(n - 1, 0) * np.sum(terms) + (n + 1) * np.abs(value))
        v_sc = v_sc + (n + 1) * underflow
    if not batched:
        grad, true, g_sc = grad[:, 0, :], true[:, 0, :], g_sc[:, 0, :]
    return CTCResult(
        value=np.asarray(value, np.float64),
        losses=losses,
        grad=grad,
        true_grad=true,
        value_scale=np.asarray(v_sc, np.float64),
        grad_scale=g_sc,
    )
