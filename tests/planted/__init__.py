"""Planted bugs: wrong implementations of the suite's losses, each with the torch.nn.functional
signature of its loss (see ``tests/planted/mutants.py``), that the conformance harness must catch."""
