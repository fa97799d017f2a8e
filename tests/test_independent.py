"""No false alarm on code other than torch's: the independent re-implementations of
``examples/independent/`` (plain torch ops, no torch.nn.functional loss) pass the whole default run
of the suite, every loss at once, under the derandomised ``ci`` profile (the same examples every
run; fresh seeds of the randomised profile are the 30-seed sweep's business, ``tests/sweep_seeds.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def impls() -> list[str]:
    """``--impl`` arguments for every loss with an independent re-implementation."""
    import inspect

    from examples.independent import elementwise, structured

    out = []
    for module in (elementwise, structured):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__ and not name.startswith("_"):
                out += ["--impl", f"{name}={module.__name__}:{name}"]
    return out


def test_every_loss_has_one() -> None:
    from spec import REGISTRY

    named = {a.split("=")[0] for a in impls()[1::2]}
    assert set(REGISTRY) | {"ctc_loss", "linear_cross_entropy"} <= named, sorted(named)


def test_independent_implementations_pass() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance", *impls(), "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False,
        env={**os.environ, "CI": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
