"""ORM models of the experiment registry (SQLAlchemy 2, typed ``Mapped[...]``).

The schema itself is owned by the alembic migrations in ``migrations/versions``: these
classes describe the *head* revision and must be kept in step with it (the test suite
compares them).  Never call ``Base.metadata.create_all`` on a registry database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

#: Statuses a run can have; all but ``running`` are terminal (they set ``ended_at``).
STATUSES = ("running", "finished", "failed", "interrupted")
TERMINAL_STATUSES = frozenset({"finished", "failed", "interrupted"})

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored in UTC and always returned timezone-aware (UTC).

    PostgreSQL keeps them in ``timestamptz``; SQLite has no time zones, so they are
    stored as naive UTC there and made aware again on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        if dialect.name == "sqlite":
            value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON, dt.datetime: UTCDateTime}


class Run(Base):
    """One ``mtrec run``: what was run, where, with which config and data, and how it ended."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    recipe: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    host: Mapped[str | None] = mapped_column(String(255))
    device: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    config: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(String(128))
    dataset_name: Mapped[str] = mapped_column(String(200), index=True)
    dataset_spec: Mapped[dict[str, Any]]
    dataset_fingerprint: Mapped[str] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    # revision 0002
    tags: Mapped[list[str] | None] = mapped_column(JSON)
    # revision 0003: the process that started (or last resumed) the run on ``host``
    pid: Mapped[int | None] = mapped_column(Integer)

    components: Mapped[list[Component]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True, order_by="Component.position"
    )
    metrics: Mapped[list[Metric]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True, order_by="Metric.id"
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="run", cascade="all, delete-orphan", passive_deletes=True, order_by="Artifact.id"
    )


class Component(Base):
    """A component a run was built from (a model, a trainer stage, an evaluator, ...)."""

    __tablename__ = "components"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    plugin: Mapped[str | None] = mapped_column(String(200))
    distribution: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(100))

    run: Mapped[Run] = relationship(back_populates="components")


class Metric(Base):
    """One metric value: ``name@k`` on ``split`` for ``domain`` at ``stage``/``step``."""

    __tablename__ = "metrics"
    # revision 0002 replaced the single-column index on run_id with this one
    __table_args__ = (Index("ix_metrics_run_split_domain", "run_id", "split", "domain"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(100))
    split: Mapped[str] = mapped_column(String(50))
    domain: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(50))
    k: Mapped[int | None] = mapped_column(Integer)
    # NULL stands for NaN (SQLite cannot store NaN)
    value: Mapped[float | None] = mapped_column(Float)
    step: Mapped[int | None] = mapped_column(Integer)

    run: Mapped[Run] = relationship(back_populates="metrics")


class Artifact(Base):
    """A file (or folder) a run produced, with its checksum so that reuse can be verified."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_id", "kind", name="uq_artifacts_run_kind"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime]

    run: Mapped[Run] = relationship(back_populates="artifacts")
