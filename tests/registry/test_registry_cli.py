"""Every registry command through click's CliRunner, on temporary SQLite files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors import safe_open

from dpf_continual.cli import main


@pytest.fixture
def cli():
    """Factory: run ``dpf-cl`` with the given arguments; returns click's result."""
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(main, [str(arg) for arg in args], env=env, catch_exceptions=False)

    return run


@pytest.fixture
def filled(make_registry, sqlite_url, add_tasks, commit):
    """A registry with tasks ag_news, imdb, yelp; versions 1 (ag_news) and 2 (ag_news, imdb)."""
    registry = make_registry(sqlite_url)
    add_tasks(registry, "ag_news", "imdb", "yelp")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "ag_news", ["ag_news"], scores={"ag_news": (0.9, 0.8)})
    commit(
        registry, run, "imdb", ["ag_news", "imdb"], scores={"ag_news": (0.9, 0.8)}, parent=1, seed=1
    )
    registry.close()
    return sqlite_url


def snapshot(url: str) -> list[str]:
    """Every row of the SQLite registry at ``url``, to show that a command changed nothing."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return list(connection.iterdump())


def error_line(result) -> str:
    """The one line a failed command printed on stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_init_creates_a_default_registry_once(cli, sqlite_url):
    first = cli("init", "--registry", sqlite_url)
    assert first.exit_code == 0
    assert (
        first.stdout.split()
        == (
            f"Created registry {sqlite_url}: backbone sentence-transformers/all-MiniLM-L6-v2, "
            "d=384, L=20, τ=0.9"
        ).split()
    )
    again = cli("init", "--registry", sqlite_url, "--json")
    assert json.loads(again.stdout)["created"] is False


def test_init_reads_the_width_of_a_local_backbone(cli, sqlite_url, tmp_path):
    folder = tmp_path / "t5ish"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"d_model": 48}))
    result = cli(
        "init", "--backbone", folder, "--prompt-length", 8, "--registry", sqlite_url, "--json"
    )
    assert result.exit_code == 0
    settings = json.loads(result.stdout)
    assert (settings["hidden_size"], settings["prompt_length"]) == (48, 8)
    assert settings["created"] is True and settings["backbone"] == str(folder)


def test_init_with_a_backbone_of_another_width_fails(cli, filled, tmp_path):
    before = snapshot(filled)
    folder = tmp_path / "wide"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"hidden_size": 32}))
    result = cli("init", "--backbone", folder, "--prompt-length", 4, "--registry", filled)
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: the registry at {filled} already exists with other settings (backbone: "
        f"'tiny-test' != '{folder}'; hidden_size: 16 != 32); use it as it is or choose another "
        "--registry"
    )
    assert snapshot(filled) == before


