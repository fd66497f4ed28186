"""Errors of the experiment registry."""

from __future__ import annotations

from mtrec.errors import RunInterrupted, UserError  # RunInterrupted: re-exported

__all__ = ["RegistryError", "RunInterrupted"]


class RegistryError(UserError):
    """The registry cannot be opened, or a run, id prefix or artifact cannot be resolved or verified."""
