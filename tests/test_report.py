"""``--conformance-report``: a whole report of loss × check × dtype → outcome, with counterexamples,
also under pytest-xdist, while pytest's own ``--junitxml`` keeps working."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

WRONG = """
import torch


def mse_half(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    return 0.5 * torch.nn.functional.mse_loss(input, target, reduction=reduction, weight=weight)
"""


def test_json_report_is_whole_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(wrong_mse=WRONG)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance", "--loss=mse_loss",
        "--impl=mse_loss=wrong_mse:mse_half", "-n", "2", "-k", "test_value or test_empty_batch",
        "--conformance-report=out/report.json", "--junitxml=out/junit.xml",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    doc = json.loads((pytester.path / "out" / "report.json").read_text())
    assert doc["backend"].startswith("torch-cpu+mse_loss=")
    assert doc["implementations"] == [{"loss": "mse_loss", "impl": "wrong_mse:mse_half", "unchecked": {}}]
    rows = doc["checks"]
    # what a reader of the file alone needs: the seed (or derandomized), profile, versions, counts
    run = doc["run"]
    assert run["profile"] in ("default", "ci") and run["strict"] is False
    assert (run["seed"] is None) == (run["replay"] == "derandomized")
    assert {"torch", "device", "numpy", "sympy", "hypothesis", "python"} <= set(run["versions"])
    assert sum(doc["counts"].values()) == len(rows)
    assert doc["counts"]["failed"] == sum(r["outcome"] == "failed" for r in rows) > 0
    values = [r for r in rows if r["check"] == "test_value"]
    assert sorted(r["dtype"] for r in values) == ["bfloat16", "float16", "float32", "float64"]
    assert {r["outcome"] for r in values} == {"failed"}
    assert all("does not conform" in r["detail"] and "replay(" in r["detail"] for r in values)
    empty = [r for r in rows if r["check"] == "test_empty_batch"]
    assert len(empty) == 3 and all(r["loss"] == "mse_loss" for r in empty)
    junit = ET.parse(pytester.path / "out" / "junit.xml").getroot()
    assert int(junit.find("testsuite").get("tests")) == len(rows)  # type: ignore[union-attr]


def test_markdown_report(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance", "--loss=l1_loss",
        "-k", "empty_batch or divergence", "--conformance-report=report.md",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK
    text = (pytester.path / "report.md").read_text()
    assert "| loss | check | dtype | params | outcome |" in text
    assert "Backend: `torch-cpu` (device cpu, torch 2." in text and "hypothesis 6." in text
    assert "Hypothesis profile `" in text
    assert re.search(r"Outcomes: \d+ passed, \d+ xfailed \(\d+ checks\)", text), text
    assert "| l1_loss | test_empty_batch |  | reduction=mean | passed |" in text
    assert "| l1_loss | test_known_divergence |  |  | xfailed |" in text
    assert "known divergence" in text or "overflows" in text  # the xfail's reason in the details