def test_init_with_an_unresolvable_backbone_fails(cli, sqlite_url, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("init", "--backbone", empty, "--registry", sqlite_url)
    assert result.exit_code == 1
    assert error_line(result).startswith(
        f"Error: backbone folder '{empty}' has no readable config.json ([Errno 2]"
    )
    result = cli("init", "--backbone", "no such model!", "--registry", sqlite_url)
    assert error_line(result).startswith("Error: cannot resolve backbone 'no such model!': ")
    assert error_line(result).endswith("; give a local folder that holds a config.json")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_tasks_lists_the_stream(cli, filled):
    table = cli("tasks", "--registry", filled)
    assert table.exit_code == 0 and "3 tasks" in table.stdout and "yelp" in table.stdout
    rows = json.loads(cli("tasks", "--registry", filled, "--json").stdout)
    assert [(r["name"], r["position"], r["served_version"]) for r in rows] == [
        ("ag_news", 1, 2),
        ("imdb", 2, 2),
        ("yelp", 3, None),
    ]


def test_tasks_reads_the_registry_from_the_environment(cli, filled):
    result = cli("tasks", "--json", env={"DPF_REGISTRY": filled})
    assert len(json.loads(result.stdout)) == 3


def test_show_describes_one_task(cli, filled):
    shown = json.loads(cli("show", "imdb", "--registry", filled, "--json").stdout)
    assert shown["status"] == "trained" and shown["versions"] == [2]
    assert shown["split_sizes"] == {"train": 3, "dev": 1, "test": 0}
    table = cli("show", "ag_news", "--registry", filled)
    assert "crossfit:ag_news" in table.stdout and "[1, 2]" in table.stdout


def test_versions_lists_every_version(cli, filled):
    rows = json.loads(cli("versions", "--registry", filled, "--json").stdout)
    assert [(r["number"], r["parent"], r["trained_task"], r["tasks"]) for r in rows] == [
        (1, None, "ag_news", ["ag_news"]),
        (2, 1, "imdb", ["ag_news", "imdb"]),
    ]
    assert "2 pool versions" in cli("versions", "--registry", filled).stdout


def test_similar_lists_neighbours(cli, filled):
    rows = json.loads(cli("similar", "imdb", "-k", 2, "--registry", filled, "--json").stdout)
    assert len(rows) == 2 and {r["task"] for r in rows} <= {"ag_news", "yelp"}
    assert rows[0]["cosine"] >= rows[1]["cosine"]
    assert "cosine" in cli("similar", "imdb", "--registry", filled).stdout


def test_prompt_prints_a_summary_or_values(cli, filled):
    summary = cli("prompt", "--task", "ag_news", "--registry", filled)
    assert summary.exit_code == 0 and "[4, 16]" in summary.stdout
    values = json.loads(
        cli("prompt", "--task", "ag_news", "--version", 1, "--registry", filled, "--json").stdout
    )
    assert (values["task"], values["version"], values["shape"]) == ("ag_news", 1, [4, 16])
    assert len(values["values"]) == 4 and len(values["values"][0]) == 16


def test_prompt_out_writes_a_safetensors_file(cli, filled, tmp_path):
    import torch

    from dpf_continual.registry import Registry

    out = tmp_path / "ag_news.safetensors"
    result = cli(
        "prompt", "--task", "ag_news", "--version", "latest", "--out", out, "--registry", filled
    )
    assert result.exit_code == 0
    assert result.stdout.split() == f"Wrote the prompt of ag_news (version 2) to {out}".split()
    with safe_open(str(out), "pt") as handle:
        assert list(handle.keys()) == ["prompt"]
        assert handle.metadata() == {
            "task": "ag_news",
            "version": "2",
            "backbone": "tiny-test",
            "shape": "[4, 16]",
        }
        with Registry.open(filled) as registry:
            assert torch.equal(handle.get_tensor("prompt"), registry.prompt("ag_news", 2))


def test_prompt_out_to_a_missing_folder_fails_cleanly(cli, filled, tmp_path):
    out = tmp_path / "no" / "such" / "p.safetensors"
    result = cli("prompt", "--task", "imdb", "--out", out, "--registry", filled)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: cannot write --out '{out}': No such file or directory"


def test_prompt_peft_format_needs_out(cli, filled):
    result = cli("prompt", "--task", "ag_news", "--format", "peft", "--registry", filled)
    assert result.exit_code == 2 and "--format peft needs --out DIR" in result.stderr


def test_rollback_changes_the_served_version(cli, filled):
    result = cli("rollback", "--task", "ag_news", "--version", 1, "--registry", filled, "--json")
    assert json.loads(result.stdout) == {"task": "ag_news", "served_before": 2, "served": 1}
    shown = json.loads(cli("show", "ag_news", "--registry", filled, "--json").stdout)
    assert shown["served_version"] == 1
    table = cli("rollback", "--task", "ag_news", "--version", 2, "--registry", filled)
    assert table.stdout.split() == "Task ag_news now serves version 2 (was 1).".split()


def test_check_reports_a_sound_registry(cli, filled):
    assert json.loads(cli("check", "--registry", filled, "--json").stdout) == {
        "ok": True,
        "problems": [],
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "ag_nws"], "Error: task 'ag_nws' is not registered (did you mean: ag_news?)"),
        (
            ["prompt", "--task", "imdb", "--version", "1"],
            "Error: pool version 1 holds no prompt for task 'imdb' (versions with one: 2)",
        ),
        (
            ["prompt", "--task", "yelp"],
            "Error: task 'yelp' has no prompt yet: it has not been trained",
        ),
        (
            ["prompt", "--task", "imdb", "--version", "9"],
            "Error: pool version 9 does not exist (versions: 1-2)",
        ),
        (
            ["rollback", "--task", "imdb", "--version", "1"],
            "Error: pool version 1 holds no prompt for task 'imdb' (versions with one: 2)",
        ),
        (
            ["similar", "../etc"],
            "Error: task name '../etc' is not a slug: expected 1-128 characters of a-z, 0-9, '_', "
            "'-', '.' starting with a letter or digit, and no '..'",
        ),
        (
            ["show", "a/b"],
            "Error: task name 'a/b' is not a slug: expected 1-128 characters of a-z, 0-9, '_', "
            "'-', '.' starting with a letter or digit, and no '..'",
        ),
    ],
)
def test_bad_input_gets_one_line_and_changes_nothing(cli, filled, args, message):
    before = snapshot(filled)
    result = cli(*args, "--registry", filled)
    assert result.exit_code == 1
    assert error_line(result) == message
    assert snapshot(filled) == before


