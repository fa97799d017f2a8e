"""The verdict a user gets, end to end through pytester subprocess runs (CI unset, randomised
profile): one seed per run under xdist, shown in the header and in every failure, replaying the
run; failures that show the verdict and its reproduction, not the suite's internals; an
implementation that fails exactly where torch's own loss has a known divergence; usage errors."""

from __future__ import annotations

import re

import pytest

USER = """
import torch

F = torch.nn.functional


def mse_half(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    return 0.5 * F.mse_loss(input, target, reduction=reduction, weight=weight)


def mse_like_torch(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    return F.mse_loss(input, target, reduction=reduction, weight=weight)
"""

HYPOTHESIS_TESTS = """
import numpy as np
from hypothesis import given, strategies as st

from conformance import checks
from conformance.backends import resolve
from conformance.backends.override import OverrideBackend
from conformance.strategies import Case
from user_losses import mse_half, mse_like_torch

# float16: Σ w·ℓ = 9 · 4 · 43² overflows where the mean 1849 does not (torch's known divergence)
DIVERGENT = Case("mse_loss", "default", "float16", {"input": np.zeros((3, 3)),
                 "target": np.full((3, 3), 43.0), "weight": np.full((3, 3), 4.0)}, {}, "mean")
ORDINARY = Case("mse_loss", "default", "float16", {"input": np.array([0.5, 1.0]),
                "target": np.array([0.25, -1.0])}, {}, "mean")


@given(st.sampled_from([DIVERGENT, ORDINARY]))
def test_like_torch(case):
    checks.oracle(OverrideBackend(resolve("torch-cpu"), {"mse_loss": mse_like_torch}), case)


@given(st.sampled_from([DIVERGENT, ORDINARY]))
def test_wrong_elsewhere_too(case):
    checks.oracle(OverrideBackend(resolve("torch-cpu"), {"mse_loss": mse_half}), case)
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("CI", raising=False)  # the randomised default profile, as a user runs it
    pytester.makepyfile(user_losses=USER)

    def go(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)

    return go


def _failures(out: str) -> list[str]:
    """The reproductions (``replay(...)`` calls) of a run's failures, each once."""
    return sorted(set(re.findall(r"replay\('torch-cpu'.*?impl=\{[^}]*\}\)", out, flags=re.S)))


def test_one_seed_per_run_under_xdist_and_it_replays_the_run(run) -> None:  # type: ignore[no-untyped-def]
    args = ("--pyargs", "conformance", "--loss=mse_loss", "--impl=mse_loss=user_losses:mse_half",
            "-n", "2", "-k", "test_value or test_gradient")  # fmt: skip
    first = run(*args)
    assert first.ret == pytest.ExitCode.TESTS_FAILED
    out = first.stdout.str()
    header = re.search(r"seed (\d+); replay with --hypothesis-seed=(\d+)", out)
    assert header and header[1] == header[2], out[:2000]
    seed = header[1]
    shown = re.findall(r"hypothesis seed (\d+) \(the whole run replays with --hypothesis-seed=(\d+)\)", out)
    assert len(shown) >= 8 and {s for pair in shown for s in pair} == {seed}, shown  # 8 checks x dtypes fail
    again = run(*args, f"--hypothesis-seed={seed}")
    assert _failures(again.stdout.str()) == _failures(out) != []


def test_a_failure_shows_the_verdict_not_the_suite(run) -> None:  # type: ignore[no-untyped-def]
    result = run("--pyargs", "conformance", "--loss=mse_loss", "--impl=mse_loss=user_losses:mse_half",
                 "-k", "test_value and not reductions")  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    failed = len(re.findall(r"^FAILED ", out, flags=re.M))
    assert failed == 4, out  # one per dtype
    section = out.split("= FAILURES =", 1)[1].split("short test summary info", 1)[0]
    for internal in ("def check(", "harness.py", "arrayprint", "Explanation", "Falsifying example", "Draw 1"):
        assert internal not in section, internal
    assert section.count("reproduce with (paste into python):") == failed
    assert len(section.splitlines()) <= 20 * failed, section  # (before: about 130 lines a failure)


def test_shared_divergence_is_an_expected_failure_naming_it(run, pytester: pytest.Pytester) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_shared=HYPOTHESIS_TESTS)
    result = run("--conformance-backend=torch-cpu", "test_shared.py", "-rxXf")
    out = result.stdout.str()
    result.assert_outcomes(xfailed=1, failed=1)
    assert re.search(r"XFAIL test_shared.py::test_like_torch - also a known divergence of torch-cpu: "
                     r"mse-loss-weighted-mean-overflow", out), out  # fmt: skip
    assert "FAILED test_shared.py::test_wrong_elsewhere_too" in out
    strict = run("--conformance-backend=torch-cpu", "test_shared.py", "--conformance-strict")
    strict.assert_outcomes(failed=2)
    assert (
        "also a known divergence of torch-cpu: mse-loss-weighted-mean-overflow; a failure under "
        "--conformance-strict" in strict.stdout.str()
    )


def test_witness_on_an_impl_like_torch_is_an_expected_failure(run) -> None:  # type: ignore[no-untyped-def]
    result = run("--pyargs", "conformance", "--loss=mse_loss", "--impl=mse_loss=user_losses:mse_like_torch",
                 "-k", "test_known_divergence", "-rx")  # fmt: skip
    from conformance.divergences import DIVERGENCES

    witnesses = sum(len(d.witnesses) for d in DIVERGENCES if d.loss == "mse_loss")
    assert witnesses >= 2  # the value and gradient witnesses of mse-loss-weighted-mean-overflow at least
    result.assert_outcomes(xfailed=witnesses)
    result.stdout.fnmatch_lines(["*also a known divergence of torch-cpu: mse-loss-weighted-mean-overflow*"])


def test_unknown_profile_is_a_usage_error(run) -> None:  # type: ignore[no-untyped-def]
    result = run("--pyargs", "conformance", "--loss=l1_loss", "--hypothesis-profile=bogus")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--hypothesis-profile='bogus': unknown profile; expected one of default, ci, thorough" in err, err
    assert "INTERNALERROR" not in err + result.stdout.str()


def test_header_says_ci_unset(run) -> None:  # type: ignore[no-untyped-def]
    result = run("--pyargs", "conformance", "--loss=l1_loss", "--collect-only")
    out = result.stdout.str()
    assert "CI unset" in out and "CI=''" not in out, out[:1500]


def test_check_whose_every_example_hits_a_divergence_is_an_expected_failure(  # type: ignore[no-untyped-def]
    run, pytester: pytest.Pytester
) -> None:
    """A check whose every example hits a known divergence (here one planted by a conftest.py,
    hit by every l1_loss case) ends as an expected failure naming it, not an error; nll_loss on a
    channels_last input, whose backward torch refuses (a known divergence of its gradients only),
    checks the value there and passes."""
    pytester.makeconftest(
        """
from conformance import divergences
from conformance.divergences import Divergence

divergences.DIVERGENCES = (*divergences.DIVERGENCES, Divergence(
    id="planted-every-case", backends="torch-*", loss="l1_loss", dtypes=("float64",),
    library="torch", versions="*", reason="planted: every case", hits=lambda case, wrt: True,
    witnesses=(),
))
"""
    )
    result = run("--pyargs", "conformance", "--loss=l1_loss", "-k", "test_value and float64", "-rx")
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["*every example hit known divergence planted-every-case*"])
    result = run("--pyargs", "conformance", "--loss=nll_loss", "-k", "test_layout and channels_last")
    result.assert_outcomes(passed=2)
