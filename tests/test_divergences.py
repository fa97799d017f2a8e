"""The known-divergences file: every weighted mean of every loss goes through one predicate, and the
cases where torch's stock losses raised false alarms are inside a recorded divergence's region."""

from __future__ import annotations

import numpy as np
import pytest

from conformance.backends import resolve
from conformance.backends.override import OverrideBackend
from conformance.divergences import DIVERGENCES, known, weighted_mean_hits
from conformance.harness import ConformanceFailure, check
from conformance.strategies import Case
from spec.derive import all_variants

TORCH = resolve("torch-cpu")


def test_every_weighted_mean_has_the_one_predicate() -> None:
    weighted = {(v.loss, v.name) for v in all_variants() if v.mean_weighted_by}
    assert weighted, "the registry has weighted means (l1/mse weight, cross_entropy class weights)"
    for loss, variant in weighted:
        ds = [d for d in DIVERGENCES if d.loss == loss and d.hits is weighted_mean_hits]
        assert len(ds) == 1, (loss, variant, [d.id for d in ds])
    # and no other divergence is a second copy of it
    assert all(d.hits is not weighted_mean_hits or (d.loss, "class_index") in weighted or
               (d.loss, "default") in weighted for d in DIVERGENCES)  # fmt: skip


def _ce(dtype: str, weight: float) -> Case:
    return Case(
        "cross_entropy", "class_index", dtype,
        {"input": np.array([0.0]), "target": np.array(0), "weight": np.array([weight])},
        {"ignore_index": -100, "label_smoothing": 0.0}, "mean",
    )  # fmt: skip


# The false alarms of the outside trial (issue 6): a subnormal class weight, float64 (replayed with
# --hypothesis-seed=3534527307 on hypothesis 6.170), and the thorough profile's float16 ones.
FALSE_ALARMS = [
    (_ce("float64", 2.225073858507e-311), np.array(1.5)),
    (_ce("float16", float(np.float16(1.19e-07))), None),
    (_ce("float16", float(np.float16(5.96e-08))), None),
]


@pytest.mark.parametrize(
    ("case", "upstream"), FALSE_ALARMS, ids=["f64-2.2e-311", "f16-1.19e-07", "f16-5.96e-08"]
)
def test_false_alarm_is_a_known_divergence(case: Case, upstream: np.ndarray | None) -> None:
    """torch's gradient really is wrong there (NaN where the exact one is finite), and the case is in
    the weighted-mean divergence's region, so random checks reject it instead of failing."""
    with pytest.raises(ConformanceFailure, match="NaN"):
        check(TORCH, case, wrt=("input",), upstream=upstream, known_ok=True)
    d = known(TORCH, case, ("input",))
    assert d is not None and d.hits is weighted_mean_hits, d


def test_predicate_leaves_ordinary_weighted_means_alone() -> None:
    """A weighted mean of normal weights is checked as usual (outside every divergence)."""
    for w in (1.0, 1e-3, 2.0**-126):
        case = _ce("float32", w)
        assert known(TORCH, case, ("input",)) is None, w
        check(TORCH, case, wrt=("input",), upstream=np.array(1.5))


def _smoothing_witness() -> Case:
    (d,) = [d for d in DIVERGENCES if d.id == "cross-entropy-smoothing-mean-overflow"]
    return d.witnesses[0][0]


def test_impl_failing_as_torch_does_is_an_expected_failure() -> None:
    """An --impl that is torch's own cross_entropy fails the witness exactly as torch does: an
    expected failure naming the divergence (outside a Hypothesis test: pytest's xfail)."""
    from tests.planted.wrong_properties import ce_like_torch

    backend = OverrideBackend(TORCH, {"cross_entropy": ce_like_torch})
    with pytest.raises(pytest.xfail.Exception, match="also a known divergence of torch-cpu: "
                       "cross-entropy-smoothing-mean-overflow"):  # fmt: skip
        check(backend, _smoothing_witness())


