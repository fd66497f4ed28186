"""Alembic environment of the mtrec experiment registry.

Run programmatically by :func:`mtrec.registry.migrate.upgrade` (no ``alembic.ini``):
the caller passes an open connection in ``config.attributes["connection"]``.  A URL in
``config.attributes["url"]`` (or the ``sqlalchemy.url`` option) works too, e.g. for
``alembic revision --autogenerate`` while developing.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mtrec.registry.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
