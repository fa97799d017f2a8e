"""What collecting the suite reads of the spec, kept on disk so that collection imports no SymPy.

Parametrising the checks takes each variant's name, properties and conventions, its invalid calls
(``conformance.bad_inputs``) and the known divergences' witnesses (``conformance.divergences``).
Read from the spec, that is SymPy and every loss built, over a second in each pytest process (each
xdist worker too). :func:`load` keeps them as JSON under the oracle's cache directory
(``$LOSS_CONFORMANCE_CACHE`` or ``~/.cache/loss-conformance``), in a file named by a hash of the
sources they are read from (``SOURCES``) and the SymPy version, so it cannot go stale; a missing or
unreadable file is built again from the spec (that process imports it), and an unwritable directory
only means building it in each process.

The checks are parametrised with the records below (``Entry``), which hold what the ids, ``--loss``
and the skip reasons need; ``conformance/conftest.py`` resolves each to the spec's own object
(``Entry.resolve``) when its check runs, so the checks receive ``spec.Variant``, ``BadInput`` and
``Divergence`` as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.backends import DTYPES
from oracle._cachedir import cache_root

if TYPE_CHECKING:
    from conformance.bad_inputs import BadInput
    from conformance.divergences import Divergence
    from spec import Variant

_ROOT = Path(__file__).resolve().parent.parent
#: the sources whose hash names the file: building the catalogue imports these modules of the
#: project and no other (tests/test_startup.py checks it)
SOURCES = (
    "spec/*.py",
    "conformance/__init__.py",
    "conformance/catalogue.py",
    "conformance/bad_inputs.py",
    "conformance/divergences.py",
    "conformance/strategies.py",
    "conformance/errormodel.py",
    "conformance/backends/__init__.py",
)


class Entry:
    """A parameter of a check as collection knows it; ``resolve()`` is what the check receives."""

    def resolve(self) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class VariantEntry(Entry):
    loss: str
    name: str
    key: str
    properties: tuple[str, ...]
    selects: Mapping[str, str]
    #: each convention's name and number of special points
    conventions: tuple[tuple[str, int], ...]
    #: dtype -> the ids of the variant's invalid calls with floats in that dtype
    bad_inputs: Mapping[str, tuple[str, ...]]

    def __repr__(self) -> str:
        return f"<Variant {self.key}>"

    def resolve(self) -> Variant:
        from spec.derive import variant_by_key

        return variant_by_key(self.key)


@dataclass(frozen=True)
class PointEntry(Entry):
    """The arguments of special point ``index`` of the variant's convention number ``convention``."""

    key: str
    convention: int
    index: int

    def resolve(self) -> Mapping[str, float]:
        from spec.derive import variant_by_key

        return variant_by_key(self.key).conventions[self.convention].points[self.index][0]


@dataclass(frozen=True)
class BadInputEntry(Entry):
    key: str
    dtype: str
    id: str

    def __str__(self) -> str:  # as BadInput's (the report's parameters)
        return self.id

    def resolve(self) -> BadInput:
        return _bad_inputs(self.key, self.dtype)[self.id]


@dataclass(frozen=True)
class DivergenceEntry(Entry):
    id: str
    loss: str
    witnesses: int

    def resolve(self) -> Divergence:
        from conformance.divergences import DIVERGENCES

        return next(d for d in DIVERGENCES if d.id == self.id)


@functools.cache
def _bad_inputs(key: str, dtype: Any) -> dict[str, BadInput]:
    from conformance.bad_inputs import bad_inputs
    from spec.derive import variant_by_key

    return {b.id: b for b in bad_inputs(variant_by_key(key), dtype)}


@dataclass(frozen=True)
class Catalogue:
    #: every name --loss takes: the spec's REGISTRY and OTHER_LOSSES
    losses: tuple[str, ...]
    #: ``spec.REDUCTIONS``
    reductions: tuple[str, ...]
    variants: tuple[VariantEntry, ...]
    divergences: tuple[DivergenceEntry, ...]


def build() -> dict[str, Any]:
    """The catalogue's content, read from the spec (imports SymPy), as JSON values."""
    from conformance.bad_inputs import bad_inputs
    from conformance.divergences import DIVERGENCES
    from spec import OTHER_LOSSES, REDUCTIONS, REGISTRY
    from spec.derive import all_variants

    return {
        "losses": sorted({*REGISTRY, *OTHER_LOSSES}),
        "reductions": list(REDUCTIONS),
        "variants": [
            {
                "loss": v.loss,
                "name": v.name,
                "key": v.key,
                "properties": list(v.properties),
                "selects": dict(v.selects),
                "conventions": [[c.name, len(c.points)] for c in v.conventions],
                "bad_inputs": {d: [b.id for b in bad_inputs(v, d)] for d in DTYPES},
            }
            for v in all_variants()
        ],
        "divergences": [{"id": d.id, "loss": d.loss, "witnesses": len(d.witnesses)} for d in DIVERGENCES],
    }


def _decode(raw: Mapping[str, Any]) -> Catalogue:
    return Catalogue(
        losses=tuple(raw["losses"]),
        reductions=tuple(raw["reductions"]),
        variants=tuple(
            VariantEntry(
                loss=v["loss"],
                name=v["name"],
                key=v["key"],
                properties=tuple(v["properties"]),
                selects=dict(v["selects"]),
                conventions=tuple((str(n), int(k)) for n, k in v["conventions"]),
                bad_inputs={d: tuple(ids) for d, ids in v["bad_inputs"].items()},
            )
            for v in raw["variants"]
        ),
        divergences=tuple(
            DivergenceEntry(d["id"], d["loss"], int(d["witnesses"])) for d in raw["divergences"]
        ),
    )


def path() -> Path:
    """The catalogue's file: named by a hash of ``SOURCES`` and the SymPy version."""
    h = hashlib.sha256(version("sympy").encode())
    for pattern in SOURCES:
        for f in sorted(_ROOT.glob(pattern)):
            h.update(f.relative_to(_ROOT).as_posix().encode())
            h.update(f.read_bytes())
    return cache_root() / "catalogue" / f"{h.hexdigest()[:20]}.json"


@functools.cache
def load() -> Catalogue:
    """The catalogue, from its file, or built from the spec (and written) where that is missing or
    unreadable; once per process."""
    file = path()
    try:
        return _decode(json.loads(file.read_text()))
    except Exception:  # any unreadable file is rebuilt
        pass
    raw = build()
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(raw, indent=1))
        tmp.replace(file)  # atomic: concurrent workers never read a partial file
    except OSError:
        pass
    return _decode(raw)
