"""The registry's tables as SQLAlchemy 2.x typed ORM models.

Every tensor lives in :class:`Artifact`, a content-addressed store of safetensors bytes keyed by
their SHA-256; other tables point at artifacts by digest. The schema itself is created and changed
only by the Alembic migrations in ``migrations/versions``; a test checks that they agree with the
models here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC; SQLite drops the timezone, so a naive value is taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Base class of the registry's models."""


class Settings(Base):
    """The single row (``id = 1``) saying which backbone, ``d``, ``L`` and ``τ`` this registry uses.

    Writers lock this row for the length of their transaction, which serialises writes on
    servers that support ``SELECT ... FOR UPDATE``.
    """

    __tablename__ = "registry_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    backbone: Mapped[str] = mapped_column(String(512))
    hidden_size: Mapped[int] = mapped_column(Integer)
    prompt_length: Mapped[int] = mapped_column(Integer)
    temperature: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    def __repr__(self) -> str:
        return f"Settings(backbone={self.backbone!r}, d={self.hidden_size}, L={self.prompt_length})"


class Artifact(Base):
    """Bytes of one safetensors file (or gzip JSON for task data), named by their SHA-256."""

    __tablename__ = "artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    def __repr__(self) -> str:
        return f"Artifact({self.sha256[:12]}, kind={self.kind!r}, size={self.size})"


class Task(Base):
    """A registered task and its place in the stream."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    metric: Mapped[str] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(Text)
    label_names: Mapped[list[str]] = mapped_column(JSON)
    split_sizes: Mapped[dict[str, int]] = mapped_column(JSON)
    data_checksum: Mapped[str] = mapped_column(String(128))
    data_sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    embedding_sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    position: Mapped[int] = mapped_column(Integer, unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    def __repr__(self) -> str:
        return f"Task({self.name!r}, position={self.position}, status={self.status!r})"


class Run(Base):
    """One training run (``train-stream``): its configuration, host and outcome."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    strategy: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    seed: Mapped[int] = mapped_column(Integer)
    world_size: Mapped[int] = mapped_column(Integer, default=1)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def __repr__(self) -> str:
        return f"Run(id={self.id}, strategy={self.strategy!r}, status={self.status!r})"


class PoolVersion(Base):
    """A snapshot of the trainable state after training one task.

    ``number`` counts up across the whole registry; ``parent`` is the version training started
    from. ``content_hash`` is the digest of the state artifact.
    """

    __tablename__ = "pool_versions"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    parent: Mapped[int | None] = mapped_column(ForeignKey("pool_versions.number"))
    backbone: Mapped[str] = mapped_column(String(512))
    num_prompts: Mapped[int] = mapped_column(Integer)
    prompt_length: Mapped[int] = mapped_column(Integer)
    hidden_size: Mapped[int] = mapped_column(Integer)
    temperature: Mapped[float] = mapped_column(Float)
    content_hash: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    reason: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    trained_task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    def __repr__(self) -> str:
        return f"PoolVersion({self.number}, parent={self.parent}, K={self.num_prompts})"


class TaskPrompt(Base):
    """One task's fused prompt ``[L, d]`` and scheduling weights ``[K]`` under one version."""

    __tablename__ = "task_prompts"

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    version: Mapped[int] = mapped_column(ForeignKey("pool_versions.number"), primary_key=True)
    prompt_sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    weights_sha256: Mapped[str] = mapped_column(ForeignKey("artifacts.sha256"))
    dev_score: Mapped[float | None] = mapped_column(Float)
    test_score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_task_prompts_version", "version"),)

    def __repr__(self) -> str:
        return f"TaskPrompt(task_id={self.task_id}, version={self.version})"


class Serving(Base):
    """Which version's prompt a task serves."""

    __tablename__ = "serving"

    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    version: Mapped[int] = mapped_column(ForeignKey("pool_versions.number"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    def __repr__(self) -> str:
        return f"Serving(task_id={self.task_id}, version={self.version})"


class Evaluation(Base):
    """One cell of an accuracy matrix: the score on ``eval_task`` after training ``after_task``.

    ``kind`` is ``"live"`` (the module as trained) or ``"served"`` (what users are served).
    """

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    version: Mapped[int] = mapped_column(ForeignKey("pool_versions.number"))
    kind: Mapped[str] = mapped_column(String(16))
    after_task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    eval_task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id"))
    score: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("version", "kind", "eval_task_id", name="uq_evaluations_cell"),
        Index("ix_evaluations_run_kind", "run_id", "kind"),
    )

    def __repr__(self) -> str:
        return f"Evaluation(run={self.run_id}, version={self.version}, kind={self.kind!r})"
