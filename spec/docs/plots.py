"""One PNG per variant with a scalar view: the loss and its derivative against one input, over a
range its domain makes meaningful, for a few values of an option (smooth_l1's β, as seed 002 plots
it) or of the target. Values come from the oracle (float64), not from a formula typed here.

Deterministic: the Agg backend, no metadata (no software version, no date), fixed figure size and
dpi; the drift test compares decoded pixels."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from spec._core import Variant

N_POINTS = 401
C_VIEW = 3  # classes (or features) of the vector a class/feature view varies one component of


@dataclass(frozen=True)
class View:
    """What a plot shows: ``arg`` (component 0 along an axis) over ``xs``; one curve per entry of
    ``curves`` (label, the other arrays and the options)."""

    arg: str
    xs: np.ndarray[Any, Any]
    curves: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...]
    caption: str
    fixed: tuple[str, ...] = ()  # what is held fixed, in words: "`target` = 0"


def _range(kind: str) -> np.ndarray[Any, Any]:
    if kind == "unit":
        return np.linspace(0.002, 0.998, N_POINTS)
    if kind in ("nonnegative", "positive"):
        return np.linspace(0.02, 4.0, N_POINTS)
    if kind == "log_probability":
        return np.linspace(-4.0, -0.01, N_POINTS)
    return np.linspace(-4.0, 4.0, N_POINTS)


def _fixed(v: Variant, name: str, position: int, n: int, options: dict[str, Any]) -> Any:
    """A representative value of argument ``name`` (the ``position``-th tensor), for ``n`` points."""
    a = v.arg(name)
    kind = a.domain_for(options).kind
    role = v.roles[name].role
    if role == "index":
        return np.zeros(n, dtype=np.int64)
    if role == "index_set":
        return np.tile(np.array([0, -1, -1], dtype=np.int64), (n, 1))
    if role == "axis":
        row = {
            "probabilities": [0.7, 0.2, 0.1],
            "unit": [1.0, 0.0, 1.0],
        }.get(kind, [1.0, 0.5, -0.5] if position == 1 else [-1.0, 0.5, 0.5])
        return np.tile(np.array(row[:C_VIEW]), (n, 1))
    value = {"sign": 1.0, "unit": 0.5, "probabilities": 0.5, "nonnegative": 1.0, "positive": 1.0}.get(
        kind, 0.0
    )
    return np.full(n, value)


def view(v: Variant) -> View | None:
    """The plot of ``v``: its first differentiable argument against the others held fixed."""
    from spec._core import REGISTRY

    loss = REGISTRY[v.loss]
    name = v.differentiable[0] if v.differentiable else None
    if name is None:
        return None
    defaults: dict[str, Any] = {p.name: p.default for p in v.params}
    defaults.update(v.selects)
    kind = v.arg(name).domain_for(defaults).kind
    xs = _range(kind)
    n = xs.size
    required = [t for t in loss.tensors if t in {a.name for a in v.args}]

    def arrays(options: dict[str, Any], target: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for pos, t in enumerate(required):
            if t == name:
                if v.roles[t].role == "axis":
                    base = _fixed(v, t, pos, n, options)
                    base = np.array(base, dtype=float)
                    base[:, 0] = xs
                    out[t] = base
                else:
                    out[t] = xs.copy()
            else:
                out[t] = _fixed(v, t, pos, n, options)
                if target is not None and t == "target":
                    out[t] = np.full(n, target)
        return out

    sweep = [p for p in v.params if p.kind == "real" and p.name != "eps"]
    curves: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    from spec.docs.notation import symbol

    if sweep:
        p = sweep[0]
        d = float(p.default)
        values = [0.0, 0.5, 1.0] if d == 0 else [d / 2, d, 2 * d]
        # a ±1 label: the option (a margin) acts on the y = -1 side of most of these losses
        sign = "target" in required and v.arg("target").domain_for(defaults).kind == "sign"
        for val in values:
            opts = {**defaults, p.name: val}
            curves.append((f"${symbol(v, p.name)} = {val:g}$", arrays(opts, -1.0 if sign else None), opts))
        caption = f"{symbol(v, p.name)} \\in \\lbrace {', '.join(f'{x:g}' for x in values)} \\rbrace"
        if sign:
            caption += ", y = -1"
    elif "target" in required and v.roles["target"].role == "element":
        tkind = v.arg("target").domain_for(defaults).kind
        targets = {"sign": [-1.0, 1.0], "unit": [0.0, 0.5, 1.0]}.get(tkind)
        if targets:
            for t in targets:
                curves.append((f"$y = {t:g}$", arrays(defaults, t), defaults))
            caption = f"y \\in \\lbrace {', '.join(f'{t:g}' for t in targets)} \\rbrace"
        else:
            curves.append(("", arrays(defaults), defaults))
            caption = ""
    else:
        curves.append(("", arrays(defaults), defaults))
        caption = ""
    fixed = []
    for arg, arr in curves[0][1].items():
        if arg == name:
            if np.ndim(arr) == 2:
                fixed.append(f"`{arg}`'s other components {np.asarray(arr)[0, 1:].tolist()}")
            continue
        if not any(not np.array_equal(c[1][arg], arr) for c in curves):  # not what the curves vary
            fixed.append(f"`{arg}` = {np.asarray(arr)[0].tolist()}")
    return View(name, xs, tuple(curves), caption, tuple(fixed))


def evaluate(v: Variant, vw: View) -> list[tuple[str, np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """(label, loss, derivative) per curve, from the oracle."""
    import oracle

    out = []
    for label, arrays, options in vw.curves:
        r = oracle.evaluate(
            v.loss, reduction="none", wrt=(vw.arg,), upstream=np.ones(vw.xs.size), **arrays, **options
        )
        g = np.asarray(r.grads[vw.arg])
        out.append((label, np.asarray(r.value, dtype=float), g[:, 0] if g.ndim == 2 else g))
    return out


def png(v: Variant, title: str, xlabel: str, ylabel: str, dlabel: str) -> bytes | None:
    """The plot of ``v`` as PNG bytes (None where it has no scalar view)."""
    vw = view(v)
    if vw is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = evaluate(v, vw)
    with plt.rc_context({"font.size": 9, "svg.hashsalt": "0", "path.simplify": False}):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.0, 3.0), dpi=80)
        for label, value, grad in curves:
            ax1.plot(vw.xs, value, label=label or None, linewidth=1.4)
            ax2.plot(vw.xs, grad, label=label or None, linewidth=1.4)
        ax1.set_xlabel(xlabel)
        ax1.set_ylabel(ylabel)
        ax2.set_xlabel(xlabel)
        ax2.set_ylabel(dlabel)
        for ax in (ax1, ax2):
            ax.grid(True, linewidth=0.4, alpha=0.5)
            ax.axhline(0.0, color="0.6", linewidth=0.6)
        if any(label for label, _, _ in curves):
            ax1.legend(loc="best", fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        plt.close(fig)
    return buf.getvalue()
