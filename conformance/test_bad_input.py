"""Invalid input: every call the spec makes invalid and torch rejects (``conformance.bad_inputs``:
wrong shapes, class indices out of range, wrong dtypes, values outside a checked domain, options
outside their domain, unknown reductions) must raise in the backend too: any exception, whatever
its message. The oracle rejects each with an ``OracleInputError`` naming the argument.

For an implementation replacing the backend's loss (``--impl``) the check is advisory: where it
accepts an invalid call, the check is an expected failure saying so ("advisory for --impl; enforced
with --conformance-strict", with the reproduction), and a failure under ``--conformance-strict``.
The backend's own losses (torch-cpu, torch-cuda, a plug-in backend) are always held to it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from conformance import checks, harness
from conformance.backends import DType
from conformance.bad_inputs import BadInput
from conformance.harness import ConformanceFailure

if TYPE_CHECKING:
    from spec import Variant

ADVISORY = "advisory for --impl; enforced with --conformance-strict"


def _on_cuda(backend: Any) -> bool:
    base = getattr(backend, "base", backend)
    return getattr(base, "device", None) == "cuda" or "cuda" in str(getattr(base, "name", ""))


def test_rejects_bad_input(backend: Any, variant: Variant, dtype: DType, bad_input: BadInput) -> None:
    """The backend raises on ``bad_input`` (one invalid call, derived from the variant's spec, its
    floats in ``dtype``: float32, or the first dtype the backend has for the loss)."""
    if bad_input.device_assert and _on_cuda(backend):
        pytest.skip(
            "an out-of-range class index is a device-side assertion on CUDA, which leaves the device "
            "unusable for the rest of the run: checked on CPU"
        )
    try:
        checks.rejects_bad_input(backend, bad_input.case)
    except ConformanceFailure as e:
        if variant.loss in getattr(backend, "overrides", {}) and not harness.SESSION.get("strict"):
            pytest.xfail(f"{ADVISORY}: {bad_input.why}\n{e}")
        raise
