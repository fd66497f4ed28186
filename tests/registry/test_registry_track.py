"""``Registry.track``: how a run ends is recorded, whatever ends it (SIGTERM through the engine's
``sigterm_interrupts``, which owns signal handling)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from mtrec.engine import sigterm_interrupts
from mtrec.registry import RunInterrupted


def _wait_for_signal() -> None:
    # the handler runs between bytecodes of the main thread; give it a few
    for _ in range(200):
        time.sleep(0.01)
    raise AssertionError("SIGTERM did not interrupt the block")


def test_keyboard_interrupt_marks_interrupted(reg, start_kwargs):
    rid = reg.start_run(**start_kwargs())
    with pytest.raises(KeyboardInterrupt):
        with reg.track(rid):
            raise KeyboardInterrupt
    run = reg.get_run(rid)
    assert run["status"] == "interrupted" and run["ended_at"] is not None
    assert "KeyboardInterrupt" in run["error"]


def test_sigterm_marks_interrupted_and_restores_the_handler(reg, start_kwargs):
    calls = []

    def previous(signum, frame):
        calls.append(signum)

    old = signal.signal(signal.SIGTERM, previous)
    try:
        rid = reg.start_run(**start_kwargs())
        with pytest.raises(KeyboardInterrupt) as info:
            with sigterm_interrupts(), reg.track(rid):
                os.kill(os.getpid(), signal.SIGTERM)
                _wait_for_signal()
        assert isinstance(info.value, RunInterrupted)
        assert calls == []  # our handler, not the previous one, ran inside the block
        run = reg.get_run(rid)
        assert run["status"] == "interrupted" and run["ended_at"] is not None
        assert "SIGTERM" in run["error"]

        assert signal.getsignal(signal.SIGTERM) is previous
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            if calls:
                break
            time.sleep(0.01)
        assert calls == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, old)


def test_exception_marks_failed_with_the_error_text(reg, start_kwargs):
    rid = reg.start_run(**start_kwargs())
    with pytest.raises(ValueError, match="the loss is nan"):
        with reg.track(rid):
            raise ValueError("the loss is nan at epoch 3")
    run = reg.get_run(rid)
    assert run["status"] == "failed" and run["ended_at"] is not None
    assert "ValueError: the loss is nan at epoch 3" in run["error"]
    assert "Traceback" in run["error"]


def test_normal_exit_leaves_the_status(reg, start_kwargs):
    rid = reg.start_run(**start_kwargs())
    with reg.track(rid) as tracked:
        assert tracked == rid
    assert reg.get_run(rid)["status"] == "running"

    with reg.track(rid):
        reg.set_status(rid, "finished")
    assert reg.get_run(rid)["status"] == "finished"

    with pytest.raises(SystemExit):
        with reg.track(rid):
            raise SystemExit(0)
    assert reg.get_run(rid)["status"] == "finished"


def test_track_off_the_main_thread(reg, start_kwargs):
    """Off the main thread (where no signal handler could be installed) exceptions are still recorded."""
    rid = reg.start_run(**start_kwargs())
    errors = []

    def work():
        try:
            with reg.track(rid):
                raise RuntimeError("in a thread")
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert len(errors) == 1
    assert reg.get_run(rid)["status"] == "failed"


def test_track_unknown_run(reg):
    from mtrec.registry import RegistryError

    with pytest.raises(RegistryError, match="nope"):
        with reg.track("nope"):
            pass


def test_track_alone_installs_no_signal_handler(reg, start_kwargs):
    """Signals are the engine's: the registry leaves the process's SIGTERM handler alone."""
    before = signal.getsignal(signal.SIGTERM)
    rid = reg.start_run(**start_kwargs())
    with reg.track(rid):
        assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGTERM) is before
