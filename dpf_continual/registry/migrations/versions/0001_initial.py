"""The registry's first schema: settings, artifacts, tasks, runs, versions, prompts, serving.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "registry_settings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("backbone", sa.String(512), nullable=False),
        sa.Column("hidden_size", sa.Integer(), nullable=False),
        sa.Column("prompt_length", sa.Integer(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        _created_at(),
    )
    op.create_table(
        "artifacts",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        _created_at(),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("domain", sa.String(128), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("label_names", sa.JSON(), nullable=False),
        sa.Column("split_sizes", sa.JSON(), nullable=False),
        sa.Column("data_checksum", sa.String(128), nullable=False),
        sa.Column("data_sha256", sa.String(64), sa.ForeignKey("artifacts.sha256"), nullable=False),
        sa.Column(
            "embedding_sha256", sa.String(64), sa.ForeignKey("artifacts.sha256"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("world_size", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=True),
    )
    op.create_table(
        "pool_versions",
        sa.Column("number", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("parent", sa.Integer(), sa.ForeignKey("pool_versions.number"), nullable=True),
        sa.Column("backbone", sa.String(512), nullable=False),
        sa.Column("num_prompts", sa.Integer(), nullable=False),
        sa.Column("prompt_length", sa.Integer(), nullable=False),
        sa.Column("hidden_size", sa.Integer(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("content_hash", sa.String(64), sa.ForeignKey("artifacts.sha256"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=True),
        sa.Column("trained_task_id", sa.Integer(), sa.ForeignKey("tasks.id"), nullable=True),
        _created_at(),
    )
    op.create_table(
        "task_prompts",
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("tasks.id"), primary_key=True),
        sa.Column("version", sa.Integer(), sa.ForeignKey("pool_versions.number"), primary_key=True),
        sa.Column(
            "prompt_sha256", sa.String(64), sa.ForeignKey("artifacts.sha256"), nullable=False
        ),
        sa.Column(
            "weights_sha256", sa.String(64), sa.ForeignKey("artifacts.sha256"), nullable=False
        ),
        sa.Column("dev_score", sa.Float(), nullable=True),
        sa.Column("test_score", sa.Float(), nullable=True),
    )
    op.create_table(
        "serving",
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("tasks.id"), primary_key=True),
        sa.Column("version", sa.Integer(), sa.ForeignKey("pool_versions.number"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("version", sa.Integer(), sa.ForeignKey("pool_versions.number"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("after_task_id", sa.Integer(), sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("eval_task_id", sa.Integer(), sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.UniqueConstraint("version", "kind", "eval_task_id", name="uq_evaluations_cell"),
    )


def downgrade() -> None:
    for table in (
        "evaluations",
        "serving",
        "task_prompts",
        "pool_versions",
        "runs",
        "tasks",
        "artifacts",
        "registry_settings",
    ):
        op.drop_table(table)
