"""Tests of the project itself (no GPU needed). ``pytester`` drives the conformance plugin end to end.

The project's own Hypothesis tests use the suite's profiles (no deadline, no ``too_slow`` health
check, no example database; ``ci`` derandomised when CI is set); each test sets its own example count.
"""

from conformance.plugin import register_profiles

pytest_plugins = ["pytester"]

register_profiles()
