"""Tests of the project itself (no GPU needed). ``pytester`` drives the conformance plugin end to end.

The project's own Hypothesis tests use the suite's profiles (no deadline, no ``too_slow`` health
check, no example database; ``ci`` derandomised when CI is set); each test sets its own example count.
"""

from conformance.plugin import register_profiles

pytest_plugins = ["pytester"]

register_profiles()


def planted_suite(pytester, monkeypatch, module: str, code: str):  # type: ignore[no-untyped-def]
    """A runner of the conformance suite (in a subprocess, ``pytester``) under the derandomised
    ``ci`` profile, the same examples every run, with ``code`` importable as ``module`` (planted
    kernels for ``--impl``)."""
    monkeypatch.setenv("CI", "1")
    pytester.makepyfile(**{module: code})

    def go(*args: str):  # type: ignore[no-untyped-def]
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pyargs", "conformance", *args)

    return go
