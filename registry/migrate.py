"""Schema migrations of the registry, run programmatically (no ``alembic.ini``).

:func:`upgrade` brings a database to the head revision: it creates the schema in an
empty database and upgrades an older one in place.  It never drops or recreates a
database; a database it does not recognise (registry tables without an
``alembic_version`` row, or a revision newer than this mtrec) is an error.

Concurrent first use is safe: on SQLite the migration runs in one ``BEGIN IMMEDIATE``
transaction (SQLite DDL is transactional), on PostgreSQL under a transaction-level
advisory lock, so a second process waits and then finds the schema at head.

Developers add a revision with::

    python -c "from alembic import command; from mtrec.registry.migrate import alembic_config; \
command.revision(alembic_config('sqlite:////tmp/dev.db'), message='...', rev_id='0004')"

and keep :mod:`mtrec.registry.models` in step with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from .errors import RegistryError

if TYPE_CHECKING:  # alembic is imported only when a migration runs: opening stays fast
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection, Engine

#: The revisions in ``migrations/versions``, oldest first; the last is the head.  Kept
#: here so that opening an up-to-date registry needs no alembic (a test checks them).
REVISIONS = ("0001", "0002", "0003")
HEAD = REVISIONS[-1]
VERSION_TABLE = "alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
REGISTRY_TABLES = ("runs", "components", "metrics", "artifacts")
# Any constant will do: it only has to be the same in every process.
_PG_LOCK_KEY = 0x6D747265635F7267  # "mtrec_rg"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An alembic :class:`Config` for the registry migrations (for ``alembic.command``).

    Pass an open ``connection`` (preferred: the caller controls the transaction) or a
    ``url`` for env.py to connect to.
    """
    from alembic.config import Config

    cfg = Config()
    # configparser interpolation: a literal '%' must be doubled
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        cfg.attributes["url"] = url
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    return HEAD


def revisions() -> list[str]:
    """All revision ids, oldest first."""
    return list(REVISIONS)


def script_revisions() -> list[str]:
    """The revision ids of the migration scripts themselves, oldest first (imports alembic)."""
    return [rev.revision for rev in reversed(list(script_directory().walk_revisions()))]


def current_revision(connection: Connection) -> str | None:
    """The revision in the database's ``alembic_version`` table (None: not there or empty)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(versions) > 1:
        raise RegistryError(f"the registry has several schema heads {versions}; it was not made by mtrec")
    return versions[0] if versions else None


def _check(connection: Connection, display_url: str) -> str | None:
    """The current revision, after checking that this database is one we may upgrade."""
    current = current_revision(connection)
    if current is None:
        present = set(inspect(connection).get_table_names()) & set(REGISTRY_TABLES)
        if present:
            raise RegistryError(
                f"the database at {display_url} has tables {', '.join(sorted(present))} but no alembic "
                "version: it was not created by mtrec; refusing to touch it (use another registry URL)"
            )
    elif current not in revisions():
        raise RegistryError(
            f"the registry at {display_url} has schema revision {current!r}, which this mtrec does not know "
            f"(its newest is {head_revision()!r}): it was written by a newer mtrec; upgrade mtrec"
        )
    return current


def upgrade(engine: Engine, display_url: str, target: str = "head") -> bool:
    """Migrate the database behind ``engine`` to ``target``; return whether anything ran."""
    head = head_revision() if target == "head" else target
    # Fast path, without a lock: the usual case is a database already at head.  Nothing is
    # concluded from anything else seen here: another process may be migrating right now
    # (and under READ COMMITTED two statements may see before and after its commit).
    with engine.connect() as conn:
        current = current_revision(conn)
        conn.rollback()
    if current == head:
        return False
    with engine.execution_options(mtrec_sqlite_begin="IMMEDIATE").begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        # Under the lock: whoever migrated before us has committed; check what is there now.
        current = _check(conn, display_url)
        if current == head:
            return False
        from alembic import command

        command.upgrade(alembic_config(connection=conn), target)
    return True
