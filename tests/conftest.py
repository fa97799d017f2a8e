"""Tests of the project itself (no GPU needed). ``pytester`` drives the conformance plugin end to end."""

pytest_plugins = ["pytester"]
