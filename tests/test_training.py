"""The training checks (``conformance/training.py``) catch wrong backprop, pass torch-cpu, replay what
they report; and their data: seed 004's tensors, the synthetic set, the CIFAR-10 binary reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conformance import datasets, training
from conformance.backends import resolve
from conformance.backends.override import OverrideBackend
from conformance.harness import ConformanceFailure
from oracle.networks import NETWORKS
from tests.planted import mutants, training_mutants

TORCH = resolve("torch-cpu")
ROOT = Path(__file__).resolve().parents[1]


def _impl(loss: str, fn: Any) -> Any:
    return OverrideBackend(TORCH, {loss: fn})


def _mse_no_two() -> Any:
    return _impl("mse_loss", mutants.mse_grad_no_factor_two)


def _ce_doubled() -> Any:
    return _impl("cross_entropy", training_mutants.ce_grad_doubled)


FACTOR, POOL, UPHILL = "loss gradient off by a factor", "max-pool routing to the top-left entry", "SGD uphill"
BIAS, FLIP = "shared bias gradient of its first unit only", "conv with a flipped kernel"

#: (what is planted, the backend with it, the network and check that must catch it)
PLANTS = [
    (FACTOR, _mse_no_two, "mlp", "step0"),
    (FACTOR, _mse_no_two, "linear_regression", "step0"),
    (FACTOR, _ce_doubled, "cnn", "step0"),
    (POOL, lambda: training_mutants.maxpool_top_left, "cnn", "step0"),
    (UPHILL, lambda: training_mutants.sgd_wrong_sign, "linear_regression", "trajectory"),
    (UPHILL, lambda: training_mutants.sgd_wrong_sign, "mlp", "trajectory"),
    (UPHILL, lambda: training_mutants.sgd_wrong_sign, "cnn", "decreases"),
    (BIAS, lambda: training_mutants.shared_bias_first_unit, "mlp", "step0"),
    (BIAS, lambda: training_mutants.shared_bias_first_unit, "mlp_sequential", "step0"),
    (FLIP, lambda: training_mutants.conv_flipped_kernel, "cnn", "step0"),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("plant", "make", "network", "check"), PLANTS, ids=[f"{p[2]}-{p[3]}-{p[0]}" for p in PLANTS]
)
def test_planted_training_bug_is_caught_and_replays(
    plant: str, make: Any, network: str, check: str, dtype: str
) -> None:
    backend = make()
    with pytest.raises(ConformanceFailure) as caught:
        training.run_check(backend, network, dtype, check)  # type: ignore[arg-type]
    message = str(caught.value)
    first = message.splitlines()[0]
    assert first.startswith(f"{network} does not train as the reference on {backend.name}")
    assert f"dtype {dtype}" in first
    code = message.split("reproduce with (paste into python):\n", 1)[1]
    assert code.startswith("from conformance.training import replay\nreplay(")
    if isinstance(backend, OverrideBackend):  # an --impl replays through its module:attribute
        assert "impl={" in code
    training._RESULTS.clear()
    with pytest.raises(ConformanceFailure) as again:
        exec(code, {})
    assert str(again.value).splitlines()[1] == message.splitlines()[1]  # the same problem
    training.run_check(TORCH, network, dtype, check)  # torch-cpu conforms: the failure is the plant's


def test_planted_bugs_leave_other_networks_alone() -> None:
    """Each planted layer bug is specific: a network without that layer still trains correctly."""
    for backend, network in (
        (training_mutants.maxpool_top_left, "mlp"),
        (training_mutants.conv_flipped_kernel, "linear_regression"),
        (training_mutants.shared_bias_first_unit, "cnn"),
    ):
        for check in training.CHECKS:
            training.run_check(backend, network, "float64", check)


def test_a_backend_without_training_skips_with_the_reason() -> None:
    from conformance.backends import missing_capability

    class Plain:
        name = "plain"

    why = missing_capability(Plain(), "training")
    assert why is not None and "has no training capability" in why and "train(network, params" in why


def test_the_two_seed_builds_train_identically_on_torch() -> None:
    """Seed 004 builds its model twice (explicit layers; nn.Sequential blocks): from the same
    parameters torch gives the same trajectory, to the bit."""
    for dtype in ("float64", "float32"):
        a = training.result(TORCH, "mlp", dtype).got  # type: ignore[arg-type]
        b = training.result(TORCH, "mlp_sequential", dtype).got  # type: ignore[arg-type]
        assert a is not None and b is not None
        assert a.losses == b.losses
        for pa, pb in zip(a.params, b.params, strict=True):
            for k in pa:
                np.testing.assert_array_equal(pa[k], pb[k])


def test_seed004_loss_falls_by_well_under_one_percent() -> None:
    """The issue's measurement of the seed MLP, on the reference: it barely trains."""
    ref = training.result(TORCH, "mlp", "float64").reference
    fall = (ref.losses[0] - ref.losses[-1]) / ref.losses[0]
    assert 0 < fall < 0.01


