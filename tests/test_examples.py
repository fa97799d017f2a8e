"""The README's examples behave as stated: the seed's Custom_MSE and the hand-written autograd
cross entropy pass; the variant whose backward ignores the upstream gradient fails with a minimal
counterexample. Each is run exactly as the README writes it, from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _readme_command(impl: str, loss: str) -> subprocess.CompletedProcess[str]:
    readme = (ROOT / "README.md").read_text()
    assert f"pytest conformance --impl {loss}={impl} --loss {loss}" in readme
    return subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", "--impl", f"{loss}={impl}", "--loss", loss,
         "-p", "no:cacheprovider", "-q", "-x"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("impl", "loss"),
    [
        ("examples.custom_mse:Custom_MSE", "mse_loss"),
        ("examples.forward_only:L1", "l1_loss"),
        ("examples.cross_entropy_function:cross_entropy", "cross_entropy"),
    ],
)
def test_example_passes(impl: str, loss: str) -> None:
    done = _readme_command(impl, loss)
    assert done.returncode == 0, done.stdout[-3000:]


def test_wrong_example_fails_with_a_minimal_counterexample() -> None:
    done = _readme_command("examples.cross_entropy_function:cross_entropy_ignoring_upstream", "cross_entropy")
    assert done.returncode == 1
    assert "does not conform on torch-cpu+cross_entropy=cross_entropy_ignoring_upstream" in done.stdout
    assert "gradient w.r.t. input" in done.stdout
    assert (
        "impl={'cross_entropy': 'examples.cross_entropy_function:cross_entropy_ignoring_upstream'}"
        in done.stdout
    )
