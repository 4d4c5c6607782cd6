"""The learning benchmarks' shared machinery: resumable units, process sharing, README tables.

The suites themselves run on the shared data (opt-in through ``DPF_DATA_ROOT``): one LFPT5 stream
end to end on a tiny encoder with two processes, and on a tiny decoder (the generative path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

LEARNING = Path(__file__).resolve().parents[2] / "benchmarks" / "learning"
sys.path.insert(0, str(LEARNING))

import harness  # noqa: E402
import run_all  # noqa: E402


def fake_session(out_dir: Path) -> SimpleNamespace:
    return SimpleNamespace(
        args=SimpleNamespace(out_dir=out_dir), backbone=SimpleNamespace(name="tiny")
    )


def test_units_are_written_once_and_reused_by_the_same_settings(tmp_path):
    session, calls = fake_session(tmp_path), []

    def run(unit):
        calls.append(unit)
        return {"unit": list(unit), "square": unit[0] ** 2}

    units = [(1, "a"), (2, "b"), (3, "c")]
    first = harness.run_units(session, "suite", {"steps": 4}, units, run)
    assert calls == units
    assert [part["square"] for part in first] == [1, 4, 9]

    again = harness.run_units(session, "suite", {"steps": 4}, units, run)
    assert calls == units, "a finished unit ran again"
    assert again == first

    harness.run_units(session, "suite", {"steps": 5}, units[:1], run)
    assert calls == [*units, (1, "a")], "other settings must not reuse the parts"


def test_a_failed_unit_leaves_no_part_and_the_next_run_redoes_only_it(tmp_path):
    session, calls = fake_session(tmp_path), []

    def run(unit):
        calls.append(unit)
        if unit == 2 and calls.count(2) == 1:
            raise RuntimeError("interrupted")
        return unit * 10

    with pytest.raises(RuntimeError):
        harness.run_units(session, "suite", {}, [1, 2, 3], run)
    assert harness.run_units(session, "suite", {}, [1, 2, 3], run) == [10, 20, 30]
    assert calls == [1, 2, 2, 3]
    assert not list(tmp_path.rglob("*.claim")), "a claim outlived its process's unit"


def claim_file(tmp_path: Path, settings: dict, unit: int) -> Path:
    identity = {**settings, "backbone": "tiny", "suite": "suite"}
    folder = tmp_path / "parts" / f"suite-{harness.fingerprint(identity)}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"unit-{unit}.claim"


def test_a_live_claim_is_left_to_its_process_and_a_dead_one_taken_over(tmp_path):
    session, calls = fake_session(tmp_path), []

    def run(unit):
        calls.append(unit)
        return unit

    claim_file(tmp_path, {}, 1).write_text(f"{os.uname().nodename} {os.getpid()}\n")
    assert harness.run_units(session, "suite", {}, [1, 2], run, worker=True) is None
    assert calls == [2], "a helper took a unit another live process holds"

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True).stdout.strip()  # fmt: skip
    claim_file(tmp_path, {}, 1).write_text(f"{os.uname().nodename} {dead}\n")
    assert harness.run_units(session, "suite", {}, [1, 2], run) == [1, 2]
    assert calls == [2, 1]


def test_jobs_must_be_positive():
    args = SimpleNamespace(jobs=0, worker=False, threads=0)
    with pytest.raises(SystemExit, match="--jobs: expected 1 or more, got 0"):
        harness.spawn_helpers(args)


def test_readme_section_is_replaced_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\nbefore\n<!-- results:start -->\nold table\n<!-- results:end -->\nafter\n"
    )
    tables = "### Suite A\n\n| a |\n|---|\n| 1 |\n\n![plot](plot.png)\n\n### Suite B\n\nB text\n"
    assert run_all.update_readme(readme, tables, Path("benchmarks/results/learning"))
    text = readme.read_text()
    assert "old table" not in text
    assert text.startswith("# Title\n\nbefore\n<!-- results:start -->\n\n#### Suite A\n")
    assert "![plot](benchmarks/results/learning/plot.png)" in text
    assert "\n#### Suite B\n" in text
    assert text.endswith("B text\n\n<!-- results:end -->\nafter\n")


def test_a_partial_rerun_keeps_the_other_suites_timings(tmp_path):
    path = tmp_path / "run_all.json"
    first = {"calibration": {"seconds": 5.0, "status": 0}, "table1": {"seconds": 9.0, "status": 0}}
    run_all.write_record(path, ["--quick"], 1, first)
    # sensitivity's own results file says how long it took; it outranks the earlier record
    (tmp_path / "sensitivity.json").write_text(json.dumps({"wall_seconds": 70.5, "mode": "full"}))
    record = run_all.write_record(path, [], 2, {"table1": {"seconds": 3.0, "status": 1}})
    assert record == json.loads(path.read_text())
    assert record["suites"] == {
        "calibration": {"seconds": 5.0, "status": 0},
        "sensitivity": {"seconds": 70.5, "status": 0, "mode": "full", "from": "sensitivity.json"},
        "table1": {"seconds": 3.0, "status": 1},
    }
    assert record["jobs"] == 2 and record["arguments"] == []


def test_wall_times_list_full_and_kept_quick_results(tmp_path):
    (tmp_path / "quick").mkdir()
    hardware = {"cores": 2, "cpu": "EPYC", "torch_threads": 1, "load_average_at_start": [0.5]}
    record = {"mode": "full", "wall_seconds": 1260.0, "jobs": 2, "hardware": hardware}
    (tmp_path / "lfpt5_stream.json").write_text(json.dumps({**record, "finished": "day 1"}))
    quick = {**record, "mode": "quick", "wall_seconds": 600.0, "jobs": 1, "finished": "day 0"}
    (tmp_path / "quick" / "table1.json").write_text(json.dumps(quick))
    table = run_all.wall_times(tmp_path)
    assert "| lfpt5_stream | full | 21.0 | 2 | 1 | 2 x EPYC | 0.5 | day 1 |" in table
    assert "| table1 | quick | 10.0 | 1 | 1 | 2 x EPYC | 0.5 | day 0 |" in table
    assert run_all.wall_times(tmp_path / "empty") == ""


def test_readme_without_markers_is_left_alone(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n")
    assert not run_all.update_readme(readme, "### A\n", Path("x"))
    assert readme.read_text() == "# Title\n"
    assert "no <!-- results:start -->" in capsys.readouterr().err


def test_points_and_mean_std():
    stat = harness.mean_std([0.5, None, 0.7])
    assert stat["n"] == 2 and stat["mean"] == pytest.approx(0.6)
    assert harness.points(stat) == "60.0 ± 14.1"
    assert harness.points(harness.mean_std([None])) == "–"
    assert harness.points(-0.031, signed=True) == "-3.1"


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(("kind", "jobs"), [("encoder", 2), ("decoder", 1)])
def test_lfpt5_suite_end_to_end_on_a_tiny_backbone(data_root, tiny_model_dir, tmp_path, kind, jobs):
    out = tmp_path / "results"
    command = [
        sys.executable, str(LEARNING / "lfpt5_stream.py"), "--backbone", str(tiny_model_dir(kind)),
        "--data-root", str(data_root), "--out-dir", str(out), "--orders", "1", "3",
        "--samples", "0_42", "--methods", "dpf-equal", "naive", "joint", "--steps", "1",
        "--test-per-class", "1", "--dev-per-class", "1", "--max-length", "16",
        "--jobs", str(jobs), "--threads", "1",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    record = json.loads((out / "lfpt5_stream.json").read_text())
    assert record["backbone"] == str(tiny_model_dir(kind))
    assert 1 <= record["jobs"] <= jobs  # a helper that starts late may find no unit left
    assert {"cpu", "torch_threads", "load_average_at_start"} <= set(record["hardware"])
    assert len(record["runs"]) == 2 * 3  # two orders x three methods
    assert {run["order"] for run in record["runs"]} == {1, 3}
    for run in record["runs"]:
        assert len(run["live"]) == 4 and len(run["live"][-1]) == 4
        assert all(0.0 <= score <= 1.0 for score in run["live"][-1])
    assert record["table"]["joint"]["bwt_live"]["mean"] is None  # not continual: ACC only
    assert record["table"]["naive"]["acc_live"]["n"] == 2
    table = (out / "lfpt5_stream.md").read_text()
    assert "| dpf-equal |" in table and f"shared by {record['jobs']} process(es)" in table


@pytest.mark.realdata
@pytest.mark.slow
def test_crossfit_transfer_suite_end_to_end_on_a_tiny_encoder(data_root, tiny_model_dir, tmp_path):
    out = tmp_path / "results"
    command = [
        sys.executable, str(LEARNING / "crossfit_transfer.py"),
        "--backbone", str(tiny_model_dir("encoder")), "--data-root", str(data_root),
        "--out-dir", str(out), "--sources", "glue-sst2", "trec", "--targets", "glue-mrpc",
        "--data-seeds", "100", "--steps", "1", "--test-per-class", "2", "--max-length", "16",
        "--threads", "1",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    record = json.loads((out / "crossfit_transfer.json").read_text())
    (run,) = record["runs"]
    assert run["source_stream"]["tasks"] == ["glue-sst2", "trec"]
    (target,) = run["targets"]
    assert target["target"] == "glue-mrpc"
    for score in (target["pool"]["initial"], target["pool"]["test"], target["scratch"]["test"]):
        assert 0.0 <= score <= 1.0
    assert record["summary"]["transfer_gain"]["n"] == 1
    table = (out / "crossfit_transfer.md").read_text()
    assert "| glue-mrpc |" in table and "pool, before training" in table


@pytest.mark.realdata
@pytest.mark.slow
def test_backbone_cost_times_each_backbone_and_reports_a_missing_one(
    data_root, tiny_model_dir, tmp_path
):
    out, missing = tmp_path / "results", tmp_path / "no-such-model"
    encoder, decoder = str(tiny_model_dir("encoder")), str(tiny_model_dir("decoder"))
    command = [
        sys.executable, str(LEARNING / "backbone_cost.py"), "--backbones", encoder, decoder,
        str(missing), "--data-root", str(data_root), "--out-dir", str(out), "--tasks",
        "ag_news", "--steps", "1", "--test-per-class", "1", "--max-length", "16",
        "--threads", "1",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    record = json.loads((out / "backbone_cost.json").read_text())
    first, second, third = record["backbones"]
    assert (first["kind"], second["kind"]) == ("encoder", "decoder")
    assert second["layout"] == "input once, options on its cache"
    for result in (first, second):
        (row,) = result["tasks"]
        assert row["task"] == "ag_news" and row["options"] == 4 and row["scored"] == 4
        assert row["seconds_per_step"] > 0 and len(row["losses"]) == 1
        assert 0 < row["peak_rss_gib"] < 64
        assert result["lfpt5_full_hours"] > 0
    assert record["sequences_per_pass"] == 64
    assert third["backbone"] == str(missing) and "error" in third
    table = (out / "backbone_cost.md").read_text()
    assert "ag_news (4)" in table and "not run:" in table
