"""Initial schema: runs, components, metrics, artifacts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the types used at this revision: never import the live models here.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("recipe", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("device", sa.String(64), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("config_hash", sa.String(128), nullable=False),
        sa.Column("dataset_name", sa.String(200), nullable=False),
        sa.Column("dataset_spec", sa.JSON(), nullable=False),
        sa.Column("dataset_fingerprint", sa.String(128), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_runs_recipe", "runs", ["recipe"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_dataset_name", "runs", ["dataset_name"])

    op.create_table(
        "components",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("plugin", sa.String(200), nullable=True),
        sa.Column("distribution", sa.String(200), nullable=True),
        sa.Column("version", sa.String(100), nullable=True),
    )
    op.create_index("ix_components_run_id", "components", ["run_id"])

    op.create_table(
        "metrics",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("split", sa.String(50), nullable=False),
        sa.Column("domain", sa.String(200), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("k", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
    )
    op.create_index("ix_metrics_run_id", "metrics", ["run_id"])

    op.create_table(
        "artifacts",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("run_id", "kind", name="uq_artifacts_run_kind"),
    )
    op.create_index("ix_artifacts_run_id", "artifacts", ["run_id"])


def downgrade() -> None:
    op.drop_table("artifacts")
    op.drop_table("metrics")
    op.drop_table("components")
    op.drop_table("runs")
