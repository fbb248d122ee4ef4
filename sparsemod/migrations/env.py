"""Alembic environment of the sparsemod store.

:mod:`sparsemod.store` runs the migrations programmatically and hands its own connection
over in ``config.attributes["connection"]``: that is the only way an in-memory SQLite
database (one connection, no file) can be migrated, and it keeps the store's SQLite
pragmas (foreign keys, WAL, busy timeout) in force while the schema changes. Run from the
``alembic`` command line instead, the environment opens ``sqlalchemy.url`` itself.

Logging is deliberately not configured here (no ``fileConfig``): opening a store must not
print Alembic's INFO lines.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection

from sparsemod.store import Base

config = context.config


def _run(connection: Connection) -> None:
    # Batch mode lets later revisions alter SQLite tables (it has next to no ALTER TABLE).
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    _run(given)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()
