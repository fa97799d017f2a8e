"""The oracle's disk cache of compiled variants: a cached variant evaluates exactly as a fresh one,
and a corrupt entry is rebuilt rather than trusted."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from oracle import _compile


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOSS_CONFORMANCE_CACHE", str(tmp_path))
    _compile._cache_dir.cache_clear()
    _compile.compiled.cache_clear()
    yield tmp_path
    _compile._cache_dir.cache_clear()
    _compile.compiled.cache_clear()


def _env() -> dict[str, object]:
    x = np.array([[100.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    return {
        "input": x,
        "target": np.array([0, 2]),  # one class index per sample (the batch shape)
        "weight": np.ones(3),
        "_C": 3,
        "ignore_index": np.int64(-100),
        "label_smoothing": np.float64(0.25),
        "_underflow": np.float64(0),
    }


def test_cached_variant_evaluates_identically(fresh_cache: Path) -> None:
    key = "cross_entropy[class_index]"
    built = _compile.compiled(key)
    (entry,) = [p for p in fresh_cache.glob("*/*.pickle") if p.name == f"{key}.pickle"]
    loaded = pickle.loads(entry.read_bytes())
    env = _env()
    for a, b in [(built.value, loaded.value), *zip(built.grads.values(), loaded.grads.values(), strict=True)]:
        assert a.fn.source == b.fn.source
        assert np.array_equal(a.fn(env), b.fn(env)) and np.array_equal(a.scale(env), b.scale(env))


def test_corrupt_entry_is_rebuilt(fresh_cache: Path) -> None:
    key = "mse_loss"
    _compile.compiled(key)
    (entry,) = [p for p in fresh_cache.glob("*/*.pickle") if p.name == f"{key}.pickle"]
    entry.write_bytes(b"not a pickle")
    _compile.compiled.cache_clear()
    again = _compile.compiled(key)
    assert again.variant.key == key
    assert pickle.loads(entry.read_bytes()).variant.key == key  # rewritten whole
