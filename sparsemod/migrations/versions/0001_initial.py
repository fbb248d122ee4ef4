"""The initial schema: searches, trials and one row per fact about a trial.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01

Every constraint is named with ``op.f`` (final): the names follow the store's naming
convention already and must not be run through it a second time.

A migration is a snapshot: the statuses and constraint names are spelled out here rather
than imported from :mod:`sparsemod.store`, so that changing the models later cannot change
what this revision does to an existing database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

SEARCH_STATUSES = ("queued", "running", "cancelling", "cancelled", "done", "failed")
TRIAL_STATUSES = ("running", "completed", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _fact_table(name: str) -> None:
    # (trial_id, name) is the key; without a rowid SQLite stores each row once, in the
    # key's b-tree, instead of a table plus a unique index (about half the bytes).
    op.create_table(
        name,
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name=op.f(f"fk_{name}_trial_id_trials"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("trial_id", "name", name=op.f(f"pk_{name}")),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("problem", sa.String(length=255), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("objectives", sa.Text(), nullable=False),
        sa.Column("ref_point", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("sobol_drawn", sa.Integer(), nullable=False),
        sa.CheckConstraint(_in("status", SEARCH_STATUSES), name=op.f("ck_searches_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_searches")),
    )
    op.create_index(op.f("ix_searches_name"), "searches", ["name"])
    op.create_index(op.f("ix_searches_status"), "searches", ["status"])

    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("parent_index", sa.Integer(), nullable=True),
        sa.Column("morph", sa.Text(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(_in("status", TRIAL_STATUSES), name=op.f("ck_trials_status")),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.id"],
            name=op.f("fk_trials_search_id_searches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trials")),
        sa.UniqueConstraint("search_id", "index", name=op.f("uq_trials_search_id_index")),
    )

    op.create_table(
        "trial_params",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_trial_params_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trial_id", "name", name=op.f("pk_trial_params")),
        sqlite_with_rowid=False,
    )
    _fact_table("trial_metrics")
    _fact_table("trial_predictions")

    op.create_table(
        "models",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("meta", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name=op.f("fk_models_trial_id_trials"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("trial_id", name=op.f("pk_models")),
    )

    op.create_table(
        "histories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=255), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("val_accuracy", sa.Float(), nullable=True),
        sa.Column("sparsity", sa.Float(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.id"],
            name=op.f("fk_histories_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_histories")),
        sa.UniqueConstraint("trial_id", "step", name=op.f("uq_histories_trial_id_step")),
    )


def downgrade() -> None:
    for table in (
        "histories",
        "models",
        "trial_predictions",
        "trial_metrics",
        "trial_params",
        "trials",
    ):
        op.drop_table(table)
    op.drop_index(op.f("ix_searches_status"), table_name="searches")
    op.drop_index(op.f("ix_searches_name"), table_name="searches")
    op.drop_table("searches")
