"""End-to-end training checks: a backend trains the seed networks as the NumPy reference does.

For each network of ``oracle.networks.NETWORKS`` and dtype, from identical initial parameters and
data (rounded to the dtype), the backend's training (capability "training") is compared with the
reference (``oracle.networks.train``, float64, the loss layer from the oracle's derived forms):

* ``step0``: every parameter's gradient at the first step;
* ``trajectory``: the loss and every parameter after each of the first ``Network.follow`` steps;
* ``decreases``: over the whole schedule the backend's loss falls by at least half the reference's
  fall (the reference must itself fall).

Each comparison uses the error model (``conformance.errormodel.compare``) with the network error
scale of ``oracle.networks`` (``docs/error-model.md``, "Networks").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from conformance.backends import Backend, DType, TrainingRun
from conformance.errormodel import K, compare, eps, round_to, underflow
from conformance.harness import ConformanceFailure
from oracle import networks as nets

Array = np.ndarray[Any, Any]

CHECKS = ("step0", "trajectory", "decreases")
#: the dtypes the training checks run in (the network error model is measured there)
DTYPES: tuple[DType, ...] = ("float64", "float32")
#: where the CNN's images come from: None (synthetic) or a CIFAR-10 binary path (``--cifar10``)
SETTINGS: dict[str, Any] = {"cifar10": None}
CNN_IMAGES = 10  # the CNN's batch: one full batch, trained on for the whole schedule
INIT_SEED = 0


@dataclass(frozen=True)
class Setup:
    network: nets.Network
    dtype: DType
    params: dict[str, Array]
    inputs: Array
    target: Array
    lr: float
    source: str


def setup(name: str, dtype: DType, cifar10: str | Path | None = None) -> Setup:
    """The data, initial parameters and learning rate of network ``name`` in ``dtype``, each value
    rounded to the dtype (so the backend and the reference start from the same numbers)."""
    from conformance import datasets

    if name not in nets.NETWORKS:
        raise ValueError(f"network: expected one of {sorted(nets.NETWORKS)}, got {name!r}")
    net = nets.NETWORKS[name]
    target: Array
    if net.build.startswith("seed004"):
        d = datasets.seed004()
        params = {k: d[k] for k in net.shapes()}
        inputs, target = d["x"], d["y"]
        source = (
            "seed 004's x = torch.randn(100, 4) after manual_seed(666), y = torch.rand(100, 1) after "
            "manual_seed(6); its model's parameters when built after "
            f"manual_seed({datasets.SEED004_INIT_SEED}) ({datasets.SEED004.name})"
        )
    elif name == "cnn":
        images = (
            datasets.synthetic_cifar10(CNN_IMAGES, INIT_SEED)
            if cifar10 is None
            else datasets.read_cifar10(cifar10, limit=CNN_IMAGES)
        )
        inputs, target = images.inputs(), images.labels
        params = nets.default_init(net, np.random.default_rng(INIT_SEED))
        source = f"{images.source}; torch's default initialisation drawn with NumPy (seed {INIT_SEED})"
    elif name == "linear_regression":
        inputs = np.array([[1.0], [2.0], [3.0]])
        target = 2.0 * inputs
        params = nets.default_init(net, np.random.default_rng(INIT_SEED))
        source = (
            "seed 001's x = [1, 2, 3], y = 2x; torch's default initialisation drawn with NumPy "
            f"(seed {INIT_SEED})"
        )
    else:  # a network added to the registry without data here
        raise ValueError(f"network {name!r} has no data in conformance.training.setup")
    rounded = {k: round_to(v, dtype) for k, v in params.items()}
    tgt = target if target.dtype.kind in "iu" else round_to(target, dtype)
    return Setup(net, dtype, rounded, round_to(inputs, dtype), tgt, float(round_to(net.lr, dtype)), source)


@dataclass
class Result:
    setup: Setup
    reference: nets.Trajectory
    got: TrainingRun | None
    error: str | None  # the backend raised: what it said


_REFERENCES: dict[tuple[str, str, str | None], tuple[Setup, nets.Trajectory]] = {}
_RESULTS: dict[tuple[int, str, str, str | None], Result] = {}


class ReferenceDiverges(ValueError):
    """The reference itself does not train on the given data (images of a user's --cifar10 on
    which this suite's schedule diverges): no verdict on the backend is possible."""


def reference(s: Setup) -> nets.Trajectory:
    """The oracle's training of ``s``, kept in the derivation cache's directory (keyed by the
    oracle's sources, the network, the schedule, the data and the error model's tolerances): the
    CNN's takes about 1.7 s a dtype."""
    tol, tiny = K * eps(s.dtype), underflow(s.dtype)
    from oracle._compile import load_entry, store_entry

    path = _reference_path(s, tol, tiny)
    t = load_entry(path)
    if not isinstance(t, nets.Trajectory):
        with np.errstate(over="ignore", invalid="ignore"):
            t = nets.train(
                s.network, s.params, s.inputs, s.target, lr=s.lr, steps=s.network.epochs,
                tol=tol, tiny=tiny, analysed=s.network.follow,
            )  # fmt: skip
        store_entry(path, t)
    losses = t.losses
    if not np.all(np.isfinite(losses)) or not all(
        np.all(np.isfinite(p)) for p in t.steps[-1].params.values()
    ):
        raise ReferenceDiverges(
            f"the reference training of {s.network.name} diverges on {s.source} (losses {losses[:2]} … "
            f"{losses[-1]!r}): this suite's schedule (SGD lr {s.network.lr:g}, {s.network.epochs} "
            "steps) was chosen on the synthetic set; no verdict on the backend is possible with these "
            "images"
        )
    return t


def _reference_path(s: Setup, tol: float, tiny: float) -> Path:
    import hashlib

    from oracle._compile import _cache_dir  # (its name hashes the oracle's and the spec's sources)

    h = hashlib.sha256(repr((s.network, s.dtype, s.lr, tol, tiny, np.__version__)).encode())
    for k in sorted(s.params):
        h.update(k.encode())
        h.update(np.ascontiguousarray(s.params[k]).tobytes())
    for a in (s.inputs, s.target):
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return _cache_dir() / "training" / f"{s.network.name}-{s.dtype}-{h.hexdigest()[:20]}.pickle"


def run_backend(backend: Backend, s: Setup) -> TrainingRun:
    """The backend's training of ``s`` (in its worker process for plug-in backends and --impl)."""
    from conformance import harness

    runner = harness.RUNNERS.get(id(backend))
    if runner is not None:
        return runner.train(s, harness.SESSION.get("check"))  # type: ignore[no-any-return]
    loss = backend.loss(s.network.loss)
    if loss is None:
        raise LookupError(f"backend {backend.name} has no {s.network.loss}")
    return backend.train(  # type: ignore[attr-defined,no-any-return]
        s.network, s.params, s.inputs, s.target, loss=loss, dtype=s.dtype, lr=s.lr,
        steps=s.network.epochs, record=s.network.follow,
    )  # fmt: skip


def result(backend: Backend, name: str, dtype: DType) -> Result:
    """The reference (computed once a session) and the backend's training (once per backend) of
    ``name`` in ``dtype``."""
    cifar = SETTINGS.get("cifar10")
    where = None if cifar is None else str(cifar)
    if (name, dtype, where) not in _REFERENCES:
        s = setup(name, dtype, cifar)
        _REFERENCES[name, dtype, where] = (s, reference(s))
    s, ref = _REFERENCES[name, dtype, where]
    key = (id(backend), name, dtype, where)
    if key not in _RESULTS:
        try:
            got, err = run_backend(backend, s), None
        except Exception as e:  # reported by every check of this network, not as a crash
            got, err = None, f"raised {getattr(e, 'kind', type(e).__name__)}: {e}"
        _RESULTS[key] = Result(s, ref, got, err)
    return _RESULTS[key]


class TrainingFailure(ConformanceFailure):
    """A backend that does not train a seed network as the reference does; the message is a
    reproduction."""


def _reproduction(backend: Backend, name: str, dtype: DType, check: str) -> str:
    base, impl = backend, ""
    overrides = getattr(backend, "overrides", {})
    if overrides:
        base = backend.base  # type: ignore[attr-defined]
        refs = {
            k: f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', '?')}"
            for k, f in overrides.items()
        }
        impl = f", impl={refs!r}"
    cifar = SETTINGS.get("cifar10")
    data = "" if cifar is None else f", cifar10={str(cifar)!r}"
    return (
        "from conformance.training import replay\n"
        f"replay({base.name!r}, {name!r}, dtype={dtype!r}, check={check!r}{impl}{data})"
    )


def _fail(backend: Backend, r: Result, check: str, problem: str) -> TrainingFailure:
    s = r.setup
    device = dict(backend.describe()).get("device") or backend.name
    return TrainingFailure(
        f"{s.network.name} does not train as the reference on {backend.name} [{device}], dtype {s.dtype} "
        f"(loss {s.network.loss}, SGD lr {s.network.lr:g}, {s.network.epochs} full-batch steps)\n"
        f"  {problem}\n"
        f"  data and initial parameters: {s.source}\n"
        "  reproduce with (paste into python):\n" + _reproduction(backend, s.network.name, s.dtype, check)
    )


def _grads_ok(
    backend: Backend, r: Result, check: str, got: Mapping[str, Any], step: nets.Step, what: str
) -> None:
    for k, exp in step.grads.items():
        g = got.get(k)
        if g is None:
            raise _fail(backend, r, check, f"{what}: no gradient for parameter {k!r}")
        m = compare(g, exp, exp, exp, step.grad_scales[k], r.setup.dtype, what=f"{what} w.r.t. {k}")
        if m:
            raise _fail(backend, r, check, m.describe())


def run_check(backend: Backend, name: str, dtype: DType, which: str) -> None:
    """Run one training check (``which`` in ``CHECKS``); raises :class:`TrainingFailure` with a
    reproduction where the backend does not train as the reference."""
    if which not in CHECKS:
        raise ValueError(f"check: expected one of {CHECKS}, got {which!r}")
    r = result(backend, name, dtype)
    if r.got is None:
        raise _fail(backend, r, which, r.error or "returned nothing")
    got, ref, net = r.got, r.reference, r.setup.network
    need = net.follow if which != "decreases" else 0
    if len(got.losses) != net.epochs or len(got.grads) < need or len(got.params) < need:
        raise _fail(
            backend, r, which,
            f"returned {len(got.losses)} losses, {len(got.grads)} gradient and {len(got.params)} parameter "
            f"records; expected {net.epochs} losses and {net.follow} of each",
        )  # fmt: skip
    if which == "step0":
        _grads_ok(backend, r, which, got.grads[0], ref.steps[0], "step-0 gradient")
        return
    if which == "trajectory":
        for t in range(net.follow):
            st = ref.steps[t]
            m = compare(
                got.losses[t], st.loss, st.loss, st.loss, st.loss_scale, dtype, what=f"loss at step {t}"
            )
            if m:
                raise _fail(backend, r, which, m.describe())
            _grads_ok(backend, r, which, got.grads[t], st, f"gradient at step {t}")
            for k, exp in st.params.items():
                p = got.params[t].get(k)
                if p is None:
                    raise _fail(backend, r, which, f"parameter {k!r} missing after step {t}")
                m = compare(p, exp, exp, exp, st.param_scales[k], dtype, what=f"{k} after step {t}")
                if m:
                    raise _fail(backend, r, which, m.describe())
        return
    fall = ref.losses[0] - ref.losses[-1]
    if not fall > 0:  # the schedule itself is wrong: a defect of the suite, not of the backend
        raise RuntimeError(f"the reference loss of {name} does not fall over its schedule: {ref.losses}")
    mine = got.losses[0] - got.losses[-1]
    if not mine >= fall / 2:
        how = f"it fell by {mine:.6g}" if mine > 0 else "it rose" if mine <= 0 else "not finite"
        raise _fail(
            backend,
            r,
            which,
            f"the loss went from {got.losses[0]!r} to {got.losses[-1]!r} over {net.epochs} steps ({how}); "
            f"the reference fell from {ref.losses[0]!r} to {ref.losses[-1]!r} ({fall:.6g}), and a "
            f"conforming backend falls by at least half that ({fall / 2:.6g})",
        )


def replay(
    backend: str | Backend,
    network: str,
    *,
    dtype: DType,
    check: str,
    impl: Mapping[str, str] | None = None,
    cifar10: str | None = None,
) -> None:
    """Re-run a reported training check; raises the same :class:`TrainingFailure` while the
    backend still does not conform, prints ``conforms`` otherwise."""
    from conformance.backends import resolve
    from conformance.backends.override import OverrideBackend

    b = resolve(backend) if isinstance(backend, str) else backend
    if impl:
        from conformance import impl as impl_mod

        impls = {k: impl_mod.load(f"{k}={v}", Path.cwd()) for k, v in impl.items()}
        b = OverrideBackend(b, {k: i.fn for k, i in impls.items()}, impls=impls)
    saved = SETTINGS.get("cifar10")
    SETTINGS["cifar10"] = cifar10
    try:
        run_check(b, network, dtype, check)
    finally:
        SETTINGS["cifar10"] = saved
    print(f"conforms: {network} trains as the reference on {b.name}, dtype {dtype}, check {check!r}")


def _worst(
    got: Mapping[str, Any], exp: Mapping[str, Array], scale: Mapping[str, Array], bound: float
) -> tuple[float, float]:
    """The largest error over the tensors, as a multiple of the bound, and relative to each
    tensor's largest element."""
    of_bound = max(float(np.max(np.abs(got[k] - exp[k]) / (bound * scale[k]))) for k in exp)
    rel = max(
        float(np.max(np.abs(got[k] - exp[k]))) / max(float(np.max(np.abs(exp[k]))), 1e-300) for k in exp
    )
    return of_bound, rel


def measure(backend: Backend) -> list[dict[str, Any]]:
    """Per network and dtype: the worst step-0 gradient error of ``backend`` against the reference
    (× the error model's bound, and relative to the gradient's largest element), the worst over
    the followed trajectory (gradients and parameters), and the loss's fall over the schedule."""
    rows: list[dict[str, Any]] = []
    for name in nets.NETWORKS:
        for dtype in DTYPES:
            r = result(backend, name, dtype)
            if r.got is None:
                rows.append({"network": name, "dtype": dtype, "error": r.error})
                continue
            bound = K * eps(dtype)
            s0 = r.reference.steps[0]
            g_bound, g_rel = _worst(r.got.grads[0], s0.grads, s0.grad_scales, bound)
            t_bound = max(
                max(
                    _worst(r.got.grads[t], st.grads, st.grad_scales, bound)[0],
                    _worst(r.got.params[t], st.params, st.param_scales, bound)[0],
                )
                for t, st in enumerate(r.reference.steps[: r.setup.network.follow])
            )
            rows.append({
                "network": name, "dtype": dtype, "step0_of_bound": g_bound, "step0_relative": g_rel,
                "trajectory_of_bound": t_bound, "steps_followed": r.setup.network.follow,
                "loss_fall_reference": r.reference.losses[0] - r.reference.losses[-1],
                "loss_fall_backend": r.got.losses[0] - r.got.losses[-1],
            })  # fmt: skip
    return rows


if __name__ == "__main__":
    import argparse

    from conformance.backends import resolve

    ap = argparse.ArgumentParser(
        prog="python -m conformance.training",
        description="worst training errors of a backend against the reference",
    )
    ap.add_argument("--backend", default="torch-cpu")
    args = ap.parse_args()
    cols = (
        "network",
        "dtype",
        "step 0 × bound",
        "step 0 relative",
        "trajectory × bound",
        "steps",
        "loss fall ref",
        "backend",
    )
    widths = (18, 8, 15, 16, 19, 6, 22, 22)
    print("".join(f"{c:<{w}}" for c, w in zip(cols, widths, strict=True)).rstrip())
    backend = resolve(args.backend)
    for row in measure(backend):
        head = f"{row['network']:<18}{row['dtype']:<8}"
        if "error" in row:
            print(head + str(row["error"]))
            continue
        start = next(
            r for r in [result(resolve(args.backend), row["network"], row["dtype"])]
        ).reference.losses[0]

        def fall(x: float, start: float = start) -> str:
            return f"{x:.4g} ({100 * x / start:.2f} %)"

        cells = (
            f"{row['step0_of_bound']:.3g}", f"{row['step0_relative']:.3g}",
            f"{row['trajectory_of_bound']:.3g}", str(row["steps_followed"]),
            fall(row["loss_fall_reference"]), fall(row["loss_fall_backend"]),
        )  # fmt: skip
        print(head + "".join(f"{c:<{w}}" for c, w in zip(cells, widths[2:], strict=True)).rstrip())
