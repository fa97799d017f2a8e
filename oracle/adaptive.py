"""AdaptiveLogSoftmaxWithLoss (Grave et al. 2016) in float64: its definition (``spec.composite``)
evaluated directly, gradients by the chain rule through each log-softmax and linear map.

``log p(y | x) = ls_head(x)[y]`` for a shortlist class ``y < c_0``; for ``c_{i-1} <= y < c_i``,
``ls_head(x)[c_0 + i - 1] + ls_tail_i(x)[y - c_{i-1}]``, where ``ls_head = log_softmax(head(x))``
(head: ``H -> c_0 + K``, with an optional bias) and ``ls_tail_i = log_softmax(O_i (P_i x))``
(``P_i``: ``H -> h_i``, ``O_i``: ``h_i -> c_i - c_{i-1}``, no biases). The module's ``output`` is
that log-probability per sample and its ``loss`` is ``-mean(output)``.

Error scales (u·scale bounds a float evaluation's error, first order): a logit z formed by a dot
product over m terms carries ``S_z = (m + 1) Σ |a_j b_j|``; a log-softmax entry carries
``2 (max |z| + |lse| + 1) + 2 max S_z``; a softmax-minus-one-hot entry ``(p + δ) times that``; each
later product and sum adds its own roundings (m |a||b|).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from oracle import _kernels

if TYPE_CHECKING:
    from oracle.api import OracleInputError

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class AdaptiveResult:
    output: Array  # log p(y_n | x_n), (N) or ()
    loss: Array  # -mean(output), 0-d
    output_scale: Array
    loss_scale: Array
    grads: dict[str, Array]  # of loss · upstream, by torch's parameter names (and "input")
    grad_scale: dict[str, Array]


def _fail(arg: str, expected: str, got: object) -> OracleInputError:
    from oracle.api import OracleInputError

    return OracleInputError(f"{arg}: expected {expected}, got {got}")


def hidden_sizes(in_features: int, cutoffs: list[int], div_value: float) -> list[int]:
    return [int(in_features // (div_value ** (i + 1))) for i in range(len(cutoffs))]


def parameter_shapes(
    in_features: int, n_classes: int, cutoffs: list[int], div_value: float, head_bias: bool
) -> dict[str, tuple[int, ...]]:
    """torch's parameter names and shapes for these constructor arguments."""
    edges = [*cutoffs, n_classes]
    out: dict[str, tuple[int, ...]] = {"head.weight": (cutoffs[0] + len(cutoffs), in_features)}
    if head_bias:
        out["head.bias"] = (cutoffs[0] + len(cutoffs),)
    for i, h in enumerate(hidden_sizes(in_features, cutoffs, div_value)):
        out[f"tail.{i}.0.weight"] = (h, in_features)
        out[f"tail.{i}.1.weight"] = (edges[i + 1] - edges[i], h)
    return out


def _log_softmax_scale(z: Array, s_z: Array) -> Array:
    lse = _kernels.logsumexp(z)
    return 2 * (np.max(np.abs(z), axis=-1) + np.abs(lse) + 1) + 2 * np.max(s_z, axis=-1)


