"""Indexes for the registry's frequent lookups: prompts by version, matrix cells by run.

Revision ID: 0002_query_indexes
Revises: 0001_initial
Create Date: 2025-01-06
"""

from alembic import op

revision = "0002_query_indexes"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_prompts_version", "task_prompts", ["version"])
    op.create_index("ix_evaluations_run_kind", "evaluations", ["run_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_evaluations_run_kind", table_name="evaluations")
    op.drop_index("ix_task_prompts_version", table_name="task_prompts")
