"""Errors of the experiment registry."""

from __future__ import annotations

from mtrec.errors import UserError


class RegistryError(UserError):
    """The registry cannot be opened, or a run, id prefix or artifact cannot be resolved or verified."""


class RunInterrupted(KeyboardInterrupt):
    """Raised inside :meth:`Registry.track` when the process receives SIGTERM.

    A :class:`KeyboardInterrupt` subclass, so code that already handles Ctrl-C handles a
    ``kill`` the same way.
    """

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
