"""Each known divergence's witness case, expected to fail (see ``conformance/divergences.py``).

For an implementation replacing the backend's loss (``--impl``), the witness is an ordinary check:
it passes where the implementation gets it right, and where it fails as the backend's own loss does
it is an expected failure naming the divergence (a failure under ``--conformance-strict``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from conformance import second_order
from conformance.harness import ConformanceFailure
from conformance.harness import check as first_order

if TYPE_CHECKING:  # the records are built from the spec: imported when a witness runs
    from conformance.divergences import Divergence


def test_known_divergence(
    backend: Any, divergence: Divergence, witness: int, request: pytest.FixtureRequest
) -> None:
    import fnmatch

    case, wrt, *layout = divergence.witnesses[witness]
    lay: Any = layout[0] if layout else "contiguous"

    def check(backend: Any, case: Any, **kw: Any) -> None:
        if divergence.order == 2:
            kw.pop("layout")
            second_order.check(backend, case, **kw, **divergence.hvp)
        else:
            first_order(backend, case, **kw)

    if divergence.loss in getattr(backend, "overrides", {}):
        check(backend, case, wrt=wrt, layout=lay)  # judged against the base's divergence (harness.guarded)
        return
    if not fnmatch.fnmatchcase(backend.name, divergence.backends):
        pytest.skip(f"recorded for backends {divergence.backends!r}, not {backend.name}")
    request.applymarker(
        pytest.mark.xfail(
            strict=divergence.measured_on(backend), reason=divergence.reason, raises=ConformanceFailure
        )
    )
    check(backend, case, wrt=wrt, layout=lay, known_ok=True)