def test_impl_failing_otherwise_inside_a_divergence_is_a_failure() -> None:
    """Inside the same region, a result that is not torch's (label_smoothing ignored: 0.69 where
    the exact value is 9.7e306 and torch's inf) is a plain failure, and says why."""
    from tests.planted.wrong_properties import ce_ignores_smoothing

    backend = OverrideBackend(TORCH, {"cross_entropy": ce_ignores_smoothing})
    with pytest.raises(ConformanceFailure, match="but this result is not torch-cpu's: a failure"):
        check(backend, _smoothing_witness())


def test_impl_sharing_a_divergence_differs_from_torch_only_inside_the_bound_elsewhere() -> None:
    """Found by a new-user trial: a correct --impl shares torch's NaN (poisson_nll_loss's target
    gradient at target 0, full=True) and differs from torch by an ulp on the other element (0.03315234
    vs torch's 0.03315246, exact 0.033152438: both inside the error model). That is torch's
    divergence, an expected failure; only the elements outside the bound must be torch's."""
    from tests.planted.wrong_properties import poisson_formula

    backend = OverrideBackend(TORCH, {"poisson_nll_loss": poisson_formula})
    case = Case(
        "poisson_nll_loss", "default", "float32",
        {"input": np.array([[[[1.0, 1.0]]]]), "target": np.array([[[[0.0, 2.25]]]])},
        {"log_input": True, "full": True, "eps": float(np.float32(1e-8))}, "none",
    )  # fmt: skip
    with pytest.raises(pytest.xfail.Exception, match="also a known divergence of torch-cpu: poisson-nll"):
        check(backend, case, wrt=("input", "target"), layout="channels_last")


def test_impl_raising_inside_a_divergence_is_a_plain_failure() -> None:
    """An --impl that raises inside a divergence's region fails without a mention of the
    divergence (it is not about the numbers the divergence records)."""
    from tests.planted.wrong_properties import raises

    backend = OverrideBackend(TORCH, {"poisson_nll_loss": raises})
    (d,) = [d for d in DIVERGENCES if d.id == "poisson-nll-full-target-grad-nan-at-zero"]
    case, wrt = d.witnesses[0][0], d.witnesses[0][1]
    with pytest.raises(ConformanceFailure) as e:
        check(backend, case, wrt=wrt)
    assert "raised" in str(e.value) and "known divergence" not in str(e.value)


def test_a_loss_not_replaced_keeps_its_backends_divergences() -> None:
    """With --impl for one loss, the others still run on torch-cpu and keep its divergences, even
    one recorded for the backend name "torch-cpu" exactly (multi_margin_loss's empty batch: found by
    a user's trial, where an --impl of triplet_margin_with_distance_loss failed it)."""
    torch_cpu = resolve("torch-cpu")
    wrapped = OverrideBackend(torch_cpu, {"triplet_margin_with_distance_loss": lambda *a, **k: None})
    case = Case(
        "multi_margin_loss", "default", "float32",
        {"input": np.zeros((0, 3)), "target": np.zeros((0,), np.int64)}, {}, "mean",
    )  # fmt: skip
    expected = known(torch_cpu, case, ("input",))
    assert expected is not None and expected.backends == "torch-cpu"
    assert known(wrapped, case, ("input",)) is expected
    replaced = OverrideBackend(torch_cpu, {"multi_margin_loss": lambda *a, **k: None})
    assert known(replaced, case, ("input",)) is None  # a replaced loss's divergences are not torch's


def test_impl_sharing_a_second_order_divergence_is_an_expected_failure() -> None:
    """Found by a new-user trial: an --impl that calls torch's nll_loss shares torch's double
    backward over a zero total weight (0 where the spec's is NaN): an expected failure naming the
    divergence, as at first order, not a failure of the implementation."""
    import torch

    from conformance import second_order

    (d,) = [d for d in DIVERGENCES if d.id == "nll-loss-zero-total-weight-double-backward"]
    (case, wrt), hvp = d.witnesses[0], d.hvp
    backend = OverrideBackend(TORCH, {"nll_loss": lambda *a, **k: torch.nn.functional.nll_loss(*a, **k)})
    with pytest.raises(pytest.xfail.Exception, match="also a known divergence of torch-cpu: " + d.id):
        second_order.check(backend, case, wrt=wrt, upstream=hvp["upstream"], directions=hvp["directions"])
