"""The :class:`Registry`: every task, pool version and prompt, behind one object.

Notation: ``K`` prompts in the pool, ``L`` virtual tokens per prompt, ``d`` the backbone width.

Example::

    with Registry.open("sqlite:///./dpf-registry/registry.db") as registry:
        for task in registry.tasks():
            print(task.name, task.served_version)
        prompt = registry.prompt("ag_news")  # [L, d], what ag_news serves

Reading needs no torch until a tensor is asked for; every write is one transaction.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from dpf_continual.registry import integrity
from dpf_continual.registry import runs as run_ops
from dpf_continual.registry import tasks as task_ops
from dpf_continual.registry import versions as version_ops
from dpf_continual.registry.artifacts import decode_json, decode_tensors
from dpf_continual.registry.database import Database
from dpf_continual.registry.opening import open_database
from dpf_continual.registry.prompts import StoredPrompt, find_prompt
from dpf_continual.registry.records import (
    AddTaskResult,
    PromptArtifact,
    RegistrySettings,
    RunInfo,
    TaskInfo,
    TaskPromptRecord,
    VersionInfo,
)
from dpf_continual.registry.store import (
    VersionSpec,
    explain_missing_prompt,
    find_task,
    load_artifact,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


class Registry:
    """A task registry bound to one backbone. Use :meth:`open` or :meth:`init` to get one.

    Attributes:
        url: The registry's URL, as given (pass it to other processes to open the same one).
        safe_url: The URL with any password hidden, for messages.
        created: Whether opening it created it.
        settings: The backbone, ``d``, ``L`` and ``τ`` it is bound to.
    """

    def __init__(
        self, url: str, database: Database, settings: RegistrySettings, *, created: bool
    ) -> None:
        self._db = database
        self.url = url
        self.safe_url = database.safe_url
        self.settings = settings
        self.created = created
        self._embeddings = task_ops.EmbeddingIndex()

    # Opening and closing.

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> Registry:
        """Open the registry at ``url``, upgrading an older schema.

        Args:
            url: Any SQLAlchemy URL.
            create: Create a registry with the default settings when there is none.

        Raises:
            RegistryError: Malformed URL, unreachable database, or no registry (and not
                ``create``).
            SchemaVersionError: The registry was written by a newer dpf-continual.
        """
        database, settings, created = open_database(
            url, create_with=RegistrySettings() if create else None
        )
        return cls(url, database, settings, created=created)

    @classmethod
    def init(
        cls,
        url: str,
        *,
        backbone: str,
        hidden_size: int,
        prompt_length: int = 20,
        temperature: float = 0.9,
    ) -> Registry:
        """Create a registry bound to ``backbone``, or open the one there if it has these settings.

        Raises:
            ConfigError: A setting is out of range, or ``L`` or ``τ`` differ from the existing one.
            BackboneMismatchError: A registry exists there for another backbone or width.
        """
        wanted = RegistrySettings(
            backbone=backbone,
            hidden_size=hidden_size,
            prompt_length=prompt_length,
            temperature=temperature,
        )
        database, settings, created = open_database(url, create_with=wanted, require=wanted)
        return cls(url, database, settings, created=created)

    def close(self) -> None:
        """Release the database connections."""
        self._db.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self.safe_url!r}, backbone={self.settings.backbone!r})"

    # Tasks.

    def add_task(
        self,
        *,
        name: str,
        kind: str,
        metric: str,
        domain: str,
        source: str,
        label_names: list[str],
        data_checksum: str,
        embedding: torch.Tensor,
        data: dict[str, list[dict[str, Any]]],
        replace: bool = False,
    ) -> AddTaskResult:
        """Register a task at the end of the stream, with status ``"pending"``.

        The same name with the same checksum changes nothing (``"unchanged"``); with another
        checksum it is an error unless ``replace``, which keeps the task's stream position and old
        prompts and sets it back to ``"pending"``.

        Args:
            embedding: The task embedding ``e_t``, ``[d]``.
            data: Split name -> list of examples ``{"input", "output", "options"}``; stored as
                gzip JSON.

        Raises:
            ConfigError: ``name`` is not a slug.
            BackboneMismatchError: ``embedding`` is not ``[d]``.
            DuplicateTaskError: The name is registered with other data and not ``replace``.
        """
        new = task_ops.prepare_task(
            name=name,
            kind=kind,
            metric=metric,
            domain=domain,
            source=source,
            label_names=label_names,
            data_checksum=data_checksum,
            embedding=embedding,
            data=data,
            hidden_size=self.settings.hidden_size,
        )
        status, _ = self._db.write(lambda session: task_ops.add_task(session, new, replace=replace))
        if status != "unchanged":
            logger.info("task %s %s", name, status)
        return AddTaskResult(status=status, task=self.task(name))

    def tasks(self) -> list[TaskInfo]:
        """Every task, in stream order."""
        with self._db.read() as session:
            return task_ops.task_infos(session)

    def task(self, name: str) -> TaskInfo:
        """The task called ``name``.

        Raises:
            TaskNotFoundError: No such task (the message suggests close names).
        """
        with self._db.read() as session:
            find_task(session, name)
            return task_ops.task_infos(session, [name])[0]

    def pending(self) -> list[TaskInfo]:
        """Tasks registered but not trained yet, in stream order."""
        return [task for task in self.tasks() if task.status == "pending"]

    def task_data(self, name: str) -> dict[str, list[dict[str, Any]]]:
        """The task's splits as stored by :meth:`add_task`."""
        with self._db.read() as session:
            task = find_task(session, name)
            data = load_artifact(session, task.data_sha256, what=f"data of task {name!r}")
        return decode_json(data)

    def task_embedding(self, name: str) -> torch.Tensor:
        """The task embedding ``e_t``, ``[d]`` float32."""
        with self._db.read() as session:
            task = find_task(session, name)
            data = load_artifact(session, task.embedding_sha256, what=f"embedding of task {name!r}")
        return decode_tensors(data)["embedding"]

    def similar(self, name: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` tasks most similar to ``name`` (cosine of embeddings), best first."""
        with self._db.read() as session:
            query = self._embeddings.of_task(session, name)
            return self._embeddings.nearest(session, query, k=k, exclude={name})

    def similar_to(
        self, embedding: torch.Tensor | list[float], k: int = 5, exclude: tuple[str, ...] = ()
    ) -> list[tuple[str, float]]:
        """The ``k`` tasks whose embeddings are closest to ``embedding`` (``[d]``), best first."""
        values = embedding if isinstance(embedding, list) else embedding.float().tolist()
        with self._db.read() as session:
            return self._embeddings.nearest(session, values, k=k, exclude=set(exclude))

    # Versions and prompts.

    def versions(self) -> list[VersionInfo]:
        """Every pool version, oldest first."""
        with self._db.read() as session:
            return version_ops.version_infos(session)

    def latest_version(self) -> VersionInfo | None:
        """The newest pool version, or ``None`` before any training."""
        with self._db.read() as session:
            number = version_ops.latest_number(session)
            return None if number is None else version_ops.version_infos(session, [number])[0]

    def pool_state(self, version: int | None = None) -> dict[str, torch.Tensor]:
        """The trainable state saved with ``version`` (``None``: the newest)."""
        with self._db.read() as session:
            data = version_ops.state_bytes(session, version)
        return decode_tensors(data)

    def prompt(self, name: str, version: VersionSpec = "served") -> torch.Tensor:
        """The fused prompt of ``name``, ``[L, d]`` float32.

        Args:
            version: ``"served"``, ``"latest"`` or a version number.

        Raises:
            TaskNotFoundError: No such task.
            VersionNotFoundError: The task holds no prompt under ``version``.
            IntegrityError: The stored prompt does not match its digest.
        """
        return decode_tensors(self._stored_prompt(name, version).data)["prompt"]

    def task_prompt(self, name: str, version: VersionSpec = "served") -> TaskPromptRecord:
        """The prompt ``[L, d]``, weights ``[K]`` and scores of ``name`` under ``version``."""
        stored = self._stored_prompt(name, version)
        what = f"weights of task {name!r} in pool version {stored.version}"
        with self._db.read() as session:
            weights = load_artifact(session, stored.weights_sha256, what=what)
        return TaskPromptRecord(
            prompt=decode_tensors(stored.data)["prompt"],
            weights=decode_tensors(weights)["weights"],
            dev_score=stored.dev_score,
            test_score=stored.test_score,
            version=stored.version,
        )

    def prompt_artifact(self, name: str, version: VersionSpec = "served") -> PromptArtifact:
        """The stored safetensors bytes of a prompt, for callers that do not want torch."""
        stored = self._stored_prompt(name, version)
        return PromptArtifact(task=name, version=stored.version, data=stored.data)

    def _stored_prompt(self, name: str, version: VersionSpec) -> StoredPrompt:
        with self._db.quick_read() as connection:
            stored = find_prompt(connection, name, version)
        if stored is None:
            # Rare, so a second look to say precisely what is missing is affordable.
            with self._db.read() as session:
                raise explain_missing_prompt(session, name, version)
        return stored

    def rollback(self, name: str, version: int) -> None:
        """Make ``name`` serve its prompt from ``version`` (which must hold one)."""
        self._db.write(lambda session: version_ops.rollback(session, name, version))

    def commit_version(
        self,
        *,
        run_id: int,
        parent: int | None,
        state: dict[str, torch.Tensor],
        prompts: dict[str, TaskPromptRecord],
        trained_task: str,
        reason: str,
        serve_tolerance: float = 0.0,
    ) -> VersionInfo:
        """Write a new pool version after training ``trained_task``, in one transaction.

        Writes the state, one prompt per entry of ``prompts`` (their ``test_score`` become the
        live accuracy-matrix row), marks ``trained_task`` trained and moves serving (see
        :mod:`dpf_continual.registry.versions` for the rule; scores are fractions in ``[0, 1]``).

        Raises:
            TaskNotFoundError: A task in ``prompts`` or ``trained_task`` is not registered.
            BackboneMismatchError: A prompt is not ``[L, d]``.
            ConfigError: Empty state, or scores or ``serve_tolerance`` outside ``[0, 1]``.
            RunNotFoundError: No such run.
        """
        version_ops.check_tolerance(serve_tolerance)
        encoded = version_ops.encode_version(
            state=state, prompts=prompts, trained_task=trained_task, settings=self.settings
        )

        def work(session: Session) -> int:
            return version_ops.commit_version(
                session,
                encoded,
                run_id=run_id,
                parent=parent,
                trained_task=trained_task,
                reason=reason,
                serve_tolerance=serve_tolerance,
                settings=self.settings,
            )

        number = self._db.write(work)
        with self._db.read() as session:
            return version_ops.version_infos(session, [number])[0]

    # Runs.

    def start_run(
        self, *, strategy: str, config: dict[str, Any], seed: int, world_size: int = 1
    ) -> int:
        """Record a run starting now on this host; returns its id."""

        def work(session: Session) -> int:
            run = run_ops.new_run(
                strategy=strategy, config=config, seed=seed, world_size=world_size
            )
            session.add(run)
            session.flush()
            return run.id

        return self._db.write(work)

    def finish_run(self, run_id: int, status: str, timings: dict[str, Any] | None = None) -> None:
        """Record how a run ended: ``"completed"``, ``"interrupted"`` or ``"failed"``."""
        self._db.write(lambda session: run_ops.finish_run(session, run_id, status, timings))

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        with self._db.read() as session:
            return run_ops.run_infos(session)

    def run(self, run_id: int) -> RunInfo:
        """The run with id ``run_id`` (:class:`RunNotFoundError` if none)."""
        with self._db.read() as session:
            return run_ops.run_infos(session, run_id)[0]

    def accuracy_matrix(
        self, run_id: int, kind: str = "live"
    ) -> tuple[list[str], list[list[float | None]]]:
        """The run's ``"live"`` or ``"served"`` accuracy matrix: column names and rows."""
        with self._db.read() as session:
            return run_ops.accuracy_matrix(session, run_id, kind)

    # Health.

    def check_integrity(self) -> list[str]:
        """Every problem found (corrupted or missing artifacts, dangling rows, half versions)."""
        with self._db.read() as session:
            return integrity.check_integrity(session, sqlite=self._db.is_sqlite)
