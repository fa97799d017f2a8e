"""Registers the conformance plugin when the suite runs from a clone (installed, the ``pytest11``
entry point of the same name registers it)."""

pytest_plugins = ["conformance.plugin"]
