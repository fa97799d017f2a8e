"""The oracle's second derivatives against exact arithmetic: ``oracle.hvp`` (the Hessian-vector
products of the variant ``spec.derive.hvp_variant`` derives) against the raw spec differentiated
twice, evaluated in mpmath (``tests._mp``), and those raw second derivatives against central
finite differences of the high-precision first derivative (the hvp variant's value ``G``).

``python -m tests.test_second_order_truth`` prints the worst error per variant."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from spec.derive import direction, hvp_variant, variant_by_key
from tests import _groundtruth as gt
from tests import _mp

pytestmark = pytest.mark.slow

_R = np.random.default_rng(20261202)


def _dirs(key: str, arrays: dict[str, Any], c: int | None = None) -> dict[str, Any]:
    """Random directions along every differentiable argument given, 0 along those not given (a
    missing class weight is 1, its direction 0: an mpmath point reads a missing argument as 1)."""
    v = variant_by_key(key)
    out = dict(arrays)
    first = np.asarray(next(iter(arrays.values())))
    for n in v.differentiable:
        if arrays.get(n) is not None:
            out[direction(n)] = _R.normal(size=np.shape(arrays[n]))
        elif v.roles[n].role == "axis":
            out[n] = np.ones(c if c is not None else first.shape[-1])
            out[direction(n)] = np.zeros_like(out[n])
        else:
            out[n] = np.ones(first.shape)
            out[direction(n)] = np.zeros(first.shape)
    return out


def _cases() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    x = np.array([-1.3, -0.2, 0.4, 2.1])
    y = np.array([0.7, -0.9, 0.35, 1.6])
    p = np.array([0.15, 0.4, 0.62, 0.9])
    q = np.array([0.3, 0.0, 1.0, 0.55])
    s = np.array([1.0, -1.0, 1.0, -1.0])
    pos = np.array([0.5, 1.2, 2.5, 0.8])
    logits = np.array([[0.3, -1.2, 2.0], [1.5, 0.2, -0.7]])
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    cw = np.array([0.5, 2.0, 1.0])
    return [
        ("mse_loss", {"input": x, "target": y, "weight": pos}, {}),
        ("l1_loss", {"input": x, "target": y}, {}),
        ("smooth_l1_loss", {"input": x, "target": y}, {"beta": 1.0}),
        ("huber_loss", {"input": x, "target": y, "weight": pos}, {"delta": 0.8}),
        ("binary_cross_entropy", {"input": p, "target": q, "weight": pos}, {}),
        ("binary_cross_entropy_with_logits", {"input": x, "target": q, "weight": pos, "pos_weight": pos}, {}),
        ("soft_margin_loss", {"input": x, "target": s}, {}),
        ("kl_div", {"input": -pos, "target": p}, {"log_target": False}),
        ("kl_div", {"input": -pos, "target": -pos[::-1]}, {"log_target": True}),
        ("poisson_nll_loss", {"input": x, "target": pos}, {"log_input": True, "full": True, "eps": 1e-8}),
        ("poisson_nll_loss", {"input": pos, "target": pos[::-1]},
         {"log_input": False, "full": False, "eps": 1e-8}),
        ("gaussian_nll_loss", {"input": x, "target": y, "var": pos}, {"full": True, "eps": 1e-6}),
        ("margin_ranking_loss", {"input1": x, "input2": y, "target": s}, {"margin": 0.3}),
        ("hinge_embedding_loss", {"input": pos, "target": s}, {"margin": 1.5}),
        ("cross_entropy[class_index]", {"input": logits, "target": np.array([2, 0]), "weight": cw},
         {"ignore_index": -100, "label_smoothing": 0.1}),
        ("cross_entropy[probabilities]", {"input": logits, "target": probs, "weight": cw},
         {"label_smoothing": 0.2}),
        ("nll_loss", {"input": -np.abs(logits), "target": np.array([1, 2]), "weight": cw},
         {"ignore_index": -100}),
        ("multilabel_soft_margin_loss", {"input": logits, "target": probs, "weight": cw}, {}),
        ("multi_margin_loss", {"input": logits, "target": np.array([2, 0]), "weight": cw},
         {"p": 2, "margin": 1.0}),
        ("multilabel_margin_loss", {"input": logits, "target": np.array([[2, -1, 0], [0, 1, -1]])}, {}),
        ("cosine_embedding_loss", {"input1": logits, "input2": probs, "target": np.array([1.0, -1.0])},
         {"margin": -0.5}),
    ]  # fmt: skip


def _key(name: str) -> str:
    v = variant_by_key(name)
    return hvp_variant(v).key


def records() -> dict[str, list[gt.Record]]:
    out: dict[str, list[gt.Record]] = {}
    for name, arrays, params in _cases():
        key = _key(name)
        out.setdefault(key, []).extend(gt.records(key, _dirs(key, arrays), params))
    return out


@pytest.fixture(scope="module")
def all_records() -> dict[str, list[gt.Record]]:
    return records()


def test_every_closed_form_loss_has_a_second_order_case() -> None:
    from spec import REGISTRY

    covered = {variant_by_key(_key(n)).key.replace("@hvp", "") for n, _, _ in _cases()}
    covered = {k.replace("[default]", "") for k in covered}
    want = {v.key for loss in REGISTRY.values() for v in loss.variants}
    # the triplet losses: their raw p-norm forms take minutes in mpmath at 30 digits
    # (tests/test_ground_truth.py proves their first order; their second order is checked
    # against torch by the conformance suite)
    left = {k for k in want - covered if not k.startswith("triplet_margin")}
    assert not left, f"no second-order ground truth for {sorted(left)}"


def test_oracle_hvp_matches_mpmath(all_records: dict[str, list[gt.Record]]) -> None:
    bad = [r.describe() for recs in all_records.values() for r in recs if not r.ok]
    assert not bad, "\n".join(bad[:20])


def test_raw_second_derivatives_match_finite_differences_of_the_first() -> None:
    """∂G/∂b by the closed form (the raw spec differentiated twice) against a central difference
    of G = ⟨∇ℓ, v⟩ (the raw first derivative) at high precision, at smooth points."""
    pts = [
        ("mse_loss", {"input": 0.4, "target": -0.3, "weight": 1.7}),
        ("smooth_l1_loss", {"input": 0.4, "target": -0.1, "beta": 1.0}),
        ("binary_cross_entropy_with_logits", {"input": 0.8, "target": 0.3, "weight": 0.5, "pos_weight": 2.0}),
        ("soft_margin_loss", {"input": 0.8, "target": -1.0}),
        ("gaussian_nll_loss", {"input": 0.2, "target": 1.1, "var": 0.7, "full": False, "eps": 1e-6}),
        ("poisson_nll_loss", {"input": 0.7, "target": 2.0, "log_input": True, "full": False, "eps": 1e-8}),
    ]
    for name, point in pts:
        key = _key(name)
        v = variant_by_key(key)
        pt = dict(point)
        for n in v.differentiable:
            pt[direction(n)] = float(_R.normal()) if n in point else 0.0
            pt.setdefault(n, 1.0)
        for n in v.differentiable:
            fd = _mp.fd_grad(key, pt, n)
            exact = _mp.exact(key, n, pt)
            assert gt.ulp_error(fd, exact) <= 1 or abs(fd - exact) <= 1e-30, (key, n, pt, fd, exact)
    # along the class axis: cross_entropy's Hessian (the softmax cross term Σ_l p_j p_l v_l)
    key = _key("cross_entropy[class_index]")
    pt = {"input": [0.3, -1.2, 2.0], "target": 1, "weight": [0.5, 2.0, 1.0], "label_smoothing": 0.1,
          "ignore_index": -100, "v_input": [0.4, -0.8, 1.1], "v_weight": [0.0, 0.0, 0.0]}  # fmt: skip
    for jj in range(3):
        fd = _mp.fd_grad(key, pt, "input", jj)
        exact = _mp.exact(key, "input", pt, jj)
        assert gt.ulp_error(fd, exact) <= 1 or abs(fd - exact) <= 1e-30, (jj, fd, exact)


def worst(recs: list[gt.Record]) -> tuple[float, float]:
    """(worst ulps of well-conditioned outputs, worst error/bound of the others)."""
    grads = [r for r in recs if r.form != "value"]
    wc = [r.ulps for r in grads if r.well_conditioned]
    other = [r.bound_ratio for r in grads if not r.well_conditioned]
    return max(wc, default=0.0), max(other, default=0.0)


if __name__ == "__main__":
    for key, recs in records().items():
        u, b = worst(recs)
        print(f"{key:45s} {len(recs):4d} outputs  worst {u:5.3g} ulp (well conditioned), "
              f"{b if math.isfinite(b) else 'inf'} × bound (the others)")  # fmt: skip
