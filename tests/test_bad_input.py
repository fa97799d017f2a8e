"""Invalid input (``conformance/bad_inputs.py``): each invalid call derived from the spec is
rejected by the oracle with an ``OracleInputError`` naming its argument, and by torch-cpu; the
classes left out (``TORCH_ACCEPTS``) are still accepted by torch; the valid call each is made from
is valid. A planted implementation that accepts bad input (``tests/planted/lenient.py``) fails the
check with a readable reproduction that replays; through ``--impl`` it is an advisory expected
failure by default, and a failure with ``--conformance-strict``."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import oracle
from conformance import checks
from conformance.backends import resolve
from conformance.backends.override import OverrideBackend
from conformance.bad_inputs import TORCH_ACCEPTS, bad_inputs, derived, valid_case
from conformance.harness import ConformanceFailure, check, run
from spec import REGISTRY
from spec.derive import all_variants
from tests.planted import lenient

ROOT = Path(__file__).resolve().parent.parent
TORCH = resolve("torch-cpu")
VARIANTS = all_variants()
_IDS = [v.key for v in VARIANTS]


@pytest.mark.parametrize("variant", VARIANTS, ids=_IDS)
def test_each_invalid_call_is_made_from_a_valid_one(variant) -> None:  # type: ignore[no-untyped-def]
    check(TORCH, valid_case(variant), known_ok=True)  # the oracle takes it, torch conforms on it


@pytest.mark.parametrize("variant", VARIANTS, ids=_IDS)
def test_oracle_rejects_each_naming_the_argument(variant) -> None:  # type: ignore[no-untyped-def]
    found = derived(variant)
    assert len({b.id for b in found}) == len(found), [b.id for b in found]
    for b in found:
        with pytest.raises(oracle.OracleInputError) as info, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (kl_div's 'mean' warns before the input is checked)
            oracle.evaluate(b.case.loss, **b.case.arrays, **b.case.options, reduction=b.case.reduction)
        message = str(info.value)
        assert message.startswith(f"{b.arg}: expected "), (b.id, message)
        assert ", got " in message, (b.id, message)


@pytest.mark.parametrize("variant", VARIANTS, ids=_IDS)
def test_torch_rejects_each(variant) -> None:  # type: ignore[no-untyped-def]
    for b in bad_inputs(variant):
        checks.rejects_bad_input(TORCH, b.case)


def test_torch_accepts_what_is_left_out() -> None:
    """Each class in TORCH_ACCEPTS is still derived from the spec, and torch still accepts it (if
    a torch release starts rejecting one, drop it from the table: the suite will then check it)."""
    derived_ids = {(v.loss, b.id): b for v in VARIANTS for b in derived(v)}
    stale = sorted(set(TORCH_ACCEPTS) - set(derived_ids))
    assert not stale, f"TORCH_ACCEPTS entries no spec record derives: {stale}"
    for key, b in derived_ids.items():
        if key in TORCH_ACCEPTS:
            got = run(TORCH, b.case)  # no exception
            assert np.shape(got.value) == (), (key, got.value)


def test_the_default_reductions_and_batchmean() -> None:
    """'batchmean' is invalid everywhere but where a variant takes it (kl_div)."""
    for v in VARIANTS:
        ids = {b.id for b in derived(v)}
        assert "reduction-unknown" in ids
        assert ("reduction-batchmean" in ids) == ("batchmean" not in v.reductions), v.key


def _lenient() -> OverrideBackend:
    return OverrideBackend(TORCH, {"cross_entropy": lenient.cross_entropy_clamping_targets})


def test_planted_lenient_cross_entropy_conforms_on_valid_input() -> None:
    v = REGISTRY["cross_entropy"].variant("class_index")
    for reduction in ("none", "mean", "sum"):
        case = valid_case(v)
        check(_lenient(), dataclasses.replace(case, reduction=reduction), wrt=("input",))


def test_planted_lenient_cross_entropy_is_caught_with_a_reproduction(monkeypatch: pytest.MonkeyPatch) -> None:
    v = REGISTRY["cross_entropy"].variant("class_index")
    bad = {b.id: b for b in bad_inputs(v)}["target-index-too-large"]
    backend = _lenient()
    with pytest.raises(ConformanceFailure) as failure:
        checks.rejects_bad_input(backend, bad.case)
    message = str(failure.value)
    head, problem = message.splitlines()[:2]
    assert head.startswith(f"cross_entropy (class_index) does not conform on {backend.name} "), message
    assert problem.startswith(
        "  accepted invalid input: target: expected class indices in [0, 3) or ignore_index=-100, got 3 "
        "at index (0,) (expected an exception, got a value)"
    ), message
    assert "\n  got:      " in message and "check='rejects_bad_input'" in message, message
    assert "impl={'cross_entropy': 'tests.planted.lenient:cross_entropy_clamping_targets'}" in message
    # the reproduction replays it: the same failure again
    code = textwrap.dedent(message.split("reproduce with (paste into python):\n", 1)[1])
    with pytest.raises(ConformanceFailure) as again:
        exec(compile(code, "<reproduction>", "exec"), {})
    assert str(again.value).splitlines()[1] == problem
    checks.rejects_bad_input(TORCH, bad.case)  # torch itself raises there


def _run_suite(*extra: str) -> subprocess.CompletedProcess[str]:
    impl = "cross_entropy=tests.planted.lenient:cross_entropy_clamping_targets"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "--impl", impl, "--loss", "cross_entropy",
         "-k", "test_rejects_bad_input", "-p", "no:cacheprovider", "-q", "-rxf", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_lenient_impl_is_advisory_by_default_and_fails_under_strict() -> None:
    advisory = _run_suite()
    out = advisory.stdout
    assert advisory.returncode == 0, out[-3000:]
    xfailed = re.findall(r"^XFAIL .*test_rejects_bad_input\[(\S+)\] - (.*)$", out, flags=re.M)
    assert {i for i, _ in xfailed} == {
        "cross_entropy-class_index-target-index-too-large",
        "cross_entropy-class_index-target-index-negative",
    }, out[-3000:]
    assert all(r.startswith("advisory for --impl; enforced with --conformance-strict") for _, r in xfailed)

    strict = _run_suite("--conformance-strict")
    out = strict.stdout
    assert strict.returncode == 1, out[-3000:]
    failed = re.findall(r"^FAILED .*test_rejects_bad_input\[(\S+)\]", out, flags=re.M)
    assert sorted(failed) == [
        "cross_entropy-class_index-target-index-negative",
        "cross_entropy-class_index-target-index-too-large",
    ], out[-3000:]
    assert "accepted invalid input: target: expected class indices in [0, 3) or ignore_index=-100" in out
    assert "reproduce with (paste into python):" in out and "check='rejects_bad_input'" in out
