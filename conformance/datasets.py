"""The training checks' data: the seed MLP's tensors, a synthetic CIFAR-10-shaped set, and a reader
of the real CIFAR-10 binary format for a local copy (``--cifar10=PATH``). Nothing is downloaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

#: seed 004's tensors, made by ``python -m conformance.datasets --write-seed004`` with torch's CPU
#: generator (tests/test_training_data.py checks them against torch where torch is installed)
SEED004 = Path(__file__).with_name("data") / "seed004.json"
#: the seed's initialisation, made explicit: torch.manual_seed(SEED004_INIT_SEED) before building
SEED004_INIT_SEED = 0

RECORD = 1 + 3 * 32 * 32  # one label byte, then 1024 red, 1024 green, 1024 blue pixel bytes
CIFAR10_FILES = ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                 "data_batch_5.bin", "test_batch.bin")  # fmt: skip


@dataclass(frozen=True)
class Images:
    """Images as uint8 (N, 3, 32, 32) and their labels (N,) in 0..9, and where they come from."""

    pixels: Array
    labels: Array
    source: str

    def inputs(self) -> Array:
        """As ``torchvision.transforms.ToTensor`` gives them: float pixels / 255 in [0, 1]."""
        return self.pixels.astype(np.float64) / 255.0


def synthetic_cifar10(n: int = 20, seed: int = 0) -> Images:
    """``n`` CIFAR-10-shaped images with learnable class structure: class ``c`` is a fixed smooth
    colour pattern (random 3×4×4 values blown up to 32×32, then blurred) and each image is its
    class's pattern plus pixel noise, as uint8. Deterministic in ``seed``; no pixel saturates
    (128 ± 50 ± noise of σ 12), and the noise keeps every 5×5 patch distinct, so max-pool windows
    of the network's first layers are not tied."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(-1.0, 1.0, size=(10, 3, 4, 4))
    templates = np.kron(coarse, np.ones((1, 1, 8, 8)))
    kernel = np.ones(5) / 5  # a separable box blur, so the patterns are smooth
    for axis in (2, 3):
        templates = np.apply_along_axis(
            lambda r: np.convolve(np.pad(r, 2, mode="edge"), kernel, "valid"), axis, templates
        )
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    noisy = 128.0 + 50.0 * templates[labels] + rng.normal(0.0, 12.0, size=(n, 3, 32, 32))
    pixels = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return Images(pixels, labels.astype(np.int64), f"synthetic CIFAR-10-shaped images (n={n}, seed={seed})")


class CifarFormatError(ValueError):
    """A CIFAR-10 binary file that cannot be read: names the file and what is wrong."""


def read_cifar10(path: str | Path, limit: int | None = None) -> Images:
    """Records of the CIFAR-10 binary format (``cifar-10-batches-bin``): each 1 label byte (0–9)
    then 3072 pixel bytes (the red, green and blue 32×32 planes, rows in order). ``path`` is one
    such file or a directory holding them (``data_batch_1.bin`` … ``test_batch.bin``, read in that
    order); ``limit`` keeps the first records. Plain bytes: nothing is unpickled."""
    p = Path(path)
    if p.is_dir():
        files = [p / f for f in CIFAR10_FILES if (p / f).is_file()]
        if not files:
            raise CifarFormatError(
                f"{p}: no CIFAR-10 binary files in this directory (expected {', '.join(CIFAR10_FILES)})"
            )
    elif p.exists():
        files = [p]
    else:
        raise CifarFormatError(
            f"{p}: no such file or directory (expected a CIFAR-10 .bin file or cifar-10-batches-bin)"
        )
    pixels, labels = [], []
    got = 0
    for f in files:
        raw = f.read_bytes()
        if not raw:
            raise CifarFormatError(f"{f}: empty file (expected records of {RECORD} bytes)")
        if len(raw) % RECORD:
            raise CifarFormatError(
                f"{f}: truncated or not CIFAR-10: {len(raw)} bytes is not a whole number of {RECORD}-byte "
                f"records ({len(raw) // RECORD} records and {len(raw) % RECORD} bytes over)"
            )
        rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)
        bad = np.flatnonzero(rec[:, 0] > 9)
        if bad.size:
            raise CifarFormatError(
                f"{f}: corrupt: record {int(bad[0])} has label byte {int(rec[bad[0], 0])}, expected 0–9"
            )
        take = rec if limit is None else rec[: max(limit - got, 0)]
        labels.append(take[:, 0].astype(np.int64))
        pixels.append(take[:, 1:].reshape(-1, 3, 32, 32))
        got += len(take)
        if limit is not None and got >= limit:
            break
    return Images(np.concatenate(pixels), np.concatenate(labels), f"CIFAR-10 records from {p}")


def write_cifar10(path: str | Path, images: Images) -> None:
    """Write ``images`` in the CIFAR-10 binary format (for tests and small local sets)."""
    rec = np.concatenate(
        [images.labels.astype(np.uint8)[:, None], images.pixels.reshape(len(images.labels), -1)], axis=1
    )
    Path(path).write_bytes(rec.astype(np.uint8).tobytes())


@cache
def seed004() -> dict[str, Array]:
    """Seed 004's data and initial parameters: ``x`` = torch.randn(100, 4) after
    ``torch.manual_seed(666)``, ``y`` = torch.rand(100, 1) after ``torch.manual_seed(6)``, and the
    parameters its model gets when built after ``torch.manual_seed(SEED004_INIT_SEED)`` (its
    Linear layers' own initialisation, then xavier_normal_ weights, then each bias set to the 0-d
    torch.tensor(5.5)), all float32 values."""
    raw = json.loads(SEED004.read_text())
    return {k: np.asarray(v, dtype=np.float64) for k, v in raw["tensors"].items()}


def make_seed004() -> dict[str, Any]:
    """Seed 004's tensors, by running the seed's own code (needs torch)."""
    import torch
    from torch import nn

    torch.manual_seed(SEED004_INIT_SEED)
    layers = [nn.Linear(4, 3), nn.Linear(3, 2), nn.Linear(2, 1)]  # as the seed's __init__, in order
    for layer in layers:
        nn.init.xavier_normal_(layer.weight)
    for layer in layers:
        layer.bias.data = torch.tensor(5.5, dtype=torch.float32)
    torch.manual_seed(666)
    x = torch.randn(100, 4)
    torch.manual_seed(6)
    y = torch.rand(100, 1)
    tensors = {"x": x, "y": y}
    for i, layer in enumerate(layers, 1):
        tensors[f"linear{i}.weight"] = layer.weight.detach()
        tensors[f"linear{i}.bias"] = layer.bias.detach()
    return {
        "made_by": (
            f"python -m conformance.datasets --write-seed004 (torch {torch.__version__}, CPU generator)"
        ),
        "tensors": {k: v.double().tolist() for k, v in tensors.items()},
    }


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write-seed004", action="store_true", help=f"regenerate {SEED004} with torch")
    args = ap.parse_args()
    if args.write_seed004:
        SEED004.parent.mkdir(exist_ok=True)
        SEED004.write_text(json.dumps(make_seed004(), indent=1) + "\n")
        print(f"wrote {SEED004}")
