"""Each known divergence's witness case, expected to fail (see ``conformance/divergences.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.divergences import Divergence
from conformance.harness import ConformanceFailure, check


def test_known_divergence(
    backend: Any, divergence: Divergence, witness: int, request: pytest.FixtureRequest
) -> None:
    import fnmatch

    if not fnmatch.fnmatchcase(backend.name, divergence.backends):
        pytest.skip(f"recorded for backends {divergence.backends!r}, not {backend.name}")
    if divergence.loss in getattr(backend, "overrides", {}):
        pytest.skip(
            f"{divergence.loss} is replaced by --impl: the divergence belongs to {backend.base.name}'s own"
        )
    request.applymarker(
        pytest.mark.xfail(
            strict=divergence.measured_on(backend), reason=divergence.reason, raises=ConformanceFailure
        )
    )
    case, wrt = divergence.witnesses[witness]
    check(backend, case, wrt=wrt, known_ok=True)
