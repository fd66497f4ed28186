"""``python tests/ops_fault_runner.py run ...``: the mtrec CLI with one fault injected.

``MTREC_TEST_FAULT`` says where the process ends itself, and ``MTREC_TEST_SIGNAL`` how
(``KILL``, the default, or ``TERM``):

* ``stage:NAME:EPOCH`` -- right after the last-epoch checkpoint of epoch EPOCH of stage NAME;
* ``identifier`` -- right after the identifier is fitted and saved, before any stage;
* ``test`` -- when the final test evaluation starts (every stage finished).

A signal the process sends itself is the same signal ``kill -9`` sends: nothing runs after it.
"""

from __future__ import annotations

import os
import signal
import sys

FAULT = os.environ.get("MTREC_TEST_FAULT", "")
SIGNAL = getattr(signal, "SIG" + os.environ.get("MTREC_TEST_SIGNAL", "KILL"))


def die() -> None:
    os.kill(os.getpid(), SIGNAL)
    signal.pause()  # SIGTERM is handled (turned into RunInterrupted) by the engine's sigterm_interrupts


def install() -> None:
    from mtrec import engine, run_context
    from mtrec.training import trainer

    if FAULT.startswith("stage:"):
        name, epoch = FAULT[len("stage:") :].rsplit(":", 1)  # stage names may hold ':' (lora:Arts)
        original = trainer._save_last

        def save_last(path, model, optimizer, stage, state):  # type: ignore[no-untyped-def]
            original(path, model, optimizer, stage, state)
            if stage.name == name and state["epoch"] == int(epoch):
                die()

        trainer._save_last = save_last
    elif FAULT == "identifier":
        original_prepare = engine.prepare_identifier

        def prepare(run):  # type: ignore[no-untyped-def]
            identifier = original_prepare(run)
            die()
            return identifier

        engine.prepare_identifier = prepare
    elif FAULT == "test":
        original_evaluate = run_context.RunContext.evaluate

        def evaluate(self, models, split, domains=None):  # type: ignore[no-untyped-def]
            if split == "test":
                die()
            return original_evaluate(self, models, split, domains)

        run_context.RunContext.evaluate = evaluate


if __name__ == "__main__":
    install()
    from mtrec.cli import main

    main(sys.argv[1:], prog_name="mtrec")
