"""CTC: the oracle's forward–backward recursion (``oracle.ctc``) against the spec's definition
evaluated exactly (``spec.sequence``: every alignment enumerated, summed in mpmath).

For tiny lengths (T <= 5, C <= 3: at most 243 sequences) the enumeration is the ground truth of the
per-sample loss, of the true gradient ∂loss/∂log_probs (minus the posterior mass of the alignments
through each (t, c)) and of torch's gradient convention (that plus exp(log_probs)). Errors are in
ulps of the exact value; torch's convention subtracts two positive terms, so it is required to a
few ulps only where it does not cancel (|exp(lp)| + |∂loss/∂lp| <= 4 |result|) and to the
oracle's own bound elsewhere. ``python -m tests.test_ctc --n 400`` prints the worst errors.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oracle.ctc import CTCInputError, ctc_loss
from spec.sequence import alignments, collapse, path_log_prob

mpmath.mp.dps = 60
MAX_ULPS = 2.0
WELL = 4.0


def _ulps(got: float, exact: Any) -> float:
    e = float(exact)
    if got == e or (math.isnan(got) and math.isnan(e)):
        return 0.0
    if not (math.isfinite(got) and math.isfinite(e)):
        return math.inf
    return abs(got - e) / float(np.spacing(abs(e))) if e != 0 else abs(got) / 5e-324


def exact_sample(lp: np.ndarray[Any, Any], target: list[int], length: int, blank: int) -> tuple[Any, Any]:
    """loss and ∂loss/∂lp of one sample by enumerating B⁻¹(target) among sequences of ``length``."""
    c = lp.shape[1]
    probs = []
    paths = []
    for path in alignments(length, target, c, blank):
        paths.append(path)
        probs.append(mpmath.exp(mpmath.fsum(mpmath.mpf(float(x)) for x in path_log_prob(lp.tolist(), path))))
    total = mpmath.fsum(probs)
    grad = [[mpmath.mpf(0)] * c for _ in range(lp.shape[0])]
    if total == 0:
        return mpmath.inf, None
    for path, pr in zip(paths, probs, strict=True):
        for t, k in enumerate(path):
            grad[t][k] -= pr / total
    return -mpmath.log(total), grad


@st.composite
def ctc_cases(draw: st.DrawFn) -> dict[str, Any]:
    t_max = draw(st.integers(1, 5))
    c = draw(st.integers(2, 3))
    n = draw(st.integers(1, 3))
    blank = draw(st.integers(0, c - 1))
    labels = [k for k in range(c) if k != blank]
    il = [draw(st.integers(0, t_max)) for _ in range(n)]
    tl = [draw(st.integers(0, 3)) for _ in range(n)]
    s = max([*tl, 1])
    targets = [[draw(st.sampled_from(labels)) for _ in range(s)] for _ in range(n)]
    scale = draw(st.sampled_from([1.0, 5.0, 40.0]))
    z = np.array(draw(st.lists(st.floats(-1, 1), min_size=t_max * n * c, max_size=t_max * n * c)))
    z = (z * scale).reshape(t_max, n, c)
    normalised = draw(st.booleans())  # torch accepts unnormalised log_probs too
    lp = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True)) if normalised else z
    return {"lp": lp, "targets": np.array(targets), "il": np.array(il), "tl": np.array(tl), "blank": blank}


def errors(case: dict[str, Any]) -> dict[str, float]:
    """The oracle against enumeration: worst ulps of the loss and of each gradient, and the worst
    ratio of the error to the bound of the log-space error model.

    The recursion works with logs of path probabilities, of magnitude up to
    ``L = Σ_t max_c |lp_t(c)| + |loss|``: one rounding of such a log is an absolute error u·L, and
    after exp a relative error u·L in each posterior. So the loss is well conditioned where
    ``L <= 4 |loss|`` (required to 2 ulps there); the gradients' bound is ``8·u·(1 + L)`` relative
    to the posterior mass (plus 8·u·exp(lp) for torch's convention, a sum of two terms)."""
    lp, tg, il, tl, blank = case["lp"], case["targets"], case["il"], case["tl"], case["blank"]
    r = ctc_loss(lp, tg, il, tl, blank=blank, reduction="none")
    u = 2.0**-53
    w = {
        "loss_ulps": 0.0,
        "loss_bound": 0.0,
        "true_grad_ulps": 0.0,
        "torch_grad_ulps": 0.0,
        "grad_bound": 0.0,
    }
    for i in range(lp.shape[1]):
        target = [int(x) for x in tg[i, : tl[i]]]
        loss, g = exact_sample(lp[:, i, :], target, int(il[i]), blank)
        got = float(r.losses[i])
        mag = float(np.sum(np.max(np.abs(lp[: il[i], i, :]), axis=-1))) if il[i] else 0.0
        big = mag + (abs(float(loss)) if mpmath.isfinite(loss) else 0.0)
        if mpmath.isfinite(loss) and big <= WELL * abs(float(loss)):
            w["loss_ulps"] = max(w["loss_ulps"], _ulps(got, loss))
        elif got != float(loss):
            err = abs(got - float(loss)) if mpmath.isfinite(loss) else math.inf
            w["loss_bound"] = max(w["loss_bound"], err / (8 * u * (1 + big)))
        if g is None:
            continue
        rel = 8 * u * (1 + big)
        for t in range(int(il[i])):
            for k in range(lp.shape[2]):
                exact_true, got_true = g[t][k], float(r.true_grad[t, i, k])
                e = mpmath.exp(mpmath.mpf(float(lp[t, i, k])))
                exact_torch, got_torch = e + exact_true, float(r.grad[t, i, k])
                w["true_grad_ulps"] = max(w["true_grad_ulps"], _ulps(got_true, exact_true))
                if abs(e) + abs(exact_true) <= WELL * abs(exact_torch):
                    w["torch_grad_ulps"] = max(w["torch_grad_ulps"], _ulps(got_torch, exact_torch))
                tiny = 2 * 5e-324
                w["grad_bound"] = max(
                    w["grad_bound"],
                    abs(got_true - float(exact_true)) / (rel * float(abs(exact_true)) + tiny),
                    abs(got_torch - float(exact_torch))
                    / (rel * float(abs(exact_true)) + 8 * u * float(e) + tiny),
                )
    return w


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctc_cases())
def test_recursion_matches_enumeration(case: dict[str, Any]) -> None:
    w = errors(case)
    assert w["loss_ulps"] <= MAX_ULPS and w["loss_bound"] <= 1.0 and w["grad_bound"] <= 1.0, w


