"""End-to-end training of the seed networks (``conformance.training``): ids name the network
(``-k mlp``, ``-k cnn``, ``-k linear_regression``) and dtype; ``--loss`` keeps a network whose loss
it selects, and an ``--impl`` of that loss is the one trained inside the network."""

from __future__ import annotations

from typing import Any

from conformance import training
from conformance.backends import DType
from conformance.harness import require_capability


def test_training_step0_gradients(backend: Any, network: str, dtype: DType) -> None:
    require_capability(backend, "training")
    training.run_check(backend, network, dtype, "step0")


def test_training_trajectory(backend: Any, network: str, dtype: DType) -> None:
    require_capability(backend, "training")
    training.run_check(backend, network, dtype, "trajectory")


def test_training_loss_decreases(backend: Any, network: str, dtype: DType) -> None:
    require_capability(backend, "training")
    training.run_check(backend, network, dtype, "decreases")
