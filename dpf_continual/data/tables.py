"""Plain tables with named columns: CSV, TSV (with a header row), JSON Lines and JSON arrays.

The caller names the input and output columns (``--input-column``, ``--output-column``); without
them the first of ``input``/``text``/``sentence`` and of ``output``/``label``/``target`` that
exists is used. Several input columns are joined CrossFit-style, ``premise: ... [SEP] hypothesis:
...``. JSON rows may carry their own ``options`` list (multiple choice).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dpf_continual.data.assemble import Record
from dpf_continual.data.textfile import read_json_array, read_jsonl, read_table
from dpf_continual.errors import DataFormatError

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
INPUT_GUESSES = ("input", "text", "sentence")
OUTPUT_GUESSES = ("output", "label", "target")
OPTIONS_KEY = "options"


def read_table_file(
    path: Path,
    *,
    input_columns: Sequence[str] = (),
    output_column: str | None = None,
) -> list[Record]:
    """Read a table file by its suffix.

    Args:
        path: A ``.csv``, ``.tsv``, ``.jsonl`` or ``.json`` (array of objects) file.
        input_columns: Column(s) holding the input; guessed when empty.
        output_column: Column holding the output; guessed when ``None``.

    Raises:
        DataFormatError: Unknown suffix, a missing column, or a cell that is not text (names the
            file and line).
    """
    if path.suffix in (".csv", ".tsv"):
        header, rows = read_table(path, delimiter="," if path.suffix == ".csv" else "\t")
        inputs, output = _pick_columns(path, header, input_columns, output_column)
        return [
            _record(dict(zip(header, fields, strict=True)), inputs, output, f"{path}: line {n}")
            for n, fields in rows
        ]
    if path.suffix == ".jsonl":
        rows = read_jsonl(path)
    elif path.suffix == ".json":
        rows = read_json_array(path)
    else:
        raise DataFormatError(
            f"{path}: unknown table format {path.suffix!r}; expected one of {TABLE_SUFFIXES}"
        )
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    first = rows[0][1] if isinstance(rows[0][1], dict) else {}
    inputs, output = _pick_columns(path, list(first), input_columns, output_column)
    return [_json_record(row, inputs, output, f"{path}: line {n}") for n, row in rows]


def _pick_columns(path, header, input_columns, output_column):
    """Resolve the input and output column names against ``header``."""
    inputs = tuple(input_columns) or _guess(header, INPUT_GUESSES)
    output = output_column or (_guess(header, OUTPUT_GUESSES) or (None,))[0]
    if not inputs or output is None:
        raise DataFormatError(
            f"{path}: line 1: cannot tell the input and output columns among "
            f"[{', '.join(header)}]; name them with --input-column and --output-column"
        )
    for column in (*inputs, output):
        if column not in header:
            raise DataFormatError(
                f"{path}: line 1: no column {column!r}; the columns are [{', '.join(header)}]"
            )
    return inputs, output


def _guess(header: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    return next(((name,) for name in names if name in header), ())


def _json_record(row: Any, inputs, output, where: str) -> Record:
    if not isinstance(row, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {str(row)[:60]!r}")
    record = _record(row, inputs, output, where)
    options = row.get(OPTIONS_KEY)
    if options is None or OPTIONS_KEY in (*inputs, output):
        return record
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise DataFormatError(f"{where}: 'options' must be a list of strings, got {options!r}")
    return Record(record.input, record.output, tuple(options), where)


def _record(row: dict[str, Any], inputs, output, where: str) -> Record:
    values = {column: _cell(row, column, where) for column in (*inputs, output)}
    if len(inputs) == 1:
        text = values[inputs[0]]
    else:
        text = " [SEP] ".join(f"{column}: {values[column]}" for column in inputs)
    return Record(text, values[output], (), where)


def _cell(row: dict[str, Any], column: str, where: str) -> str:
    if column not in row:
        raise DataFormatError(f"{where}: no column {column!r}; this row has [{', '.join(row)}]")
    value = row[column]
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, (str, int, float)):
        raise DataFormatError(
            f"{where}: column {column!r} holds {value!r}; expected text or a number"
        )
    return str(value)
