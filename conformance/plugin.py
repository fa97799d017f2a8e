"""The pytest plugin of the conformance suite: options, profiles, backend check, report header.

Registered as the ``pytest11`` entry point ``conformance.plugin`` (and by the repository's root
``conftest.py`` in a clone). It imports neither torch nor SymPy: the backend is imported only when a
conformance test is collected. In a pytest run that does not collect the suite, the options exist
but nothing else happens. Collecting the suite imports neither either (``conformance/conftest.py``):
the loss names come from ``conformance.catalogue``, the versions of the header from the
distributions' metadata, and torch-cpu answers without torch (torch-cuda imports it, to ask CUDA).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
DEFAULT_BACKEND = "torch-cpu"


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("conformance", "loss conformance suite")
    group.addoption(
        "--conformance-backend",
        dest="conformance_backend",
        default=None,
        metavar="NAME",
        help=f"backend to check: a registered name (torch-cpu, torch-cuda, or an entry point of group "
        f"loss_conformance.backends) or package.module:attribute (default {DEFAULT_BACKEND}); "
        "also spelled --backend when the command line names the suite",
    )
    group.addoption(
        "--conformance-loss",
        dest="conformance_loss",
        default=None,
        metavar="NAME[,NAME...]",
        help="only check these losses (exact torch.nn.functional names); also spelled --loss when the "
        "command line names the suite",
    )
    group.addoption(
        "--conformance-impl",
        dest="conformance_impl",
        action="append",
        default=[],
        metavar="NAME=MOD:ATTR",
        help="replace loss NAME of the backend with package.module:attribute (a function with the "
        "torch.nn.functional signature, or an nn.Module subclass); repeatable; also spelled --impl "
        "when the command line names the suite",
    )
    group.addoption(
        "--conformance-report",
        dest="conformance_report",
        default=None,
        metavar="PATH",
        help="write loss x check x dtype -> outcome, with counterexamples, as Markdown (JSON if PATH ends "
        "in .json); whole under pytest-xdist",
    )
    group.addoption(
        "--conformance-timeout",
        dest="conformance_timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time limit of each call into a plug-in backend or an --impl, which run in a worker process "
        "that is killed on expiry (default 60; 0: none)",
    )
    group.addoption(
        "--conformance-strict",
        dest="conformance_strict",
        action="store_true",
        default=False,
        help="fail an --impl where it gets a case wrong that the backend's own loss also gets wrong "
        "(a known divergence), or where it accepts invalid input the backend rejects; by default the "
        "first is an expected failure naming the divergence, the second advisory (an expected failure)",
    )
    group.addoption(
        "--conformance-cifar10",
        dest="conformance_cifar10",
        default=None,
        metavar="PATH",
        help="train the CNN on the first images of a local CIFAR-10 copy in its binary format (a "
        "cifar-10-batches-bin directory or one .bin file) instead of the synthetic set; also spelled "
        "--cifar10 when the command line names the suite",
    )
    # The short spellings exist only in runs that name the suite, so that a user's own --backend or
    # --loss option (pytest refuses duplicates) keeps working in every other run.
    config = pluginmanager.get_plugin("pytestconfig")
    if config is not None and _targets_suite(config.invocation_params.args, config.invocation_params.dir):
        for short, dest in (
            ("--backend", "conformance_backend"),
            ("--loss", "conformance_loss"),
            ("--impl", "conformance_impl"),
            ("--cifar10", "conformance_cifar10"),
        ):
            extra: dict[str, Any] = (
                {"action": "append", "default": []} if short == "--impl" else {"default": None}
            )
            try:
                group.addoption(short, dest=dest, help=f"short for --conformance-{short[2:]}", **extra)
            except ValueError:  # another plugin owns it: the long spelling still works
                pass


def _targets_suite(args: Sequence[str], invocation_dir: Path) -> bool:
    """Whether a command line names the conformance suite (a path inside it, or ``--pyargs conformance``)."""
    pyargs = "--pyargs" in args
    for arg in args:
        if arg.startswith("-"):
            continue
        path = arg.split("::")[0]
        if pyargs and path.split(".")[0] == "conformance":
            return True
        try:
            p = Path(invocation_dir, path).resolve()
        except OSError:
            continue
        if p == _HERE or _HERE in p.parents:
            return True
    return False


def _active(config: pytest.Config) -> bool:
    """Whether this run collects the conformance suite (so it may import the backend)."""
    if (
        config.getoption("conformance_backend")
        or config.getoption("conformance_loss")
        or config.getoption("conformance_impl")
    ):
        return True
    return _targets_suite([*config.invocation_params.args, *config.args], config.invocation_params.dir)


PROFILES = ("default", "ci", "thorough", "large")


def register_profiles() -> None:
    """Hypothesis profiles: randomised ``default``, derandomised ``ci``, deep ``thorough``, and
    ``large``: the checks at an LLM's sizes alone (``conformance/test_large.py``; fixed draws, so
    derandomised), which no other profile runs.

    No timers (deadline None, ``too_slow`` suppressed: timed checks flake on a loaded machine), no
    example database (each run draws afresh from its seed), and no explain phase (its notes point
    into the suite's and NumPy's own code, not the user's). Hypothesis itself loads ``ci`` when the
    CI environment variable is set.
    """
    from hypothesis import HealthCheck, Phase, settings

    common: dict[str, Any] = dict(
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        print_blob=False,
        phases=[p for p in Phase if p is not Phase.explain],
    )
    settings.register_profile("default", max_examples=20, derandomize=False, **common)
    settings.register_profile("ci", max_examples=20, derandomize=True, **common)
    settings.register_profile("thorough", max_examples=500, derandomize=False, **common)
    settings.register_profile("large", max_examples=20, derandomize=True, **common)
    name = settings.get_current_profile_name()
    settings.load_profile(name if name in PROFILES else "default")


def _check_profile(config: pytest.Config) -> None:
    """``--hypothesis-profile`` names a registered profile, or the run stops with a usage error."""
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    name = config.getoption("hypothesis_profile", None)
    if name is None:
        return
    try:
        settings.get_profile(name)
    except InvalidArgument:
        raise pytest.UsageError(
            f"--hypothesis-profile={name!r}: unknown profile; expected one of {', '.join(PROFILES)} "
            "(or one your own conftest.py registers)"
        ) from None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a check of the loss conformance suite")
    config.addinivalue_line("markers", "conformance_nothing_selected: internal; deselected at collection")
    config.addinivalue_line(
        "markers", "conformance_needs_loss(name, reason): internal; skipped if the backend lacks the loss"
    )
    config._conformance_active = _active(config)  # type: ignore[attr-defined]
    if not config._conformance_active:  # type: ignore[attr-defined]
        return
    register_profiles()
    _check_profile(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_OneSeedPerRun(), "conformance-xdist-seed")
    backend = backend_of(config)  # a requested backend that cannot run here is a usage error, not skips
    selected_losses(config)
    _configure_cifar10(config)
    path = config.getoption("conformance_report")
    if path and not hasattr(config, "workerinput"):  # the xdist controller (or a plain run) writes it
        from conformance.report import Recorder

        recorder = Recorder(Path(config.invocation_params.dir, path), backend)
        config.pluginmanager.register(recorder, "conformance-report")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fix the run's one seed (after Hypothesis has loaded the chosen profile), so that the header
    and every failure print it and ``--hypothesis-seed=<it>`` replays the run. The seed is drawn
    once, by the xdist controller (or a plain run), and handed to every worker; a derandomised
    profile has none; an explicit ``--hypothesis-seed`` is applied by Hypothesis itself."""
    config = session.config
    if not getattr(config, "_conformance_active", False):
        return
    import hypothesis.core
    from hypothesis import settings

    from conformance import harness

    harness.SESSION["profile"] = settings.get_current_profile_name()
    harness.SESSION["strict"] = config.getoption("conformance_strict")
    if _seed(config) is not None or settings().derandomize:
        harness.SESSION["seed"] = _seed(config)
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("conformance_seed") is not None:
        seed = int(workerinput["conformance_seed"])
    else:
        import random

        seed = random.randrange(2**32)
    config._conformance_seed = seed  # type: ignore[attr-defined]
    hypothesis.core.global_force_seed = seed  # type: ignore[attr-defined,assignment]
    harness.SESSION["seed"] = seed


class _OneSeedPerRun:
    """Under pytest-xdist: the controller's seed goes to each worker (else each draws its own)."""

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["conformance_seed"] = getattr(node.config, "_conformance_seed", None)


def backend_of(config: pytest.Config) -> Any:
    """The backend of this run, resolved once; a usage error if it cannot run here."""
    cached = getattr(config, "_conformance_backend", None)
    if cached is not None:
        return cached
    from conformance.backends import BackendError, resolve

    name = config.getoption("conformance_backend") or DEFAULT_BACKEND
    try:
        backend = resolve(name)
    except BackendError as e:
        raise pytest.UsageError(str(e)) from None
    reason = backend.unavailable()
    if reason:
        raise pytest.UsageError(f"--backend={name} cannot run here: {reason}")
    impl_specs = config.getoption("conformance_impl") or []
    if impl_specs:
        from conformance import impl as impl_mod
        from conformance.backends.override import OverrideBackend

        try:
            impls = {i.loss: i for i in (impl_mod.load(s, config.invocation_params.dir) for s in impl_specs)}
        except BackendError as e:
            raise pytest.UsageError(str(e)) from None
        backend = OverrideBackend(backend, {k: i.fn for k, i in impls.items()}, impls=impls)
    config._conformance_backend = backend  # type: ignore[attr-defined]
    from conformance import harness
    from conformance.backends import BACKENDS

    if impl_specs or name not in BACKENDS:  # calls into code not ours run under a time limit
        from conformance.isolate import IsolatedRunner

        harness.RUNNERS[id(backend)] = IsolatedRunner(
            name, impl_specs, str(config.invocation_params.dir), config.getoption("conformance_timeout")
        )

    harness.SESSION.update(backend=backend.name, seed=_seed(config), device=backend.describe().get("device"))
    return backend


def _configure_cifar10(config: pytest.Config) -> None:
    """``--cifar10=PATH``: read it now, so that a missing, truncated or corrupt file is a usage
    error naming the file and the problem, before any check runs."""
    raw = config.getoption("conformance_cifar10")
    if raw is None:
        return
    if not raw.strip():
        raise pytest.UsageError(
            "--cifar10: an empty path (expected a CIFAR-10 .bin file or cifar-10-batches-bin)"
        )
    from conformance import datasets, training

    path = Path(config.invocation_params.dir, raw)
    try:
        images = datasets.read_cifar10(path, limit=training.CNN_IMAGES)
    except datasets.CifarFormatError as e:
        raise pytest.UsageError(f"--cifar10: {e}") from None
    if len(images.labels) < training.CNN_IMAGES:
        raise pytest.UsageError(
            f"--cifar10: {path}: {len(images.labels)} records; the CNN trains on a batch of the first "
            f"{training.CNN_IMAGES} (expected at least {training.CNN_IMAGES})"
        )
    training.SETTINGS["cifar10"] = str(path)


def selected_losses(config: pytest.Config) -> list[str] | None:
    raw = config.getoption("conformance_loss")
    if not raw:
        return None
    from conformance import catalogue

    names = [n.strip() for n in raw.split(",") if n.strip()]
    known = list(catalogue.load().losses)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise pytest.UsageError(f"--loss: unknown loss name(s) {unknown}; expected any of {known}")
    return names


def _seed(config: pytest.Config) -> Any:
    seed = config.getoption("hypothesis_seed", None)
    if seed is None:
        return getattr(config, "_conformance_seed", None)
    return int(seed) if str(seed).isdigit() else seed


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not getattr(config, "_conformance_active", False):
        return None
    from importlib.metadata import version

    import numpy
    from hypothesis import settings

    try:
        backend = backend_of(config)
    except pytest.UsageError:
        return None
    desc = ", ".join(f"{k} {v}" for k, v in backend.describe().items())
    profile = settings.get_current_profile_name()
    seed = _seed(config)
    current = settings()
    derand = current.derandomize
    from conformance.impl import describe

    return [
        f"conformance: backend {backend.name} ({desc}); numpy {numpy.__version__}, sympy {version('sympy')}",
        *describe(getattr(backend, "impls", {})),
        f"conformance: hypothesis profile {profile!r} (max_examples {current.max_examples}, "
        f"{'derandomized' if derand else f'seed {seed}; replay with --hypothesis-seed={seed}'}), "
        f"{_ci()}",
    ]


def _ci() -> str:
    ci = os.environ.get("CI")
    return "CI unset" if ci is None else f"CI={ci!r}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Attach the check's coordinates and a failure's reproduction to the report (for
    --conformance-report)."""
    outcome = yield
    if not getattr(item.config, "_conformance_active", False):
        return
    rep = outcome.get_result()
    message = _conformance_message(call.excinfo.value) if call.excinfo is not None else None
    if message is not None and rep.failed:
        rep.longrepr = message  # the verdict and its reproduction, not the suite's own source
    if not item.config.getoption("conformance_report"):
        return
    from conformance.report import FAILURE, KEY, describe_item

    rep.user_properties.append((KEY, describe_item(item)))
    if message is not None:
        rep.user_properties.append((FAILURE, message))


def _conformance_message(exc: BaseException) -> str | None:
    """The text of a conformance failure (each one, for Hypothesis' group of distinct failures);
    None for anything else (a defect of the suite keeps its traceback)."""
    from conformance.harness import ConformanceFailure

    if isinstance(exc, ConformanceFailure):
        return str(exc)
    if isinstance(exc, BaseExceptionGroup):
        parts = [_conformance_message(e) for e in exc.exceptions]
        if parts and all(p is not None for p in parts):
            n = len(parts)
            return f"{n} distinct failures:\n\n" + "\n\n".join(
                f"({i + 1}/{n}) {p}" for i, p in enumerate(parts)
            )
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A check that found no real failure but failed inside a known divergence of the backend's own
    loss (``harness.guarded``) ends as an expected failure naming it."""
    if not getattr(item.config, "_conformance_active", False):
        return (yield)
    from hypothesis.errors import Unsatisfiable

    from conformance import harness

    def pending() -> Any:
        return harness.SESSION.get("expected_failures", {}).pop(item.nodeid, None)

    try:
        result = yield
    except Unsatisfiable:  # every example was rejected: as expected failures, or known divergences?
        shared = pending()
        rejected = harness.SESSION.get("rejected_by", {}).pop(item.nodeid, None)
        if shared is not None:
            pytest.xfail(shared[1])
        if rejected is not None:
            pytest.xfail(f"every example hit known divergence {rejected.id}: {rejected.reason}")
        raise
    except BaseException:  # a real failure (or a skip) wins over an expected one
        pending()
        harness.SESSION.get("rejected_by", {}).pop(item.nodeid, None)
        raise
    harness.SESSION.get("rejected_by", {}).pop(item.nodeid, None)
    shared = pending()
    if shared is not None:
        pytest.xfail(shared[1])
    return result


def pytest_runtest_setup(item: pytest.Item) -> None:
    if getattr(item.config, "_conformance_active", False):
        from conformance import harness

        harness.SESSION["check"] = item.nodeid


def pytest_unconfigure(config: pytest.Config) -> None:
    if getattr(config, "_conformance_active", False):
        from conformance import harness

        for runner in harness.RUNNERS.values():
            runner.close()
        harness.RUNNERS.clear()
