"""Factories that write small data files for the reader tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``write("a/b.tsv", text_or_bytes)`` creates the file under ``tmp_path``."""

    def make(relative: str, content: str | bytes) -> Path:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return make


def jsonl(rows: Sequence[dict]) -> str:
    """Rows as JSON Lines text."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


@pytest.fixture
def as_jsonl() -> Callable[[Sequence[dict]], str]:
    """The :func:`jsonl` helper, for tests that write JSON Lines themselves."""
    return jsonl


def metaicl_rows(task: str, count: int, options: Sequence[str], *, start: int = 0) -> list[dict]:
    """``count`` MetaICL rows of ``task`` whose outputs cycle through ``options``."""
    return [
        {
            "task": task,
            "input": f"{task} example {start + i}",
            "output": options[i % len(options)],
            "options": list(options),
        }
        for i in range(count)
    ]


@pytest.fixture
def gym(write) -> Callable[..., Path]:
    """Factory: a MetaICL (``jsonl``) or CrossFit (``tsv``) task folder; returns the folder."""

    def make(
        task: str = "toy_task",
        *,
        root: str = "gym",
        ext: str = "jsonl",
        options: Sequence[str] = ("no", "yes"),
        seeds: Sequence[int] = (100,),
        k: int = 4,
        test: int | None = 6,
        test_seed: int | None = None,
        flat: bool = False,
    ) -> Path:
        folder = root if flat else f"{root}/{task}"
        for seed in seeds:
            for split, count in (("train", k), ("dev", k)):
                rows = metaicl_rows(task, count, options, start=seed)
                write(f"{folder}/{task}_{k}_{seed}_{split}.{ext}", _render(rows, ext))
        if test is not None:
            seed = test_seed if test_seed is not None else seeds[0]
            rows = metaicl_rows(task, test, options, start=1000)
            write(f"{folder}/{task}_{k}_{seed}_test.{ext}", _render(rows, ext))
        return write(f"{folder}/.keep", "x").parent

    return make


def _render(rows: list[dict], ext: str) -> str:
    if ext == "jsonl":
        return jsonl(rows)
    return "".join(f"{row['input']}\t{row['output']}\n" for row in rows)
