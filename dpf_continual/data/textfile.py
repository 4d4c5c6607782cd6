"""Reading text files strictly: UTF-8 only, never empty, and every error names the file and line.

The readers of each data layout build on these four functions, so a broken byte, a bad JSON line
or a short CSV row is reported the same way everywhere: ``path: line N: what is wrong``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from dpf_continual.errors import DataFormatError

# Long documents (20 Newsgroups posts, for one) exceed csv's default field limit of 128 KiB.
csv.field_size_limit(1 << 26)


def read_text(path: Path) -> str:
    """The whole file as text.

    Raises:
        DataFormatError: The file is missing, unreadable, not UTF-8 (names the line), or empty.
    """
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read the file ({error.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        byte = raw[error.start : error.start + 1].hex()
        raise DataFormatError(
            f"{path}: line {line}: not valid UTF-8 (byte 0x{byte}); save the file as UTF-8"
        ) from None
    if not text.strip():
        raise DataFormatError(f"{path}: the file is empty; expected one example per line")
    return text


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines as ``(line number, text without the line break)``."""
    lines = read_text(path).splitlines()
    return [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """JSON Lines: one JSON object per non-blank line, as ``(line number, object)``."""
    rows = []
    for number, line in read_lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}: line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise DataFormatError(
                f"{path}: line {number}: expected a JSON object, got {type(row).__name__}"
            )
        rows.append((number, row))
    return rows


def read_json(path: Path) -> Any:
    """A whole-file JSON document."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataFormatError(
            f"{path}: line {error.lineno}: not valid JSON ({error.msg})"
        ) from None


def read_json_array(path: Path) -> list[tuple[int, Any]]:
    """A JSON array, item by item, as ``(line where the item starts, item)``.

    Raises:
        DataFormatError: The file is not a JSON array, or an item is malformed (names the line).
    """
    text = read_text(path)
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if text[position] != "[":
        raise DataFormatError(f"{path}: line 1: expected a JSON array '[...]' of examples")
    position = _skip_space(text, position + 1)
    items: list[tuple[int, Any]] = []
    line, counted = 1, 0
    while position < len(text) and text[position] != "]":
        line += text.count("\n", counted, position)
        counted = position
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise DataFormatError(
                f"{path}: line {error.lineno}: not valid JSON ({error.msg})"
            ) from None
        items.append((line, item))
        position = _skip_space(text, position)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
        elif position >= len(text) or text[position] != "]":
            line_here = text.count("\n", 0, position) + 1
            raise DataFormatError(f"{path}: line {line_here}: expected ',' or ']' after an item")
    if position >= len(text):
        raise DataFormatError(f"{path}: the JSON array is not closed with ']'")
    return items


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def read_table(path: Path, *, delimiter: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A delimited file with a header row (CSV quoting rules) as ``(header, [(line, fields)])``.

    Raises:
        DataFormatError: A row has a different number of fields than the header.
    """
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
        rows = []
        for fields in reader:
            number = reader.line_num
            if not any(field.strip() for field in fields):
                continue
            if len(fields) != len(header):
                raise DataFormatError(
                    f"{path}: line {number}: {len(fields)} fields, but the header has "
                    f"{len(header)} ({', '.join(header)})"
                )
            rows.append((number, fields))
    except csv.Error as error:
        raise DataFormatError(f"{path}: line {reader.line_num}: {error}") from None
    return header, rows
