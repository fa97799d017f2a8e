"""The loss conformance suite: ``pytest conformance --backend=torch-cpu``.

Its checks compare a backend with the float64 oracle (``oracle``) under one error model
(``conformance.errormodel``). Backends are described in ``conformance.backends``.
"""
