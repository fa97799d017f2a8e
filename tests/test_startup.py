"""Collecting the suite is fast: it imports neither torch nor SymPy (``conformance.catalogue`` holds
what it reads of the spec), collects the same checks from an empty cache as from a warm one, and
the checks still receive the spec's own objects."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import catalogue

ROOT = Path(__file__).resolve().parent.parent

#: a plugin that reports, at the end of collection, which heavy modules the process has imported
PROBE = """
import sys


def pytest_collection_finish(session):
    heavy = sorted(m for m in ("torch", "sympy") if m in sys.modules)
    print(f"startup-probe: {len(session.items)} checks, heavy imports {heavy}")
"""


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LOSS_CONFORMANCE_CACHE", str(cache))
    catalogue.load.cache_clear()
    yield cache
    catalogue.load.cache_clear()


def _collect(pytester: pytest.Pytester, *args: str) -> tuple[list[str], str]:
    pytester.makepyfile(startup_probe=PROBE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "startup_probe", "--pyargs", "conformance", "--collect-only", "-q",
        *args,
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    lines = result.stdout.lines
    (probe,) = [line for line in lines if line.startswith("startup-probe:")]
    return [line for line in lines if "::" in line], probe


@pytest.mark.slow
def test_collection_imports_neither_torch_nor_sympy(pytester: pytest.Pytester, empty_cache: Path) -> None:
    """The first run builds the catalogue (and imports SymPy to do it); every later one reads it and
    collects the same checks without importing SymPy or torch."""
    first, probe = _collect(pytester)
    assert "heavy imports ['sympy']" in probe  # torch-cpu's answers never import torch
    assert list(empty_cache.glob("catalogue/*.json"))
    again, probe = _collect(pytester)
    assert probe == f"startup-probe: {len(again)} checks, heavy imports []"
    assert again == first
    from spec import REGISTRY  # every variant's value check is collected

    values = {line.split("::")[-1] for line in again if "::test_value[" in line and "-float64]" in line}
    assert len(values) == sum(len(loss.variants) for loss in REGISTRY.values()), sorted(values)
    selected, probe = _collect(pytester, "--loss=mse_loss")
    assert probe.endswith("heavy imports []")
    assert selected and set(selected) < set(first)
    from oracle.networks import NETWORKS

    nets = [n.name for n in NETWORKS.values() if n.loss == "mse_loss"]  # the seed networks it trains
    assert all(  # a divergence's id: mse-loss-…
        "mse_loss" in line or "mse-loss" in line or any(f"[{n}-" in line for n in nets) for line in selected
    )


def test_catalogue_sources_cover_its_build() -> None:
    """Building the catalogue imports only modules whose files name it (``catalogue.SOURCES``), so an
    edit of anything it is read from gives it a new file, never a stale one."""
    script = (
        "import json, sys\n"
        "from conformance import catalogue\n"
        "catalogue.build()\n"
        "print(json.dumps(sorted(getattr(m, '__file__', None) or '' for m in list(sys.modules.values()))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=ROOT)
    files = {Path(f).resolve() for f in json.loads(out.stdout) if f}
    ours = {f for f in files if f.is_relative_to(ROOT) and ".venv" not in f.parts}
    hashed = {f.resolve() for pattern in catalogue.SOURCES for f in ROOT.glob(pattern)}
    # where the file is kept, not what it holds
    location = {ROOT / "oracle" / "__init__.py", ROOT / "oracle" / "_cachedir.py"}
    assert ours - location <= hashed, sorted(str(f.relative_to(ROOT)) for f in ours - location - hashed)


def test_unreadable_catalogue_is_rebuilt(empty_cache: Path) -> None:
    built = catalogue.load()
    path = catalogue.path()
    assert json.loads(path.read_text()) == catalogue.build()
    path.write_text("{not json")
    catalogue.load.cache_clear()
    assert catalogue.load() == built
    assert json.loads(path.read_text()) == catalogue.build()


def test_entries_resolve_to_the_spec_objects() -> None:
    from conformance.bad_inputs import bad_inputs
    from conformance.divergences import DIVERGENCES
    from spec.derive import all_variants

    cat = catalogue.load()
    variants = all_variants()
    assert [v.resolve() for v in cat.variants] == list(variants)
    for entry, v in zip(cat.variants, variants, strict=True):
        assert (entry.loss, entry.name, entry.key, entry.properties) == (v.loss, v.name, v.key, v.properties)
        assert [c for c, _ in entry.conventions] == [c.name for c in v.conventions]
        for i, (_, count) in enumerate(entry.conventions):
            points = [catalogue.PointEntry(v.key, i, n).resolve() for n in range(count)]
            assert points == [args for args, _ in v.conventions[i].points]
        for dtype, ids in entry.bad_inputs.items():
            got = [catalogue.BadInputEntry(v.key, dtype, b).resolve() for b in ids]
            assert [(b.id, b.arg, b.why) for b in got] == [(b.id, b.arg, b.why) for b in bad_inputs(v, dtype)]
    assert [d.resolve() for d in cat.divergences] == list(DIVERGENCES)


BACKEND = '''
from conformance.backends.torch_backend import TorchBackend


class NoL1(TorchBackend):
    """torch-cpu without l1_loss, which its inherited ``provides`` (torch not imported) does not know."""

    def __init__(self):
        super().__init__("cpu")
        self.name = "no-l1"

    def loss(self, name):
        return None if name == "l1_loss" else super().loss(name)


INSTANCE = NoL1()
'''


def test_a_loss_provides_got_wrong_is_skipped_when_its_check_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(no_l1_backend=BACKEND)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance", "--backend=no_l1_backend:INSTANCE",
        "--loss=l1_loss", "-k", "test_value and not reductions_agree and float64", "-rs",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*backend no-l1 does not provide l1_loss*"])
