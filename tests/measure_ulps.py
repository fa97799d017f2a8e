"""Measure the oracle's float64 error against the mpmath ground truth (not collected by pytest).

Run ``python -m tests.measure_ulps [--n 300] [--seed 0]`` from the repository root. For each variant
it draws random and extreme points (the same families as ``tests/test_ground_truth.py``), and
prints per output (value, each gradient): the number of outputs, the worst ulp error among
well-conditioned outputs, and the worst error / bound ratio (bound ``8·u·scale``) among the others;
see :mod:`tests._groundtruth` for the criterion. Ratios <= 1 and ulps <= 2 are what the tests assert.
For values it also reports the worst ulp error where the problem's own condition number
``Σ|x ∂ℓ/∂x| / |ℓ|`` (from exact gradients) is at most 4, and for every output the worst ulp error
over all finite exact results, however conditioned.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import _groundtruth as gt

Rng = np.random.Generator

_REAL_EXTREMES = (0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 2.0**-1022, 1e300, -1e300, 1.5, 1e-150)
_UNIT_EXTREMES = (0.0, 1.0, 1e-300, 2.0**-1022, 1 - 2.0**-53, 1 - 2.0**-52, 2.0**-53, 0.5, 1e-12, 1 - 1e-12)
_LOGIT_EXTREMES = (0.0, 1000.0, -1000.0, 700.0, -745.0, 36.0, -36.0, 1e-300, 20.0)


def _real(rng: Rng) -> float:
    if rng.random() < 0.2:
        return float(rng.choice(_REAL_EXTREMES))
    return float(rng.standard_normal() * 10.0 ** rng.uniform(-3, 3))


def _unit(rng: Rng) -> float:
    r = rng.random()
    if r < 0.3:
        return float(rng.choice(_UNIT_EXTREMES))
    if r < 0.5:
        return float(10.0 ** rng.uniform(-300, 0))
    if r < 0.6:
        return float(1 - 10.0 ** rng.uniform(-16, 0))
    return float(rng.random())


def _logit(rng: Rng) -> float:
    if rng.random() < 0.2:
        return float(rng.choice(_LOGIT_EXTREMES))
    return float(rng.standard_normal() * 10.0 ** rng.uniform(-2, 3))


def _near(rng: Rng, x: float, other: float) -> float:
    """A second argument: independent, equal, or a few ulps / 2**-50 relative away from ``x``."""
    r = rng.random()
    if r < 0.15:
        return x
    if r < 0.3:
        return float(x * (1 + 2.0**-50))
    if r < 0.4:
        return float(np.nextafter(x, np.inf))
    return other


def draw(key: str, rng: Rng, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arrays, params) for one oracle call with ``n`` samples of variant ``key``."""
    weight = rng.random() < 0.4
    if key in ("l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss"):
        x = [_real(rng) for _ in range(n)]
        y = [_near(rng, xi, _real(rng)) for xi in x]
        params: dict[str, Any] = {}
        d = abs(x[0] - y[0])
        if key == "smooth_l1_loss":
            params["beta"] = float(
                rng.choice([0.0, 1e-300, 1.0, d if np.isfinite(d) else 1.0, 10.0 ** rng.uniform(-3, 3)])
            )
        if key == "huber_loss":
            params["delta"] = float(
                rng.choice([1e-300, 1.0, d if np.isfinite(d) and d > 0 else 1.0, 10.0 ** rng.uniform(-3, 3)])
            )
        return {"input": np.array(x), "target": np.array(y)}, params
    if key == "margin_ranking_loss":
        x1 = [_real(rng) for _ in range(n)]
        x2 = [_near(rng, a, _real(rng)) for a in x1]
        y = [float(rng.choice([-1.0, 1.0])) for _ in range(n)]
        margin = float(rng.choice([0.0, 1.0, -1.0, _real(rng)]))
        return {"input1": np.array(x1), "input2": np.array(x2), "target": np.array(y)}, {"margin": margin}
    if key == "hinge_embedding_loss":
        x = [_real(rng) for _ in range(n)]
        y = [float(rng.choice([-1.0, 1.0])) for _ in range(n)]
        margin = float(rng.choice([1.0, 0.0, x[0], _real(rng)]))
        return {"input": np.array(x), "target": np.array(y)}, {"margin": margin}
    if key == "soft_margin_loss":
        x = [_logit(rng) for _ in range(n)]
        y = [float(rng.choice([-1.0, 1.0])) for _ in range(n)]
        return {"input": np.array(x), "target": np.array(y)}, {}
    if key == "binary_cross_entropy":
        x = [_unit(rng) for _ in range(n)]
        y = [_near(rng, xi, _unit(rng)) if rng.random() < 0.5 else float(rng.choice([0.0, 1.0])) for xi in x]
        y = [min(max(v, 0.0), 1.0) for v in y]
        w = np.array([float(rng.choice([0.0, 1.0, 2.5])) for _ in range(n)]) if weight else None
        return {"input": np.array(x), "target": np.array(y), "weight": w}, {}
    if key == "binary_cross_entropy_with_logits":
        x = [_logit(rng) for _ in range(n)]
        y = [float(rng.choice([0.0, 1.0])) if rng.random() < 0.4 else _unit(rng) for _ in range(n)]
        w = np.array([float(rng.choice([0.0, 1.0, 0.3])) for _ in range(n)]) if weight else None
        pw = np.array([float(rng.choice([1.0, 3.0, 0.5])) for _ in range(n)]) if rng.random() < 0.3 else None
        return {"input": np.array(x), "target": np.array(y), "weight": w, "pos_weight": pw}, {}
    if key == "kl_div":
        log_target = bool(rng.random() < 0.5)
        x = [_real(rng) for _ in range(n)]
        y = [-abs(_logit(rng)) if log_target else _unit(rng) for _ in range(n)]
        return {"input": np.array(x), "target": np.array(y)}, {"log_target": log_target}
    if key == "poisson_nll_loss":
        log_input = bool(rng.random() < 0.5)
        x = [_logit(rng) if log_input else abs(_real(rng)) for _ in range(n)]
        y = [
            float(rng.choice([0.0, 1.0, 2.0, 1 + 2.0**-52])) if rng.random() < 0.3 else abs(_real(rng))
            for _ in range(n)
        ]
        params = {
            "log_input": log_input,
            "full": bool(rng.random() < 0.5),
            "eps": float(rng.choice([1e-8, 1e-300, 1.0])),
        }
        return {"input": np.array(x), "target": np.array(y)}, params
    if key == "gaussian_nll_loss":
        x = [_real(rng) for _ in range(n)]
        y = [_near(rng, xi, _real(rng)) for xi in x]
        v = [float(rng.choice([0.0, 1e-8, 1.0])) if rng.random() < 0.3 else abs(_real(rng)) for _ in range(n)]
        params = {"full": bool(rng.random() < 0.5), "eps": float(rng.choice([1e-6, 1e-300, 2.0]))}
        return {"input": np.array(x), "target": np.array(y), "var": np.array(v)}, params
    if key.startswith(("cosine_embedding_loss", "triplet_margin_loss", "triplet_margin_with_distance_loss")):
        d = int(rng.integers(1, 5))
        vec = lambda: np.array([[_real(rng) for _ in range(d)] for _ in range(n)])  # noqa: E731
        if key == "cosine_embedding_loss":
            y = np.array([float(rng.choice([1.0, -1.0, 0.5])) for _ in range(n)])
            margin = float(rng.choice([0.0, 0.5, -0.9]))
            return {"input1": vec(), "input2": vec(), "target": y}, {"margin": margin}
        a = vec()
        p = np.array([[_near(rng, v, _real(rng)) for v in row] for row in a])
        params = {"margin": float(rng.choice([1.0, 1e-3, 5.0])), "swap": bool(rng.random() < 0.5)}
        if key == "triplet_margin_loss":
            params["p"] = float(rng.choice([1.0, 1.5, 2.0, 3.0]))
            params["eps"] = float(rng.choice([1e-6, 0.0, 0.25]))
        return {"anchor": a, "positive": p, "negative": vec()}, params
    c = int(rng.integers(1, 6))
    spread = 10.0 ** rng.uniform(-2, 3)
    xs = rng.standard_normal((n, c)) * spread
    if rng.random() < 0.3:
        xs[0] = [float(rng.choice(_LOGIT_EXTREMES)) for _ in range(c)]
    w = np.array([float(rng.choice([0.0, 1.0, 0.7, 2.0])) for _ in range(c)]) if weight else None
    ls = float(rng.choice([0.0, 0.0, 1.0, rng.random()]))
    if key == "multi_margin_loss":
        t = rng.integers(0, c, size=n)
        margin = float(rng.choice([1.0, 0.0, -2.5, 1e-3, 7.0]))
        return {"input": xs, "target": t, "weight": w}, {"p": int(rng.choice([1, 2])), "margin": margin}
    if key == "multilabel_margin_loss":
        rows = []
        for _ in range(n):
            m = int(rng.integers(0, c + 1))
            row = list(rng.integers(0, c, size=m)) + (
                [-1, *rng.integers(-1, c, size=c - m - 1).tolist()] if m < c else []
            )
            rows.append(row)
        return {"input": xs, "target": np.array(rows, dtype=np.int64)}, {}
    if key == "multilabel_soft_margin_loss":
        t = np.array([[_unit(rng) for _ in range(c)] for _ in range(n)])
        return {"input": xs, "target": t, "weight": w}, {}
    if key in ("cross_entropy[class_index]", "nll_loss"):
        t = rng.integers(0, c, size=n)
        return {"input": xs, "target": t, "weight": w}, ({"label_smoothing": ls} if key != "nll_loss" else {})
    t = rng.random((n, c)) ** 3
    t[rng.random((n, c)) < 0.2] = 0.0
    if rng.random() < 0.5:
        t = t / np.maximum(t.sum(axis=1, keepdims=True), 1e-300)
    return {"input": xs, "target": t, "weight": w}, {"label_smoothing": ls}


