"""The process id of a run, so that a run left ``running`` by a killed process shows as stale.

* ``runs.pid``: the id of the process that started (or last resumed) the run, on
  ``runs.host``.  ``mtrec runs list``/``show`` mark a ``running`` run as *stale* when that
  process is gone from this very host (``kill -9``, out-of-memory killer).  Runs recorded
  before this revision have no pid (NULL) and are never called stale.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("pid", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "pid")  # native ALTER TABLE ... DROP COLUMN (SQLite >= 3.35)
