"""registry: carriers, activations, failed checks, flags (the schema `create_all` made before)

Revision ID: 0001
Revises:
Create Date: 2026-11-27 16:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_carriers",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("authority", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "registry_activations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("carrier", "line_id"),
    )
    with op.batch_alter_table("registry_activations", schema=None) as batch_op:
        batch_op.create_index("ix_registry_activations_at", ["at"], unique=False)
        batch_op.create_index("ix_registry_activations_identity", ["identity"], unique=False)
    op.create_table(
        "registry_failed_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("registry_failed_checks", schema=None) as batch_op:
        batch_op.create_index("ix_registry_failed_checks_at", ["at"], unique=False)
        batch_op.create_index("ix_registry_failed_checks_identity", ["identity"], unique=False)
    op.create_table(
        "registry_flags",
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("barred_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("identity"),
    )


def downgrade() -> None:
    op.drop_table("registry_flags")
    op.drop_table("registry_failed_checks")
    op.drop_table("registry_activations")
    op.drop_table("registry_carriers")