def test_golden_value() -> None:
    # torch 2.13.0 float64 (fact sheet §2.4): T = 3, C = 3, target [1, 2] -> -ln(0.186)
    probs = np.array([[0.5, 0.3, 0.2], [0.4, 0.4, 0.2], [0.6, 0.1, 0.3]])
    r = ctc_loss(np.log(probs), np.array([1, 2]), np.array(3), np.array(2), reduction="none")
    assert float(r.value) == 1.6820086052689358


def test_collapse_merges_repeats_then_drops_blanks() -> None:
    assert collapse((1, 1, 0, 1, 2, 2, 0), blank=0) == (1, 1, 2)
    assert collapse((0, 0), blank=0) == ()
    # a repeated label needs a blank between its copies: [1, 1] has no alignment of length 2
    assert list(alignments(2, [1, 1], 3, 0)) == []


def test_mean_divides_each_loss_by_its_target_length() -> None:
    lp = np.log(np.full((4, 2, 3), 1 / 3))
    tg, il, tl = np.array([[1, 2], [1, 0]]), np.array([4, 4]), np.array([2, 1])
    r = ctc_loss(lp, tg, il, tl, reduction="none")
    m = ctc_loss(lp, tg, il, tl, reduction="mean")
    assert float(m.value) == pytest.approx((r.losses[0] / 2 + r.losses[1] / 1) / 2, rel=1e-15)


def test_zero_infinity_and_infeasible() -> None:
    lp = np.log(np.full((1, 1, 3), 1 / 3))  # one step cannot emit two labels
    for zi, want in ((False, math.inf), (True, 0.0)):
        r = ctc_loss(lp, np.array([[1, 2]]), np.array([1]), np.array([2]), reduction="sum", zero_infinity=zi)
        assert float(r.value) == want
        assert np.isnan(r.grad).all() if not zi else (r.grad == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"blank": 3}, "blank"),
        ({"targets": np.array([[1, 0]])}, "targets"),  # a blank label
        ({"input_lengths": np.array([5])}, "input_lengths"),
        ({"target_lengths": np.array([-1])}, "target_lengths"),
        ({"log_probs": np.zeros((4, 1, 3), np.int64)}, "log_probs"),
        ({"reduction": "average"}, "reduction"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, Any], arg: str) -> None:
    base = {
        "log_probs": np.log(np.full((4, 1, 3), 1 / 3)),
        "targets": np.array([[1, 2]]),
        "input_lengths": np.array([4]),
        "target_lengths": np.array([2]),
    }
    with pytest.raises(CTCInputError, match=f"^{arg}: expected"):
        ctc_loss(**{**base, **kwargs})


def _random_case(rng: np.random.Generator) -> dict[str, Any]:
    t_max, c, n = int(rng.integers(1, 6)), int(rng.integers(2, 4)), int(rng.integers(1, 4))
    blank = int(rng.integers(0, c))
    labels = [k for k in range(c) if k != blank]
    tl = rng.integers(0, 4, size=n)
    targets = rng.choice(labels, size=(n, max(int(tl.max()), 1)))
    z = rng.uniform(-1, 1, size=(t_max, n, c)) * rng.choice([1.0, 5.0, 40.0])
    lp = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True)) if rng.random() < 0.5 else z
    return {"lp": lp, "targets": targets, "il": rng.integers(0, t_max + 1, size=n), "tl": tl, "blank": blank}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    worst: dict[str, float] = {}
    rng = np.random.default_rng(args.seed)
    for _ in range(args.n):
        for k, v in errors(_random_case(rng)).items():
            worst[k] = max(worst.get(k, 0.0), v)
    print(f"{args.n} random cases (T <= 5, C <= 3, N <= 3), worst of each measure:")
    for k, v in worst.items():
        print(f"  {k:16} {v:.3g}")


if __name__ == "__main__":
    main()


# -- the conformance check on torch and on planted wrong implementations ------------------------


def _catches(backend: Any, dtype: str = "float64") -> Any:
    """A case of conformance/test_ctc.py's strategy on which ``backend`` fails its check (and torch
    passes), or None."""
    from conformance.test_ctc import check, ctc_cases
    from tests.test_composites import caught

    return caught(check, ctc_cases(dtype), backend)


@pytest.mark.parametrize("mutant", ["ctc_mean_by_total_length", "ctc_blank_fixed_at_zero",
                                    "ctc_zero_infinity_ignored", "ctc_mean_unclamped"])  # fmt: skip
def test_planted_ctc_bug_is_caught(mutant: str) -> None:
    from conformance.backends.override import OverrideBackend
    from conformance.backends.torch_backend import cpu
    from tests.planted.ctc_mutants import MUTANTS

    assert _catches(OverrideBackend(cpu, {"ctc_loss": MUTANTS[mutant]})) is not None