def adaptive_log_softmax_with_loss(
    input: Any,
    target: Any,
    params: dict[str, Any],
    *,
    n_classes: int,
    cutoffs: list[int],
    div_value: float = 4.0,
    head_bias: bool = False,
    upstream: Any = None,
    underflow: float = 0.0,
) -> AdaptiveResult:
    from oracle.api import _float_array

    x = _float_array("input", input)
    if x.ndim not in (1, 2):
        raise _fail("input", "shape (in_features) or (N, in_features)", f"shape {x.shape}")
    h_in = x.shape[-1]
    if (
        not cutoffs
        or list(cutoffs) != sorted(set(cutoffs))
        or min(cutoffs) < 1
        or max(cutoffs) > n_classes - 1
    ):
        raise _fail("cutoffs", f"unique, sorted integers in [1, {n_classes - 1}]", cutoffs)
    shapes = parameter_shapes(h_in, n_classes, list(cutoffs), div_value, head_bias)
    if set(params) != set(shapes):
        raise _fail("params", f"the parameters {sorted(shapes)}", sorted(params))
    p = {k: _float_array(k, v) for k, v in params.items()}
    for k, shape in shapes.items():
        if p[k].shape != shape:
            raise _fail(k, f"shape {shape}", f"shape {p[k].shape}")
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise _fail("target", "integer class indices", f"dtype {t.dtype}")
    if t.shape != x.shape[:-1]:
        raise _fail("target", f"shape {x.shape[:-1]} for input {x.shape}", f"shape {t.shape}")
    if ((t < 0) | (t >= n_classes)).any():
        raise _fail("target", f"classes in [0, {n_classes - 1}]", t.tolist())
    x2, y = np.atleast_2d(x), np.atleast_1d(t).astype(np.int64)
    n = x2.shape[0]
    edges = [*cutoffs, n_classes]
    c0, k_clusters = cutoffs[0], len(cutoffs)
    wh = p["head.weight"]
    bh = p.get("head.bias", np.zeros(c0 + k_clusters))
    u = 1.0 if upstream is None else float(np.asarray(upstream, np.float64))
    with np.errstate(all="ignore"):
        zh = x2 @ wh.T + bh
        s_zh = (h_in + 1) * (np.abs(x2) @ np.abs(wh).T + np.abs(bh))
        lsh = zh - _kernels.logsumexp(zh)[:, None]
        sc_h = _log_softmax_scale(zh, s_zh)
        cluster = np.searchsorted(np.array(edges), y, side="right")  # 0: shortlist; i: cluster i
        head_t = np.where(cluster == 0, y, c0 + cluster - 1)
        out = np.take_along_axis(lsh, head_t[:, None], axis=1)[:, 0]
        out_sc = sc_h.copy()
        dout = np.full(n, -u / n)  # ∂(loss·u)/∂output_n
        g_zh = dout[:, None] * -_kernels.softmax_minus_onehot(zh, head_t)
        s_gzh = (
            np.abs(dout)[:, None]
            * (np.exp(lsh) + (np.arange(c0 + k_clusters) == head_t[:, None]))
            * sc_h[:, None]
        )
        grads: dict[str, Array] = {"head.weight": g_zh.T @ x2, "input": g_zh @ wh}
        scales: dict[str, Array] = {
            "head.weight": s_gzh.T @ np.abs(x2) + n * (np.abs(g_zh).T @ np.abs(x2)) + 2 * n * underflow,
            "input": s_gzh @ np.abs(wh) + (c0 + k_clusters) * (np.abs(g_zh) @ np.abs(wh)) + 2 * underflow,
        }
        if head_bias:
            grads["head.bias"] = g_zh.sum(axis=0)
            scales["head.bias"] = s_gzh.sum(axis=0) + n * np.abs(g_zh).sum(axis=0) + n * underflow
        for i in range(k_clusters):
            pw, ow = p[f"tail.{i}.0.weight"], p[f"tail.{i}.1.weight"]
            rows = np.nonzero(cluster == i + 1)[0]
            grads[f"tail.{i}.0.weight"] = np.zeros_like(pw)
            grads[f"tail.{i}.1.weight"] = np.zeros_like(ow)
            scales[f"tail.{i}.0.weight"] = np.full_like(pw, underflow)
            scales[f"tail.{i}.1.weight"] = np.full_like(ow, underflow)
            if rows.size == 0:
                continue
            xr, yr = x2[rows], y[rows] - edges[i]
            hid = xr @ pw.T
            s_hid = (h_in + 1) * (np.abs(xr) @ np.abs(pw).T)
            zt = hid @ ow.T
            s_zt = (pw.shape[0] + 1) * (np.abs(hid) @ np.abs(ow).T) + s_hid @ np.abs(ow).T
            lst = zt - _kernels.logsumexp(zt)[:, None]
            sc_t = _log_softmax_scale(zt, s_zt)
            out[rows] += np.take_along_axis(lst, yr[:, None], axis=1)[:, 0]
            out_sc[rows] += sc_t + np.abs(out[rows])
            g_zt = dout[rows, None] * -_kernels.softmax_minus_onehot(zt, yr)
            s_gzt = (
                np.abs(dout[rows])[:, None]
                * (np.exp(lst) + (np.arange(zt.shape[1]) == yr[:, None]))
                * sc_t[:, None]
            )
            g_hid = g_zt @ ow
            s_ghid = s_gzt @ np.abs(ow) + zt.shape[1] * (np.abs(g_zt) @ np.abs(ow))
            m = rows.size
            grads[f"tail.{i}.1.weight"] = g_zt.T @ hid
            scales[f"tail.{i}.1.weight"] += (
                s_gzt.T @ np.abs(hid) + np.abs(g_zt).T @ s_hid + m * (np.abs(g_zt).T @ np.abs(hid))
            )
            grads[f"tail.{i}.0.weight"] = g_hid.T @ xr
            scales[f"tail.{i}.0.weight"] += s_ghid.T @ np.abs(xr) + m * (np.abs(g_hid).T @ np.abs(xr))
            grads["input"][rows] += g_hid @ pw
            scales["input"][rows] += s_ghid @ np.abs(pw) + pw.shape[0] * (np.abs(g_hid) @ np.abs(pw))
        loss = -np.mean(out) if n else np.float64(np.nan)
        loss_sc = np.sum(out_sc) / max(n, 1) + n * np.mean(np.abs(out)) + underflow if n else np.float64(0.0)
    if x.ndim == 1:
        out, out_sc = out[0], out_sc[0]
        grads["input"], scales["input"] = grads["input"][0], scales["input"][0]
    return AdaptiveResult(
        np.asarray(out), np.asarray(loss), np.asarray(out_sc), np.asarray(loss_sc), grads, scales
    )
