"""Errors a user can act on.

Every error that comes from bad input (a file, a config key, a plugin name) is a
:class:`UserError`.  The CLI prints its message alone and exits with code 2; other
exceptions are bugs and keep their traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message names the file, line or key and what was expected."""

    exit_code = 2


class ConfigError(UserError):
    """A run configuration that cannot be resolved (unknown key, wrong type, bad combination)."""


class DataError(UserError):
    """A dataset file or spec that cannot be read."""

    def __init__(self, message: str, *, path: object | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line


class PluginError(UserError):
    """A plugin or component that is unknown, failed to load, or raised inside a hook."""


class RunInterrupted(KeyboardInterrupt):
    """Raised in a run when the process receives SIGTERM (the engine installs the handler while a
    run goes on): a :class:`KeyboardInterrupt`, so a ``kill`` ends the run as Ctrl-C does --
    recorded ``interrupted``, ``mtrec_on_run_end(status="interrupted")``."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
