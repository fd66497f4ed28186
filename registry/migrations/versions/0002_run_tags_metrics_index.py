"""Run tags, and a composite index for per-split/per-domain metric look-ups.

* ``runs.tags``: a JSON list of free-form labels (``mtrec runs tag``, ``mtrec runs list
  --tag``).  Existing runs get an empty list.
* ``ix_metrics_run_split_domain`` on ``metrics(run_id, split, domain)`` replaces
  ``ix_metrics_run_id``: ``show``/``compare``/``export`` read one run's test metrics by
  split and domain, and the leading ``run_id`` column still serves every look-up (and
  the ``ON DELETE CASCADE``) the old index served.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("tags", sa.JSON(), nullable=True))
    op.execute(sa.text("UPDATE runs SET tags = '[]'"))
    op.create_index("ix_metrics_run_split_domain", "metrics", ["run_id", "split", "domain"])
    op.drop_index("ix_metrics_run_id", table_name="metrics")


def downgrade() -> None:
    op.create_index("ix_metrics_run_id", "metrics", ["run_id"])
    op.drop_index("ix_metrics_run_split_domain", table_name="metrics")
    op.drop_column("runs", "tags")  # native ALTER TABLE ... DROP COLUMN (SQLite >= 3.35)
