"""A trial may be a duplicate: the index of the earlier trial of the same network.

Revision ID: 0002_duplicate_of
Revises: 0001_initial
Create Date: 2026-11-30

A duplicate (a user's enqueued arm of a network the search trained before) takes the
earlier trial's result without training; ``duplicate_of`` names that trial.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_duplicate_of"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("duplicate_of")
