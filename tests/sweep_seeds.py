"""The false-alarm sweep: N runs of the default (randomised) profile on a backend, each with a fresh
seed and every CI variable unset, as a user runs ``pytest conformance``. Not a test (it takes
minutes); run it as::

    python -m tests.sweep_seeds --runs 20 [--backend torch-cpu] [-- extra pytest args]

Prints one line per run (seed, outcome counts, wall time) and the total; exits 1 if any run failed,
with the seed that replays it.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--backend", default="torch-cpu")
    ap.add_argument("rest", nargs="*", help="extra pytest arguments")
    args = ap.parse_args()
    from hypothesis._settings import _CI_VARS  # the variables Hypothesis reads as "in CI"

    env = {k: v for k, v in os.environ.items() if k not in _CI_VARS}
    failed: list[int] = []
    start = time.monotonic()
    for n in range(args.runs):
        seed = random.SystemRandom().randrange(2**32)
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "conformance", f"--backend={args.backend}", "-q",
             "-p", "no:cacheprovider", f"--hypothesis-seed={seed}", *args.rest],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
        print(
            f"run {n + 1:2d}: seed {seed:10d}: rc {done.returncode}: {tail}  [{time.monotonic() - t0:.1f} s]"
        )
        if done.returncode != 0:
            failed.append(seed)
            print("\n".join(ln for ln in done.stdout.splitlines() if re.match(r"(FAILED|ERROR) ", ln)))
    total = time.monotonic() - start
    print(
        f"{args.runs - len(failed)}/{args.runs} runs passed in {total:.0f} s; "
        f"failing seeds: {failed or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
