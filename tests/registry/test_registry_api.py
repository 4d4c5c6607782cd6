"""The Python API of the registry, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import re

import pytest
import torch

from dpf_continual.errors import (
    BackboneMismatchError,
    ConfigError,
    DuplicateTaskError,
    RegistryError,
    TaskNotFoundError,
    VersionNotFoundError,
)
from dpf_continual.registry import DEFAULT_BACKBONE, Registry, RunNotFoundError


def test_open_without_registry_is_an_error(backend_url):
    with pytest.raises(RegistryError, match=r"^no registry at .+; create one with `dpf-cl init`$"):
        Registry.open(backend_url)


def test_open_with_create_uses_the_defaults(backend_url):
    with Registry.open(backend_url, create=True) as registry:
        assert registry.created
        assert registry.settings.backbone == DEFAULT_BACKBONE
        assert (registry.settings.hidden_size, registry.settings.prompt_length) == (384, 20)
        assert registry.settings.temperature == pytest.approx(0.9)
    with Registry.open(backend_url, create=True) as again:
        assert not again.created


def test_init_twice_with_the_same_settings_is_fine(registry, backend_url):
    again = Registry.init(backend_url, backbone="tiny-test", hidden_size=16, prompt_length=4)
    assert not again.created and again.settings == registry.settings
    again.close()


def test_init_with_another_width_is_a_backbone_mismatch(registry, backend_url):
    message = (
        r"already exists with other settings \(backbone: 'tiny-test' != 'other'; "
        r"hidden_size: 16 != 32\); use it as it is or choose another --registry$"
    )
    with pytest.raises(BackboneMismatchError, match=message):
        Registry.init(backend_url, backbone="other", hidden_size=32, prompt_length=4)


def test_init_with_another_prompt_length_is_a_config_error(registry, backend_url):
    with pytest.raises(ConfigError, match=r"\(prompt_length: 4 != 8\)"):
        Registry.init(backend_url, backbone="tiny-test", hidden_size=16, prompt_length=8)


def test_init_rejects_bad_settings(backend_url):
    with pytest.raises(ConfigError, match=r"^temperature 0.0 must be greater than 0$"):
        Registry.init(backend_url, backbone="b", hidden_size=8, temperature=0.0)
    with pytest.raises(ConfigError, match=r"^hidden_size 0 must be a positive integer$"):
        Registry.init(backend_url, backbone="b", hidden_size=0)


def test_add_task_appends_to_the_stream(registry, add_tasks):
    add_tasks(registry, "ag_news", "imdb", "yelp")
    tasks = registry.tasks()
    assert [(t.name, t.position, t.status) for t in tasks] == [
        ("ag_news", 1, "pending"),
        ("imdb", 2, "pending"),
        ("yelp", 3, "pending"),
    ]
    first = tasks[0]
    assert first.split_sizes == {"train": 3, "dev": 1, "test": 0}
    assert first.label_names == ["no", "yes"] and first.source == "crossfit:ag_news"
    assert first.served_version is None and first.latest_version is None
    assert first.created_at.tzinfo is not None
    assert [t.name for t in registry.pending()] == ["ag_news", "imdb", "yelp"]


def test_add_task_again_is_unchanged_or_a_duplicate(registry, register):
    assert register(registry, "imdb").status == "added"
    assert register(registry, "imdb").status == "unchanged"
    message = (
        r"^task 'imdb' is already registered with other data \(checksum sum-imdb, new other\); "
        r"pass replace=True \(--replace\) to replace it$"
    )
    with pytest.raises(DuplicateTaskError, match=message):
        register(registry, "imdb", checksum="other")


def test_replaced_task_keeps_its_place_and_old_prompts(registry, register, add_tasks, commit):
    add_tasks(registry, "a", "b")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "a", ["a"])
    result = register(registry, "a", checksum="new", replace=True)
    assert result.status == "replaced"
    assert (result.task.position, result.task.status) == (1, "pending")
    assert result.task.data_checksum == "new" and result.task.served_version == 1
    assert registry.prompt("a").shape == (4, 16)


def test_add_task_rejects_bad_names_and_widths(registry, register):
    with pytest.raises(ConfigError, match=r"^task name '\.\./etc' is not a slug"):
        register(registry, "../etc")
    with pytest.raises(ConfigError, match=r"^task name 'a/b' is not a slug"):
        register(registry, "a/b")
    message = (
        r"^embedding of task 'wide' has shape \[32\], expected \[16\] "
        r"\(the registry backbone's width\)$"
    )
    with pytest.raises(BackboneMismatchError, match=message):
        register(registry, "wide", embedding=torch.zeros(32))
    assert registry.tasks() == []


def test_unknown_task_suggests_close_names(registry, add_tasks):
    add_tasks(registry, "ag_news", "imdb")
    expected = r"^task 'ag_nws' is not registered \(did you mean: ag_news\?\)$"
    with pytest.raises(TaskNotFoundError, match=expected):
        registry.task("ag_nws")
    with pytest.raises(TaskNotFoundError, match=r"^task 'zzz' is not registered$"):
        registry.prompt("zzz")


def test_task_data_and_embedding_round_trip(registry, register):
    vector = torch.linspace(-1, 1, 16)
    register(registry, "imdb", embedding=vector)
    data = registry.task_data("imdb")
    assert data["train"][0] == {"input": "imdb 0", "output": "yes", "options": ["no", "yes"]}
    torch.testing.assert_close(registry.task_embedding("imdb"), vector)


def test_similar_ranks_by_cosine(registry, register):
    base = torch.zeros(16)
    base[0] = 1.0
    near, far, opposite = base.clone(), torch.zeros(16), -base
    near[1] = 0.1
    far[2] = 1.0
    for name, vector in (("base", base), ("near", near), ("far", far), ("opposite", opposite)):
        register(registry, name, embedding=vector)
    ranked = registry.similar("base", k=3)
    assert [name for name, _ in ranked] == ["near", "far", "opposite"]
    assert ranked[0][1] == pytest.approx(1 / (1.01**0.5), abs=1e-6)
    assert ranked[2][1] == pytest.approx(-1.0)
    assert registry.similar_to(base, k=1, exclude=("base",))[0][0] == "near"
    with pytest.raises(ConfigError, match=r"^k 0 must be at least 1$"):
        registry.similar("base", k=0)


def test_commit_version_stores_everything(registry, add_tasks, commit, make_prompt):
    add_tasks(registry, "a", "b")
    run = registry.start_run(strategy="dpf", config={"lr": 0.1}, seed=3)
    first = commit(registry, run, "a", ["a"])
    assert (first.number, first.parent, first.tasks, first.trained_task) == (1, None, ["a"], "a")
    assert (first.num_prompts, first.prompt_length, first.hidden_size) == (3, 4, 16)
    assert first.backbone == "tiny-test" and first.run_id == run and first.reason == "trained a"
    second = commit(registry, run, "b", ["a", "b"], parent=1, seed=1)
    assert (second.number, second.parent, second.tasks) == (2, 1, ["a", "b"])
    assert registry.latest_version() == second
    assert [v.number for v in registry.versions()] == [1, 2]
    assert registry.task("b").status == "trained" and registry.pending() == []

    record = registry.task_prompt("b", "latest")
    torch.testing.assert_close(record.prompt, make_prompt(1001).prompt)
    torch.testing.assert_close(record.weights, make_prompt(1001).weights)
    assert (record.version, record.dev_score, record.test_score) == (2, 0.5, 0.5)
    torch.testing.assert_close(registry.prompt("a", 1), make_prompt(0).prompt)
    state = registry.pool_state(1)
    assert set(state) == {"pool", "gate.weight"} and state["pool"].shape == (3, 4, 16)
    assert first.content_hash != second.content_hash and len(first.content_hash) == 64


def test_serving_moves_only_when_dev_does_not_drop(registry, add_tasks, commit):
    add_tasks(registry, "a", "b", "c")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "a", ["a"], scores={"a": (0.80, 0.70)})
    commit(registry, run, "b", ["a", "b"], scores={"a": (0.78, 0.60)}, tolerance=0.01)
    assert registry.task("a").served_version == 1  # dropped 2 points, tolerance 1
    commit(registry, run, "c", ["a", "b", "c"], scores={"a": (0.795, 0.65)}, tolerance=0.01)
    assert registry.task("a").served_version == 3  # within tolerance of version 1's 0.80
    assert registry.task("a").latest_version == 3
    assert registry.task_prompt("a").version == 3

    names, live = registry.accuracy_matrix(run)
    assert names == ["a", "b", "c"]
    assert live == [[0.70, None, None], [0.60, 0.5, None], [0.65, 0.5, 0.5]]
    _, served = registry.accuracy_matrix(run, "served")
    assert served == [[0.70, None, None], [0.70, 0.5, None], [0.65, 0.5, 0.5]]


def test_a_prompt_without_dev_score_does_not_replace_a_scored_one(registry, add_tasks, commit):
    add_tasks(registry, "a", "b")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "a", ["a"], scores={"a": (0.9, 0.9)})
    commit(registry, run, "b", ["a", "b"], scores={"a": (None, None)})
    assert registry.task("a").served_version == 1
    assert registry.task("b").served_version == 2


def test_rollback_moves_serving(registry, add_tasks, commit):
    add_tasks(registry, "a", "b")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "a", ["a"])
    commit(registry, run, "b", ["a", "b"], seed=1)
    assert registry.task("a").served_version == 2
    registry.rollback("a", 1)
    assert registry.task("a").served_version == 1
    torch.testing.assert_close(registry.prompt("a"), registry.prompt("a", 1))
    expected = r"^pool version 1 holds no prompt for task 'b' \(versions with one: 2\)$"
    with pytest.raises(VersionNotFoundError, match=expected):
        registry.rollback("b", 1)
    expected = r"^pool version 7 does not exist \(versions: 1-2\)$"
    with pytest.raises(VersionNotFoundError, match=expected):
        registry.rollback("b", 7)
    expected = r"^version 'latest' is not valid: expected a version number >= 1$"
    with pytest.raises(ConfigError, match=expected):
        registry.rollback("b", "latest")
    assert registry.task("b").served_version == 2


def test_prompt_errors_name_the_task_and_version(registry, add_tasks, commit):
    add_tasks(registry, "a", "b")
    expected = r"^task 'a' has no prompt yet: it has not been trained$"
    with pytest.raises(VersionNotFoundError, match=expected):
        registry.prompt("a")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "a", ["a"])
    expected = r"^pool version 5 does not exist \(versions: 1\)$"
    with pytest.raises(VersionNotFoundError, match=expected):
        registry.prompt("a", 5)
    expected = (
        r"^version 'newest' is not valid: expected 'served', 'latest' or a version number "
        r">= 1$"
    )
    with pytest.raises(ConfigError, match=expected):
        registry.prompt("a", "newest")


def test_commit_version_rejects_bad_input_and_writes_nothing(
    registry, add_tasks, commit, make_prompt
):
    add_tasks(registry, "a")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    with pytest.raises(TaskNotFoundError, match=r"^task 'ghost' is not registered$"):
        commit(registry, run, "a", ["a", "ghost"])
    with pytest.raises(TaskNotFoundError, match=r"^task 'ghost' is not registered$"):
        commit(registry, run, "ghost", ["ghost"])
    with pytest.raises(RunNotFoundError, match=r"^run 99 does not exist \(runs: 1\)$"):
        commit(registry, 99, "a", ["a"])
    expected = r"^pool version 4 does not exist \(versions: none yet\)$"
    with pytest.raises(VersionNotFoundError, match=expected):
        commit(registry, run, "a", ["a"], parent=4)
    expected = r"^dev_score of task 'a' is 87.5: scores are fractions in \[0, 1\]$"
    with pytest.raises(ConfigError, match=expected):
        commit(registry, run, "a", ["a"], scores={"a": (87.5, 0.5)})
    wrong = {"a": make_prompt(0, length=5)}
    message = (
        r"^prompt of task 'a' has shape \[5, 16\], expected \[4, 16\] "
        r"\(\[L, d\] of this registry\)$"
    )
    with pytest.raises(BackboneMismatchError, match=message):
        registry.commit_version(
            run_id=run,
            parent=None,
            state={"x": torch.ones(1)},
            prompts=wrong,
            trained_task="a",
            reason="r",
        )
    nan = make_prompt(0)
    nan.prompt[0, 0] = float("nan")
    with pytest.raises(ConfigError, match=r"^prompt of task 'a' holds NaN or infinite values$"):
        registry.commit_version(
            run_id=run,
            parent=None,
            state={"x": torch.ones(1)},
            prompts={"a": nan},
            trained_task="a",
            reason="r",
        )
    with pytest.raises(ConfigError, match=r"^prompts has no entry for the trained task 'a'$"):
        registry.commit_version(
            run_id=run,
            parent=None,
            state={"x": torch.ones(1)},
            prompts={},
            trained_task="a",
            reason="r",
        )
    expected = (
        r"^serve_tolerance 2.0 is outside \[0, 1\]: scores and the tolerance are fractions "
        r"\(0.01 allows a drop of one point\)$"
    )
    with pytest.raises(ConfigError, match=expected):
        commit(registry, run, "a", ["a"], tolerance=2.0)
    assert registry.versions() == [] and registry.task("a").status == "pending"
    assert registry.check_integrity() == []


def test_pool_state_without_versions(registry):
    with pytest.raises(VersionNotFoundError, match=r"^the registry holds no pool versions yet$"):
        registry.pool_state()


def test_runs_record_start_and_finish(registry):
    run = registry.start_run(strategy="dpf", config={"lr": 0.1}, seed=7, world_size=2)
    info = registry.run(run)
    assert (info.strategy, info.config, info.seed, info.world_size) == ("dpf", {"lr": 0.1}, 7, 2)
    assert info.status == "running" and info.finished_at is None and info.host
    registry.finish_run(run, "completed", {"total_s": 12.5})
    info = registry.run(run)
    assert info.status == "completed" and info.timings == {"total_s": 12.5}
    assert info.finished_at >= info.started_at
    assert [r.id for r in registry.runs()] == [run]
    expected = (
        r"^run status 'done' is not valid: expected one of \['completed', 'interrupted', "
        r"'failed'\]$"
    )
    with pytest.raises(ConfigError, match=expected):
        registry.finish_run(run, "done")
    with pytest.raises(RunNotFoundError, match=r"^run 5 does not exist \(runs: 1\)$"):
        registry.run(5)
    with pytest.raises(ConfigError, match=r"^run config must be JSON-serialisable"):
        registry.start_run(strategy="dpf", config={"bad": object()}, seed=0)


def test_accuracy_matrix_errors(registry):
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    assert registry.accuracy_matrix(run) == ([], [])
    expected = r"^matrix kind 'best' is not valid: expected one of \['live', 'served'\]$"
    with pytest.raises(ConfigError, match=expected):
        registry.accuracy_matrix(run, "best")


def test_healthy_registry_passes_the_check(registry, add_tasks, commit):
    add_tasks(registry, "a", "b")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "a", ["a"])
    commit(registry, run, "b", ["a", "b"], seed=1)
    assert registry.check_integrity() == []
    assert re.match(r"^Registry\('.+', backbone='tiny-test'\)$", repr(registry))