# -- data ----------------------------------------------------------------------------------------


def test_seed004_tensors_are_what_the_seed_makes_with_torch() -> None:
    """The shipped file is what ``python -m conformance.datasets --write-seed004`` writes on this
    torch: the seed's own randn/rand calls and its model's initialisation."""
    made = datasets.make_seed004()["tensors"]
    shipped = json.loads(datasets.SEED004.read_text())["tensors"]
    assert made == shipped
    d = datasets.seed004()
    assert d["x"].shape == (100, 4) and d["y"].shape == (100, 1)
    assert d["linear1.bias"].shape == () and float(d["linear1.bias"]) == 5.5


def test_synthetic_cifar10_is_deterministic_balanced_and_untied() -> None:
    a, b = datasets.synthetic_cifar10(20, 3), datasets.synthetic_cifar10(20, 3)
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.pixels.shape == (20, 3, 32, 32) and a.pixels.dtype == np.uint8
    assert sorted(np.bincount(a.labels).tolist()) == [2] * 10
    assert 0 < a.pixels.min() and a.pixels.max() < 255  # nothing saturates into flat regions
    # no two 5×5 patches of an image are equal, so conv outputs (and max-pool windows) do not tie
    for img in a.pixels[:3]:
        patches = np.lib.stride_tricks.sliding_window_view(img, (3, 5, 5)).reshape(-1, 75)
        assert len(np.unique(patches, axis=0)) == len(patches)


def test_cifar10_binary_round_trip(tmp_path: Path) -> None:
    images = datasets.synthetic_cifar10(12, 1)
    datasets.write_cifar10(tmp_path / "data_batch_1.bin", images)
    back = datasets.read_cifar10(tmp_path / "data_batch_1.bin")
    np.testing.assert_array_equal(back.pixels, images.pixels)
    np.testing.assert_array_equal(back.labels, images.labels)
    # the record layout: 1 label byte, then the red, green and blue planes, rows in order
    raw = (tmp_path / "data_batch_1.bin").read_bytes()
    assert len(raw) == 12 * 3073 and raw[0] == images.labels[0]
    assert raw[1 + 1024 + 32 * 5 + 7] == images.pixels[0, 1, 5, 7]
    # a directory reads its batches in order, and a limit keeps the first records
    datasets.write_cifar10(tmp_path / "test_batch.bin", datasets.synthetic_cifar10(4, 2))
    both = datasets.read_cifar10(tmp_path, limit=14)
    assert len(both.labels) == 14
    np.testing.assert_array_equal(both.pixels[12:], datasets.synthetic_cifar10(4, 2).pixels[:2])


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "empty file (expected records of 3073 bytes)"),
        (
            bytes(3073 * 2 + 5),
            "truncated or not CIFAR-10: 6151 bytes is not a whole number of 3073-byte records "
            "(2 records and 5 bytes over)",
        ),
        (bytes([3, *bytes(3072), 200, *bytes(3072)]), "corrupt: record 1 has label byte 200, expected 0–9"),
    ],
    ids=["empty", "truncated", "bad-label"],
)  # fmt: skip
def test_bad_cifar10_files_are_named_with_the_problem(tmp_path: Path, content: bytes, says: str) -> None:
    f = tmp_path / "data_batch_1.bin"
    f.write_bytes(content)
    with pytest.raises(datasets.CifarFormatError) as e:
        datasets.read_cifar10(f)
    assert str(e.value) == f"{f}: {says}"


def test_missing_cifar10_paths_are_named(tmp_path: Path) -> None:
    with pytest.raises(datasets.CifarFormatError, match="no such file or directory"):
        datasets.read_cifar10(tmp_path / "nowhere")
    with pytest.raises(datasets.CifarFormatError, match="no CIFAR-10 binary files in this directory"):
        datasets.read_cifar10(tmp_path)


