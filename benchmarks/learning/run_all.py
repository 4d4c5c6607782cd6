"""Regenerate every learning benchmark, one suite after the other, and collect their tables.

Runs ``calibration.py`` first (it chooses the learning rates the other suites read), then
suites 1-4: ``lfpt5_stream.py``, ``crossfit_transfer.py``, ``sensitivity.py`` and ``table1.py``,
and last ``backbone_cost.py`` (seconds per step and per scored example of MiniLM and, when
installed, SmolLM2; the same in both modes).
Each suite is its own process (one backbone load each) and writes its JSON, Markdown and plots
under ``benchmarks/results/learning/``; this script then writes ``RESULTS.md`` (every table, in
order) and ``run_all.json`` (each suite's wall time and exit status).

Options other than ``--only``, ``--jobs`` and ``--collect-only`` are passed to every suite
(``--quick``, ``--backbone``, ``--device``, ``--threads``, ``--max-length``, ``--data-root``,
``--out-dir``). ``--jobs N`` runs the LFPT5 suite's order x sample units in N processes of one
torch thread each (on 2 cores, ``--jobs 2`` is about twice as fast as one process with two
threads). ``--collect-only`` runs nothing and rebuilds ``RESULTS.md`` and the README's Results
section from the suites' files already written.

When the results go to the default folder, the README's Results section (between the
``results:start`` and ``results:end`` markers) is replaced by ``RESULTS.md``'s tables.

Example::

    .venv/bin/python benchmarks/learning/run_all.py --quick
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parents[1] / "benchmarks" / "results" / "learning"
README = HERE.parents[1] / "README.md"
SUITES = (
    "calibration",
    "lfpt5_stream",
    "crossfit_transfer",
    "sensitivity",
    "table1",
    "backbone_cost",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=SUITES, help="run these suites only")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--jobs", type=int, default=1, help="processes for the LFPT5 suite")
    parser.add_argument("--collect-only", action="store_true", help="only rebuild the tables")
    args, passed = parser.parse_known_args()
    passed += ["--out-dir", str(args.out_dir)]
    suites = [suite for suite in SUITES if not args.only or suite in args.only]
    if args.collect_only:
        collect(args.out_dir)
        return

    timings = {}
    for suite in suites:
        print(f"== {suite} {' '.join(passed)}", flush=True)
        started = time.perf_counter()
        extra = ["--jobs", str(args.jobs)] if suite == "lfpt5_stream" else []
        status = subprocess.call([sys.executable, str(HERE / f"{suite}.py"), *passed, *extra])
        timings[suite] = {"seconds": round(time.perf_counter() - started, 1), "status": status}
        print(
            f"== {suite}: exit {status} after {timings[suite]['seconds'] / 60:.1f} min", flush=True
        )
        if status != 0:
            print(f"{suite} failed; the suites after it still run", file=sys.stderr)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_record(args.out_dir / "run_all.json", passed, args.jobs, timings)
    collect(args.out_dir)
    sys.exit(max((t["status"] for t in timings.values()), default=0))


def write_record(path: Path, arguments: list[str], jobs: int, timings: dict) -> dict:
    """Write ``run_all.json``: each suite's wall time and exit status.

    With ``--only``, a suite that was not run keeps the wall time and mode its own JSON file
    (beside ``path``) records, so the record matches the tables shown; a suite without a
    file keeps the timing of the earlier record, if any.
    """
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    kept = {}
    for name in SUITES:
        if name in timings:
            continue
        own = path.parent / f"{name}.json"
        if own.is_file():
            result = json.loads(own.read_text())
            kept[name] = {
                "seconds": result.get("wall_seconds"),
                "status": 0,
                "mode": result.get("mode"),
                "from": own.name,
            }
        elif name in earlier.get("suites", {}):
            kept[name] = earlier["suites"][name]
    record = {
        "arguments": arguments,
        "jobs": jobs,
        "suites": {**kept, **timings},
        "finished": time.strftime("%Y-%m-%d %H:%M"),
    }
    path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def wall_times(out_dir: Path) -> str:
    """A Markdown table of each suite's mode, wall time and machine, from its JSON file.

    Quick-mode results kept in ``<out_dir>/quick/`` (beside the full ones) get rows too.
    """
    rows = []
    paths = [out_dir / f"{suite}.json" for suite in SUITES]
    paths += [out_dir / "quick" / f"{suite}.json" for suite in SUITES]
    for path in paths:
        if not path.is_file():
            continue
        suite = path.stem
        record = json.loads(path.read_text())
        hardware = record.get("hardware", {})
        load = hardware.get("load_average_at_start") or ["?"]
        rows.append(
            f"| {suite} | {record.get('mode', '?')} | {record['wall_seconds'] / 60:.1f} | "
            f"{record.get('jobs', 1)} | {hardware.get('torch_threads', '?')} | "
            f"{hardware.get('cores', '?')} x {hardware.get('cpu', '?')} | {load[0]} | "
            f"{record.get('finished', '?')} |"
        )
    if not rows:
        return ""
    header = (
        "### Wall times\n\n"
        "Each suite's wall time as its JSON file records it (processes: how many shared its "
        "runs; threads: torch threads per process; load: the machine's 1-minute load average "
        "when the suite started).\n\n"
        "| suite | mode | minutes | processes | threads | CPU | load | finished |\n"
        "|---|---|---:|---:|---:|---|---:|---|\n"
    )
    return header + "\n".join(rows) + "\n"


def collect(out_dir: Path) -> None:
    """Write ``RESULTS.md`` from the suites' tables; refresh the README when it is ours."""
    tables = [
        (out_dir / f"{suite}.md").read_text()
        for suite in SUITES
        if (out_dir / f"{suite}.md").is_file()
    ]
    if times := wall_times(out_dir):
        tables.append(times)
    header = "# Learning benchmarks\n\nRegenerated by `python benchmarks/learning/run_all.py`.\n"
    (out_dir / "RESULTS.md").write_text(header + "\n" + "\n".join(tables))
    if out_dir.resolve() == RESULTS.resolve():
        update_readme(README, "\n".join(tables), RESULTS.relative_to(README.parent))


def update_readme(readme: Path, tables: str, folder: Path) -> bool:
    """Replace the text between the README's results markers; image links point into ``folder``."""
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    if start not in text or end not in text:
        print(f"{readme}: no {start} ... {end} markers; README left as it is", file=sys.stderr)
        return False
    tables = re.sub(r"\]\((?!https?:|/)([^)]+\.png)\)", lambda m: f"]({folder}/{m[1]})", tables)
    tables = tables.replace("\n### ", "\n#### ").removeprefix("### ")
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    readme.write_text(f"{before}{start}\n\n#### {tables.strip()}\n\n{end}{after}")
    return True


if __name__ == "__main__":
    main()
