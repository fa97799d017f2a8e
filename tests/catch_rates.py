"""Verdict quality, measured: for each planted bug of ``tests/planted/mutants.py``, how many examples
the check that should catch it draws before it does, and how often a randomised run catches it.
Not a test (it takes minutes); run it as::

    python -m tests.catch_rates [--seeds 10] [--examples 20] [-k SUBSTRING]

For each plant it runs what the check that should catch it draws and checks, with the plant in
place of its loss: ``test_value``'s case under every reduction (``conformance.checks.values``), or
``test_gradient``'s case, inputs and upstream (``tests.test_planted.STRATEGIES``):

* derandomised (the ``ci`` profile's draws), up to ``tests.test_planted.SEARCH``'s examples: the
  number of examples drawn up to the first that fails (``-`` if none does);
* randomised, ``--examples`` examples a run (the default profile's), once per seed: the runs that
  catch it.

It prints a line per plant and the median of the first column; it exits 1 if a plant is never
caught by the derandomised search, or caught in fewer than 9 of 10 runs (issue 13's goal).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed


class _Caught(Exception):
    pass


def first_catch(plant: Any, *, examples: int, derandomize: bool, seed: int | None = None) -> int | None:
    """The number of examples drawn up to the first on which the plant fails its check, or None."""
    from tests.test_planted import STRATEGIES, _fails

    backend = plant.backend()
    drawn = [0]
    if plant.check == "value":
        strategy = _values(plant)
    else:
        strategy = STRATEGIES[plant.check](plant.variant, plant.dtype)

    @settings(
        max_examples=examples, derandomize=derandomize, database=None, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(strategy)
    def search(probe: Any) -> None:
        drawn[0] += 1
        if probe(backend) if callable(probe) else _fails(backend, probe):
            raise _Caught

    if seed is not None:
        search = hypothesis_seed(seed)(search)
    try:
        search()
    except _Caught:
        return drawn[0]
    return None


def _values(plant: Any) -> Any:
    """What ``test_value`` draws and checks: a case with reduction 'none', checked under every
    reduction (``conformance.checks.values``); each draw a predicate of the backend."""
    from hypothesis.errors import UnsatisfiedAssumption

    from conformance import checks
    from conformance.harness import ConformanceFailure
    from conformance.strategies import cases

    def fails(case: Any) -> Any:
        def on(backend: Any) -> bool:
            try:
                checks.values(backend, case)
            except ConformanceFailure:
                return True
            except UnsatisfiedAssumption:  # a known divergence of the backend: not a catch
                return False
            return False

        return on

    return cases(plant.variant, plant.dtype, reductions=("none",)).map(fails)


def main() -> int:
    from tests.test_planted import PLANTS, SEARCH

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--examples", type=int, default=20)
    ap.add_argument("-k", default="", help="only the plants whose name contains this")
    args = ap.parse_args()
    rng = random.SystemRandom()
    firsts: list[int] = []
    short: list[str] = []
    start = time.monotonic()
    for plant in (p for p in PLANTS if args.k in p.mutant):
        first = first_catch(plant, examples=SEARCH.max_examples, derandomize=True)
        runs = sum(
            first_catch(plant, examples=args.examples, derandomize=False, seed=rng.randrange(2**32))
            is not None
            for _ in range(args.seeds)
        )
        if first is not None:
            firsts.append(first)
        if first is None or runs * 10 < 9 * args.seeds:
            short.append(plant.mutant)
        shown = "-" if first is None else str(first)
        caught = f"caught {runs}/{args.seeds}"
        print(f"{plant.mutant:45s} {plant.check:9s} {plant.dtype:9s} first {shown:>4s}  {caught}")
        sys.stdout.flush()
    median = statistics.median(firsts) if firsts else float("nan")
    print(f"median examples to the first catch: {median}; {time.monotonic() - start:.0f} s")
    print(f"short of the goal: {short or 'none'}")
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