def _suite(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "conformance"), "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_suite_trains_the_cnn_on_a_local_cifar10_copy(tmp_path: Path) -> None:
    batches = tmp_path / "cifar-10-batches-bin"
    batches.mkdir()
    datasets.write_cifar10(batches / "data_batch_1.bin", datasets.synthetic_cifar10(10, 7))
    r = _suite(tmp_path, "-k", "training and cnn", f"--cifar10={batches}", "-rA")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "6 passed" in r.stdout
    s = training.setup("cnn", "float64", batches)
    assert "CIFAR-10 records from" in s.source
    np.testing.assert_array_equal(s.inputs, datasets.synthetic_cifar10(10, 7).inputs())


def test_a_corrupt_cifar10_copy_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    f = tmp_path / "data_batch_1.bin"
    f.write_bytes(bytes(100))
    r = _suite(tmp_path, "-k", "training and cnn", f"--cifar10={f}")
    assert r.returncode == 4, r.stdout + r.stderr  # pytest's usage error
    assert f"--cifar10: {f}: truncated or not CIFAR-10: 100 bytes" in r.stderr


@pytest.mark.parametrize(
    ("records", "says"),
    [
        (3, "3 records; the CNN trains on a batch of the first 10 (expected at least 10)"),
        (None, "--cifar10: an empty path"),
    ],
)
def test_too_few_images_or_an_empty_path_is_a_usage_error(
    tmp_path: Path, records: int | None, says: str
) -> None:
    """Found by a user trial: 3 valid records passed start-up, then the reference diverged with a
    NumPy traceback; an empty --cifar10= was silently the synthetic set."""
    arg = "--cifar10="
    if records is not None:
        f = tmp_path / "data_batch_1.bin"
        datasets.write_cifar10(f, datasets.synthetic_cifar10(records, 0))
        arg += str(f)
    r = _suite(tmp_path, "--collect-only", "-k", "training and cnn", arg)
    assert r.returncode == 4, r.stdout + r.stderr
    assert says in r.stderr


def test_a_reference_that_diverges_says_so() -> None:
    """No verdict is possible where the schedule diverges on a user's images: the check says why
    instead of a NumPy overflow (here the synthetic set with the learning rate 50 instead of 0.1)."""
    from dataclasses import replace

    from conformance.training import ReferenceDiverges, reference, setup

    with pytest.raises(ReferenceDiverges, match=r"diverges on synthetic .* no verdict on the backend"):
        reference(replace(setup("cnn", "float64", None), lr=50.0))


def test_networks_are_selected_by_name_and_by_loss(tmp_path: Path) -> None:
    r = _suite(tmp_path, "--collect-only", "-k", "training and mlp")
    ids = [ln for ln in r.stdout.splitlines() if "test_training" in ln]
    assert ids and all("mlp" in ln for ln in ids), r.stdout
    r = _suite(tmp_path, "--collect-only", "--loss", "cross_entropy", "-k", "training")
    ids = [ln for ln in r.stdout.splitlines() if "test_training" in ln]
    assert len(ids) == 6 and all("cnn" in ln for ln in ids), r.stdout
    assert set(NETWORKS) == {"mlp", "mlp_sequential", "cnn", "linear_regression"}


def test_the_reference_is_cached_by_its_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``training.reference`` stores the oracle's trajectory under a key of its inputs and reads it
    back identical; other data is another key (a user's --cifar10 images never read the synthetic
    set's entry)."""
    import dataclasses

    from oracle import networks as nets

    monkeypatch.setattr("oracle._compile._cache_dir", lambda: tmp_path)
    s = training.setup("linear_regression", "float64")
    first = training.reference(s)
    (entry,) = (tmp_path / "training").iterdir()
    again = training.reference(s)
    assert pickle_equal(first, again) and again is not first
    moved = dataclasses.replace(s, inputs=s.inputs + 1.0)
    training.reference(moved)
    assert len(list((tmp_path / "training").iterdir())) == 2
    fresh = nets.train(
        s.network, s.params, s.inputs, s.target, lr=s.lr, steps=s.network.epochs,
        tol=training.K * training.eps(s.dtype), tiny=training.underflow(s.dtype), analysed=s.network.follow,
    )  # fmt: skip
    assert pickle_equal(fresh, again) and entry.exists()


def pickle_equal(a: Any, b: Any) -> bool:
    import pickle

    return pickle.dumps(a) == pickle.dumps(b)
