"""The one error model every comparison uses (written out in ``docs/error-model.md``).

For an output computed by the backend in dtype ``T`` from inputs already rounded to ``T``, the
oracle evaluates the same rounded inputs exactly (in float64, with stable forms) and accepts::

    lo - bound <= got <= hi + bound,    bound = K · eps(T) · scale

* ``scale`` is the error scale of ``oracle._errscale`` for this case: the magnitudes of the terms
  the computation combines (never smaller than the result), propagated through the reduction.
* ``eps(T)`` is the dtype's machine epsilon. Each rounded operation in the scale also carries the
  dtype's smallest subnormal (in units of eps), so results and intermediates in the subnormal range
  are covered.
* ``K = 4``: an allowance for elementary functions (exp, log, log1p) accurate to a few ulp, the
  same for every loss, dtype and check.
* ``[lo, hi]``: the value, widened to the other side of any branch (a kink, a clamp, a margin)
  whose condition lies within ``K · eps · scale`` of its boundary.
* NaN is expected exactly where the oracle gives NaN (e.g. ``mean`` over an empty batch).
* Where the exact result overflows ``T`` the expected answer is ±inf; an infinity is also accepted
  where the bound reaches the overflow threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from conformance.backends import DType

K = 4.0

_FINFO: dict[str, tuple[float, float, float]] = {
    # (machine epsilon, largest finite, smallest normal)
    "float64": (2.0**-52, float(np.finfo(np.float64).max), 2.0**-1022),
    "float32": (2.0**-23, float(np.finfo(np.float32).max), 2.0**-126),
    "float16": (2.0**-10, 65504.0, 2.0**-14),
    "bfloat16": (2.0**-7, float.fromhex("0x1.fep127"), 2.0**-126),
}


def eps(dtype: DType) -> float:
    return _FINFO[dtype][0]


def underflow(dtype: DType) -> float:
    """The smallest subnormal of ``dtype`` in units of its epsilon (see ``oracle._errscale``)."""
    return _FINFO[dtype][2]  # the smallest subnormal is tiny · eps


def branch_tol(dtype: DType) -> float:
    """Relative distance (in units of the margin's scale) within which either branch is accepted."""
    return K * eps(dtype)


def round_to(a: Any, dtype: DType) -> np.ndarray[Any, Any]:
    """``a`` rounded to ``dtype`` (to nearest, ties to even), returned as float64."""
    a = np.asarray(a, dtype=np.float64)
    if dtype == "float64":
        return a.copy()
    if dtype == "float32":
        return a.astype(np.float32).astype(np.float64)
    if dtype == "float16":
        with np.errstate(over="ignore"):
            return a.astype(np.float16).astype(np.float64)
    # bfloat16: the top 16 bits of a float32, rounded to nearest even
    with np.errstate(over="ignore"):
        f = np.array(a, dtype=np.float32, order="C")  # (not ascontiguousarray: it makes 0-d arrays 1-d)
    bits = f.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    out = rounded.astype(np.uint32).view(np.float32).astype(np.float64).reshape(a.shape)
    return np.where(np.isnan(a), np.nan, out)


@dataclass(frozen=True)
class Mismatch:
    """The worst element of a failed comparison."""

    index: tuple[int, ...]
    expected: float
    lo: float
    hi: float
    got: float
    bound: float
    count: int
    reason: str
    shape_only: bool = False
    dtype: str = "float64"
    overflow: float = float("inf")  # |exact| beyond which it rounds to ±inf in dtype
    #: the elements outside the bound (None for a shape mismatch)
    outside: Any = None

    def describe(self) -> str:
        """The worst element in words: what was expected, what came back, and why it is wrong."""
        if self.shape_only:
            return self.reason
        head = f"{self.reason}: {self.count} element(s) outside the bound; worst at index {self.index}: "
        got, exp = self.got, self.expected
        if np.isnan(exp):
            return (
                head
                + f"got {got!r} where the oracle's value is NaN (undefined, e.g. a mean over zero weight)"
            )
        rng = f"{exp!r}" if self.lo == self.hi else f"{exp!r} (accepted range [{self.lo!r}, {self.hi!r}])"
        if np.isnan(got):
            kind = "finite" if np.isfinite(exp) else f"{exp!r}"
            return head + f"got NaN where the oracle's value is {kind}: expected {rng}"
        if np.isinf(got) and np.isfinite(exp):
            return head + f"got {got!r} where the oracle's value is finite: expected {rng}"
        if np.isinf(self.lo) or np.isinf(self.hi) or abs(exp) > self.overflow:
            return head + f"got {got!r} where the exact value overflows {self.dtype} (expected ±inf): {rng}"
        return head + (
            f"expected {rng}, got {got!r}, |error| {abs(got - exp):.3e} > bound {self.bound:.3e}"
            f" ({abs(got - exp) / self.bound:.3g} × the bound)"
            if self.bound > 0
            else f"expected {rng}, got {got!r}, |error| {abs(got - exp):.3e} > bound 0 (exact)"
        )


def compare(
    got: Any, expected: Any, lo: Any, hi: Any, scale: Any, dtype: DType, *, what: str, alt: Any = None
) -> Mismatch | None:
    """Check ``got`` against the oracle under the error model; None when it conforms. ``alt``
    (where not NaN) is a value also accepted exactly (0 where an undefined gradient's element
    gradient is 0: see ``oracle.Evaluation.grad_alt``)."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return Mismatch(
            (),
            float("nan"),
            float("nan"),
            float("nan"),
            float("nan"),
            0.0,
            1,
            f"{what}: shape {got.shape}, expected {expected.shape}",
            shape_only=True,
        )
    e, big, _ = _FINFO[dtype]
    lo = np.broadcast_to(np.asarray(lo, np.float64), got.shape)
    hi = np.broadcast_to(np.asarray(hi, np.float64), got.shape)
    with np.errstate(all="ignore"):
        bound = K * e * np.abs(np.asarray(scale, np.float64))
        bound = np.broadcast_to(np.where(np.isfinite(bound), bound, np.inf), got.shape)
        # the exact result rounds to ±inf in this dtype beyond max + half an ulp
        overflow = big * (1 + e / 4)
        lo_r = np.where(lo > overflow, np.inf, np.where(lo < -overflow, -np.inf, lo))
        hi_r = np.where(hi > overflow, np.inf, np.where(hi < -overflow, -np.inf, hi))
        exp_nan = np.isnan(expected)
        finite = np.isfinite(got) & ~exp_nan & (got >= lo_r - bound) & (got <= hi_r + bound)
        nan = np.isnan(got) & exp_nan
        # ±inf exactly where expected, or where the bound reaches the overflow threshold
        inf = ~exp_nan & (
            (np.isposinf(got) & (hi_r + bound >= big)) | (np.isneginf(got) & (lo_r - bound <= -big))
        )
        ok = finite | nan | inf
        if alt is not None:
            alt = np.broadcast_to(np.asarray(alt, np.float64), got.shape)
            ok = ok | (~np.isnan(alt) & (got == alt))
    if ok.all():
        return None
    bad = ~ok
    with np.errstate(all="ignore"):
        err = np.where(bad, np.abs(got - expected) / np.where(bound > 0, bound, 1.0), -1.0)
        err = np.where(np.isnan(err) & bad, np.inf, err)
    worst = np.unravel_index(int(np.argmax(err)), got.shape) if got.ndim else ()
    w = tuple(int(i) for i in worst)
    return Mismatch(
        w,
        float(expected[w]),
        float(lo[w]),
        float(hi[w]),
        float(got[w]),
        float(bound[w]),
        int(bad.sum()),
        what,
        dtype=dtype,
        overflow=float(overflow),
        outside=bad,
    )
