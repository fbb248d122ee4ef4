"""A trial may be ``stopped``: early stopping on the front ended its training.

Revision ID: 0003_stopped
Revises: 0002_duplicate_of
Create Date: 2026-11-30

The trials' status check gains ``stopped``. SQLite cannot alter a check, so the batch
rebuilds the table, and dropping the old one would cascade to every row that refers to a
trial (params, metrics, histories, models) while the store's foreign keys are on. Those
rows are set aside in temporary tables first and put back after.
"""

from __future__ import annotations

from alembic import op

revision = "0003_stopped"
down_revision = "0002_duplicate_of"
branch_labels = None
depends_on = None

_BEFORE = ("running", "completed", "failed")
_AFTER = (*_BEFORE, "stopped")


def _in(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


def _children(bind) -> list[str]:
    """The tables with a foreign key to ``trials`` (SQLite)."""
    tables = bind.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return [
        name
        for (name,) in tables.fetchall()
        if any(
            fk[2] == "trials" for fk in bind.exec_driver_sql(f'PRAGMA foreign_key_list("{name}")')
        )
    ]


def _check(values: tuple[str, ...]) -> None:
    bind = op.get_bind()
    kept = _children(bind) if bind.dialect.name == "sqlite" else []
    for name in kept:
        bind.exec_driver_sql(f'CREATE TEMP TABLE "keep_{name}" AS SELECT * FROM "{name}"')
    with op.batch_alter_table("trials") as batch:
        batch.drop_constraint(op.f("ck_trials_status"), type_="check")
        batch.create_check_constraint(op.f("ck_trials_status"), _in(values))
    for name in kept:
        bind.exec_driver_sql(f'DELETE FROM "{name}"')  # whatever survived the drop
        bind.exec_driver_sql(f'INSERT INTO "{name}" SELECT * FROM "keep_{name}"')
        bind.exec_driver_sql(f'DROP TABLE "keep_{name}"')


def upgrade() -> None:
    _check(_AFTER)


def downgrade() -> None:
    op.execute("UPDATE trials SET status = 'failed' WHERE status = 'stopped'")
    _check(_BEFORE)
