"""A time limit that really ends a hung implementation: plug-in backends and ``--impl`` calls run
in a child process, killed when a call does not return in time.

A hang inside native code cannot be interrupted from the thread that made the call, so every
backend call (tensor creation, the loss, its gradients) of a plug-in backend or of a run with
``--impl`` is made by a worker process (started once, with ``spawn``) and answered through a pipe.
A call that does not return within ``--conformance-timeout`` seconds (60 by default, 0: no limit)
kills the worker and fails that check; the next call starts a new worker. The suite's own work
(drawing cases, the oracle, comparisons) stays in the parent. Within one check, after a hang the
worker is not asked again: Hypothesis's shrinking replays the check many times.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Sequence
from typing import Any

from conformance.backends import Layout
from conformance.strategies import Case


class Hang(RuntimeError):
    """A call that did not return within the time limit (its worker was killed)."""


class RemoteError(RuntimeError):
    """An exception raised by the implementation inside the worker; ``kind`` is its type's name."""

    def __init__(self, kind: str, message: str, bad_result: bool) -> None:
        super().__init__(message)
        self.kind = kind
        self.bad_result = bad_result


def _serve(conn: Any, backend: str, impls: Sequence[str], cwd: str) -> None:
    from pathlib import Path

    from conformance import harness
    from conformance import impl as impl_mod
    from conformance.backends import resolve
    from conformance.backends.override import OverrideBackend

    sys.path.insert(0, cwd)
    b: Any = resolve(backend)
    if impls:
        loaded = {i.loss: i for i in (impl_mod.load(s, Path(cwd)) for s in impls)}
        b = OverrideBackend(b, {k: i.fn for k, i in loaded.items()}, impls=loaded)
    conn.send(("ready",))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        try:
            if msg[0] == "train":  # capability "training": a conformance.training.Setup
                s = msg[1]
                loss = b.loss(s.network.loss)
                if loss is None:
                    raise LookupError(f"backend {b.name} has no {s.network.loss}")
                out = b.train(
                    s.network, s.params, s.inputs, s.target, loss=loss, dtype=s.dtype, lr=s.lr,
                    steps=s.network.epochs, record=s.network.follow,
                )  # fmt: skip
                conn.send(("ok", out))
                continue
            if msg[0] == "second_order":  # capability "second_order"
                from conformance.second_order import double_backward

                _, case, wrt, upstream, directions = msg
                conn.send(("ok", double_backward(b, case, wrt, upstream, directions)))
                continue
            _, case, wrt, upstream, layout = msg
            conn.send(("ok", harness.run(b, case, wrt=wrt, upstream=upstream, layout=layout)))
        except BaseException as e:  # reported to the parent as the check's failure
            conn.send(("err", type(e).__name__, str(e), isinstance(e, harness.BadResult)))


class IsolatedRunner:
    def __init__(self, backend: str, impls: Sequence[str], cwd: str, timeout: float) -> None:
        self.backend, self.impls, self.cwd, self.timeout = backend, list(impls), cwd, timeout
        self.proc: Any = None
        self.conn: Any = None
        self.hung_in: str | None = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.backend, self.impls, self.cwd), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        # importing the backend (torch: seconds) is not the implementation's time
        if not parent.poll(300) or parent.recv() != ("ready",):
            self._kill()
            raise RemoteError("WorkerDied", "the worker process did not start (importing the backend)", False)

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(5)
        self.proc = self.conn = None

    def run(self, case: Case, wrt: Sequence[str], upstream: Any, layout: Layout, check_id: str | None) -> Any:
        return self._call(("run", case, tuple(wrt), upstream, layout), check_id)

    def train(self, setup: Any, check_id: str | None) -> Any:
        """Capability "training" of the worker's backend on a ``conformance.training.Setup``."""
        return self._call(("train", setup), check_id)

    def second_order(
        self, case: Case, wrt: Sequence[str], upstream: Any, directions: Any, check_id: str | None
    ) -> Any:
        """Capability "second_order": ``conformance.second_order.double_backward`` in the worker."""
        return self._call(("second_order", case, tuple(wrt), upstream, dict(directions)), check_id)

    def _call(self, request: tuple[Any, ...], check_id: str | None) -> Any:
        if check_id is not None and self.hung_in == check_id:
            raise Hang(
                f"did not return within {self.timeout:g} s on an earlier example of this check "
                "(its worker was killed); not asked again in this check"
            )
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send(request)
        if not self.conn.poll(self.timeout or None):
            self._kill()
            self.hung_in = check_id
            raise Hang(f"did not return within {self.timeout:g} s (its worker process was killed)")
        try:
            reply = self.conn.recv()
        except EOFError:
            code = self.proc.exitcode if self.proc is not None else None
            self._kill()
            raise RemoteError("WorkerDied", f"the worker process died (exit code {code})", False) from None
        if reply[0] == "ok":
            return reply[1]
        _, kind, message, bad = reply
        raise RemoteError(kind, message, bad)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.proc is not None:
            self.proc.join(1)
            if self.proc.is_alive():
                self._kill()