def test_a_bad_version_is_a_usage_error(cli, filled):
    result = cli("prompt", "--task", "imdb", "--version", "newest", "--registry", filled)
    assert result.exit_code == 2
    assert "'newest' is not 'served', 'latest' or a version number >= 1" in result.stderr


def test_missing_and_malformed_registries(cli, tmp_path):
    missing = f"sqlite:///{tmp_path / 'none' / 'registry.db'}"
    result = cli("tasks", "--registry", missing)
    assert result.exit_code == 1
    assert error_line(result) == f"Error: no registry at {missing}; create one with `dpf-cl init`"
    assert not (tmp_path / "none").exists()
    result = cli("versions", "--registry", "not a url")
    assert error_line(result) == (
        "Error: malformed registry URL 'not a url': expected a SQLAlchemy URL such as "
        "sqlite:///path/to/registry.db or postgresql+psycopg://user@host/dbname"
    )
    result = cli("versions", "--registry", "nosuchdb://host/x")
    assert error_line(result) == (
        "Error: malformed registry URL 'nosuchdb://host/x': unknown database kind 'nosuchdb'; "
        "use sqlite:///... or postgresql+psycopg://..."
    )


def test_a_corrupted_prompt_is_named(cli, filled):
    path = filled.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        digest, data = connection.execute(
            "SELECT sha256, data FROM artifacts JOIN task_prompts ON sha256 = prompt_sha256 "
            "WHERE version = 1"
        ).fetchone()
        flipped = data[:-1] + bytes([data[-1] ^ 0xFF])  # one value's last byte
        connection.execute("UPDATE artifacts SET data = ? WHERE sha256 = ?", (flipped, digest))
    result = cli("prompt", "--task", "ag_news", "--version", 1, "--registry", filled)
    assert result.exit_code == 1
    line = error_line(result)
    assert line.startswith("Error: prompt of task 'ag_news' in pool version 1 is corrupted: ")
    assert line.endswith(f"expected {digest[:12]}")
    check = cli("check", "--registry", filled, "--json")
    assert check.exit_code == 1
    assert json.loads(check.stdout)["problems"] == [
        f"artifact {digest[:12]} (prompt) is corrupted: its bytes do not match"
    ]


def test_a_newer_schema_is_refused(cli, filled):
    path = filled.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099_future'")
    before = snapshot(filled)
    result = cli("tasks", "--registry", filled)
    assert result.exit_code == 1
    assert error_line(result) == (
        f"Error: the registry at {filled} has schema revision '0099_future', newer than this "
        "dpf-continual knows (newest: '0002_query_indexes'); upgrade dpf-continual to open it"
    )
    assert snapshot(filled) == before


def test_query_commands_import_no_heavy_libraries(filled, tmp_path):
    script = (
        "import sys\n"
        "from dpf_continual.cli import main\n"
        "for args in (['tasks'], ['show', 'imdb'], ['versions'], ['similar', 'imdb'],\n"
        "             ['prompt', '--task', 'imdb', '--out', sys.argv[2]]):\n"
        "    main(args + ['--registry', sys.argv[1]], standalone_mode=False)\n"
        "heavy = {'torch', 'transformers', 'avalanche', 'alembic'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    out = tmp_path / "p.safetensors"
    result = subprocess.run(
        [sys.executable, "-c", script, filled, str(out)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert out.exists()
