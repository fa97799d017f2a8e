"""Third-party backends: found through the entry-point group ``loss_conformance.backends`` or named
as ``package.module:attribute`` (an instance or a zero-argument factory)."""

from __future__ import annotations

from typing import Any

import pytest

BACKEND_MODULE = '''
from conformance.backends.torch_backend import TorchBackend


class Wrapped(TorchBackend):
    """torch-cpu under another name, as a third-party backend would be."""

    def __init__(self):
        super().__init__("cpu")
        self.name = "thirdparty"


INSTANCE = Wrapped()


def make():
    return Wrapped()


NOT_A_BACKEND = object()
'''


def _setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(thirdparty_backend=BACKEND_MODULE)
    dist = pytester.mkdir("thirdparty-0.1.dist-info")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[loss_conformance.backends]\nthirdparty = thirdparty_backend:INSTANCE\n"
    )


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    _setup(pytester)
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--pyargs",
        "conformance",
        "--loss=l1_loss",
        "-k",
        "test_value and not float16",
        *args,
    )


@pytest.mark.parametrize("backend", ["thirdparty", "thirdparty_backend:INSTANCE", "thirdparty_backend:make"])
def test_third_party_backend_runs(pytester: pytest.Pytester, backend: str) -> None:
    result = _run(pytester, f"--backend={backend}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["conformance: backend thirdparty (device cpu, torch *)*"])


def test_entry_point_backend_is_listed_among_the_choices(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--backend=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "'thirdparty'" in result.stderr.str() and "'torch-cpu'" in result.stderr.str()


def test_not_a_backend_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--backend=thirdparty_backend:NOT_A_BACKEND")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "is not a Backend" in result.stderr.str()


def test_backend_that_cannot_be_imported_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--backend=no_such_package.backend:BACKEND")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot import 'no_such_package.backend'" in result.stderr.str()


def test_capabilities_are_apart_from_the_protocol() -> None:
    """A backend with only the base protocol still resolves and runs; a check needing a capability
    it lacks is skipped with the reason; a backend with the capability's methods has it, and an
    OverrideBackend (--impl) forwards them from its base."""
    import pytest as _pytest

    from conformance.backends import CAPABILITIES, Backend, missing_capability, resolve
    from conformance.backends.override import OverrideBackend
    from conformance.harness import require_capability

    torch_cpu = resolve("torch-cpu")
    assert isinstance(torch_cpu, Backend)
    # the named distances, the seed networks, double backward: torch has every capability
    assert set(CAPABILITIES) == {"functions", "training", "second_order"}
    for name in CAPABILITIES:
        assert missing_capability(torch_cpu, name) is None
        require_capability(torch_cpu, name)  # no skip
    assert torch_cpu.function("cosine_distance") is not None  # type: ignore[attr-defined]
    assert torch_cpu.function("no_such_function") is None  # type: ignore[attr-defined]

    class ProtocolOnly:
        """The base protocol of torch-cpu and nothing else: every capability is missing."""

        def __init__(self, base: Any) -> None:
            self.base = base

        def __getattr__(self, n: str) -> Any:
            if any(n in c.methods for c in CAPABILITIES.values()):
                raise AttributeError(n)
            return getattr(self.base, n)

    bare = ProtocolOnly(torch_cpu)
    assert isinstance(bare, Backend)
    for name in CAPABILITIES:
        why = missing_capability(bare, name)
        assert why is not None and f"has no {name} capability" in why
        with _pytest.raises(_pytest.skip.Exception, match=f"has no {name} capability"):
            require_capability(bare, name)

    class WithSecondOrder(ProtocolOnly):
        def grad_grad(self, *args: Any) -> Any:
            return "second order"

    capable = WithSecondOrder(torch_cpu)
    assert missing_capability(capable, "second_order") is None
    assert missing_capability(capable, "training") is not None
    wrapped = OverrideBackend(capable, {})  # type: ignore[arg-type]
    assert missing_capability(wrapped, "second_order") is None
    assert missing_capability(wrapped, "training") is not None
    assert wrapped.grad_grad() == "second order"
    require_capability(wrapped, "second_order")  # no skip
