"""registry: (identity, at) and (carrier, store, at) indexes for the status and store queries

The status query counts an identity's rows since a time; with (identity, at) it reads one index
range instead of every row of the identity. The single-column identity index is then redundant.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 16:36:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = ("registry_activations", "registry_failed_checks")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_identity")
            batch_op.create_index(f"ix_{table}_identity_at", ["identity", "at"], unique=False)
            batch_op.create_index(f"ix_{table}_store_at", ["carrier", "store", "at"], unique=False)


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_store_at")
            batch_op.drop_index(f"ix_{table}_identity_at")
            batch_op.create_index(f"ix_{table}_identity", ["identity"], unique=False)