KEYS = (
    "l1_loss",
    "mse_loss",
    "smooth_l1_loss",
    "huber_loss",
    "soft_margin_loss",
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy[class_index]",
    "cross_entropy[probabilities]",
    "nll_loss",
    "kl_div",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "multilabel_soft_margin_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "cosine_embedding_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
    "triplet_margin_with_distance_loss[cosine_distance]",
    "triplet_margin_with_distance_loss[squared_euclidean_distance]",
)


def measure(n_points: int, seed: int) -> list[gt.Record]:
    rng = np.random.default_rng(seed)
    out: list[gt.Record] = []
    for key in KEYS:
        per_call = 3
        for _ in range(max(1, n_points // per_call)):
            arrays, params = draw(key, rng, per_call)
            out.extend(gt.records(key, arrays, params))
    return out


def condition(r: gt.Record) -> float:
    """The condition number of a value output, Σ |x ∂ℓ/∂x| / |ℓ| over the differentiable inputs,
    from the exact (mpmath) gradients: how much the problem itself amplifies relative perturbations
    of its inputs, whatever the algorithm. inf for gradient outputs (not computed)."""
    from spec.derive import variant_by_key
    from tests import _mp

    if r.form != "value" or not (np.isfinite(r.exact) and r.exact != 0):
        return float("inf")
    v = variant_by_key(r.key)
    total = 0.0
    for name in v.differentiable:
        if name not in r.point:  # an optional argument not given
            continue
        x = r.point[name]
        if v.roles[name].role == "axis":
            total += sum(abs(xj * _mp.exact(r.key, name, r.point, j=jj)) for jj, xj in enumerate(x))
        else:
            total += abs(x * _mp.exact(r.key, name, r.point))
    return total / abs(r.exact)


def report(recs: list[gt.Record]) -> str:
    groups: dict[tuple[str, str], list[gt.Record]] = defaultdict(list)
    for r in recs:
        groups[(r.key, r.form)].append(r)
    lines = [
        f"{'variant':34} {'output':7} {'n':>5} {'well':>5} {'max ulp (well)':>15} "
        f"{'max err/bound (other)':>22} {'κ<=4':>5} {'max ulp (κ<=4)':>15} {'max ulp (all)':>14}"
    ]
    for (key, form), rs in groups.items():
        well = [r for r in rs if r.well_conditioned]
        other = [r for r in rs if not r.well_conditioned]
        mu = max((r.ulps for r in well), default=0.0)
        mb = max((r.bound_ratio for r in other), default=0.0)
        kappa = [r for r in rs if form == "value" and condition(r) <= 4]
        mk = max((r.ulps for r in kappa), default=0.0)
        ma = max((r.ulps for r in rs if np.isfinite(r.exact)), default=0.0)
        k_cols = f"{len(kappa):5d} {mk:15.3g}" if form == "value" else f"{'-':>5} {'-':>15}"
        lines.append(
            f"{key:34} {form:7} {len(rs):5d} {len(well):5d} {mu:15.3g} {mb:22.3g} {k_cols} {ma:14.3g}"
        )
    bad = [r for r in recs if not r.ok]
    lines.append(f"{len(recs)} outputs, {len(bad)} outside their bound")
    lines.extend("  " + r.describe() for r in bad[:20])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="points per variant")
    ap.add_argument("--seed", type=int, default=0)
    ns = ap.parse_args(argv)
    t0 = time.perf_counter()
    recs = measure(ns.n, ns.seed)
    print(report(recs))
    print(f"({time.perf_counter() - t0:.1f} s, seed {ns.seed})")
    return 0 if all(r.ok for r in recs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
