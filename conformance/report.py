"""``--conformance-report=PATH``: loss × check × dtype → outcome, with each failure's counterexample.

Markdown by default, JSON when PATH ends in ``.json``. The JSON layout::

    {"backend": "torch-cpu",
     "run": {"seed": 1234 | null, "profile": "default", "strict": false,
             "replay": "--hypothesis-seed=1234" | "derandomized",
             "versions": {"torch": "2.13.0+cpu", "device": "cpu", "numpy": ..., "sympy": ...,
                          "hypothesis": ..., "python": ...}},
     "counts": {"passed": 260, "failed": 0, "xfailed": 8, "skipped": 3, ...},
     "implementations": [{"loss": "mse_loss", "impl": "examples.custom_mse:Custom_MSE",
                          "unchecked": {"reduction": "not a parameter of Custom_MSE.__init__"}}],
     "checks": [{"loss": "cross_entropy", "variant": "class_index", "check": "test_gradient",
                 "dtype": "float32", "params": "layout=sliced",          # other parameters, or ""
                 "outcome": "passed" | "failed" | "xfailed" | "xpassed" | "skipped" | "error",
                 "detail": "<skip/xfail reason, or the failure's reproduction>",
                 "nodeid": "<pytest node id>"}, ...]}

Records travel in each test report's ``user_properties``, so the file is whole under pytest-xdist
(written once, by the controller) and pytest's own ``--junitxml`` is untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

KEY = "conformance_case"
FAILURE = "conformance_failure"


def describe_item(item: pytest.Item) -> dict[str, str]:
    """loss / variant / check / dtype / other params of a collected check."""
    cs = getattr(item, "callspec", None)
    params: dict[str, Any] = dict(cs.params) if cs is not None else {}
    v = params.pop("variant", None)
    if v is None and "divergence" in params:
        v_loss, v_name = params.pop("divergence").loss, "default"
    elif v is None and "network" in params:  # a training check: its network's loss, the network
        from oracle.networks import NETWORKS

        net = params.pop("network")
        v_loss, v_name = (NETWORKS[net].loss if net in NETWORKS else ""), f"network {net}"
    else:
        v_loss, v_name = (getattr(v, "loss", ""), getattr(v, "name", "")) if v is not None else ("", "")
    dtype = str(params.pop("dtype", ""))
    params.pop("point", None)
    params.pop("witness", None)
    rest = ", ".join(f"{k}={val}" for k, val in sorted(params.items()))
    return {
        "loss": v_loss,
        "variant": v_name,
        "check": getattr(item, "originalname", item.name),
        "dtype": dtype,
        "params": rest,
        "nodeid": item.nodeid,
    }


def run_facts(backend: Any) -> dict[str, Any]:
    """What a reader of the report alone needs to trust and replay it: seed, profile, versions."""
    import platform

    import hypothesis
    import numpy
    import sympy

    from conformance import harness

    seed = harness.SESSION.get("seed")
    versions = {str(k): str(v) for k, v in dict(backend.describe()).items()}
    versions.update(
        numpy=numpy.__version__, sympy=sympy.__version__, hypothesis=hypothesis.__version__,
        python=platform.python_version(),
    )  # fmt: skip
    return {
        "seed": seed,
        "profile": harness.SESSION.get("profile"),
        "strict": bool(harness.SESSION.get("strict")),
        "replay": f"--hypothesis-seed={seed}" if seed is not None else "derandomized",
        "versions": versions,
    }


class Recorder:
    def __init__(self, path: Path, backend: Any) -> None:
        self.path = path
        self.backend = backend
        self.rows: dict[str, dict[str, str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props: dict[str, Any] = dict(report.user_properties)
        case = props.get(KEY)
        if case is None:
            return
        row = self.rows.setdefault(report.nodeid, {**case, "outcome": "passed", "detail": ""})
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if hasattr(report, "wasxfail"):
                row["outcome"] = "xfailed" if report.skipped else "xpassed"
                row["detail"] = str(report.wasxfail)
            elif report.skipped:
                row["outcome"] = "skipped"
                lr = report.longrepr
                row["detail"] = lr[2] if isinstance(lr, tuple) else str(lr)
            elif report.failed:
                row["outcome"] = "failed" if report.when == "call" else "error"
                row["detail"] = props.get(FAILURE) or report.longreprtext.strip().splitlines()[-1]
        elif report.when == "teardown" and report.failed:
            row["outcome"], row["detail"] = "error", report.longreprtext.strip().splitlines()[-1]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        rows = sorted(
            self.rows.values(), key=lambda r: (r["loss"], r["variant"], r["check"], r["dtype"], r["params"])
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        impls = [
            {"loss": i.loss, "impl": i.ref, "unchecked": dict(i.unchecked)}
            for i in getattr(self.backend, "impls", {}).values()
        ]
        name = getattr(self.backend, "name", "?")
        run = run_facts(self.backend)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
        if self.path.suffix == ".json":
            doc = {"backend": name, "run": run, "counts": counts, "implementations": impls, "checks": rows}
            self.path.write_text(json.dumps(doc, indent=1) + "\n")
            return
        versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items())
        lines = [
            "# Conformance report",
            "",
            f"Backend: `{name}` ({versions})",
            "",
            f"Hypothesis profile `{run['profile']}`, "
            + (
                f"seed {run['seed']} (replay with `{run['replay']}`)"
                if run["seed"] is not None
                else "derandomized"
            )
            + (", strict" if run["strict"] else ""),
            "",
            "Outcomes: "
            + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
            + f" ({len(rows)} checks)",
            "",
        ]
        for i in impls:
            why = "; ".join(f"`{o}` ({r})" for o, r in i["unchecked"].items()) or "none"
            lines += [f"Implementation of `{i['loss']}`: `{i['impl']}`; options left unchecked: {why}", ""]
        lines += ["| loss | check | dtype | params | outcome |", "|---|---|---|---|---|"]
        for r in rows:
            loss = r["loss"] + (f" ({r['variant']})" if r["variant"] not in ("", "default") else "")
            lines.append(f"| {loss} | {r['check']} | {r['dtype']} | {r['params']} | {r['outcome']} |")
        details = [r for r in rows if r["outcome"] in ("failed", "error", "skipped", "xfailed", "xpassed")]
        if details:
            lines += ["", "## Details", ""]
            for r in details:
                lines += [f"### `{r['nodeid']}`: {r['outcome']}", "", "```", r["detail"], "```", ""]
        self.path.write_text("\n".join(lines) + "\n")
