"""Strict text reading: UTF-8, non-empty, and errors that name the file and line."""

from __future__ import annotations

import pytest

from dpf_continual.data.textfile import (
    read_json,
    read_json_array,
    read_jsonl,
    read_lines,
    read_table,
)
from dpf_continual.errors import DataFormatError


def test_bad_utf8_names_file_and_line(write):
    path = write("bad.tsv", b"fine\tyes\nstill fine\tno\nbroken \xff byte\tyes\n")

    with pytest.raises(DataFormatError, match=r"bad\.tsv: line 3: not valid UTF-8 \(byte 0xff\)"):
        read_lines(path)


def test_empty_and_blank_files_are_refused(write):
    for name, content in (("empty.tsv", ""), ("blank.tsv", "\n  \n")):
        with pytest.raises(DataFormatError, match=rf"{name}: the file is empty"):
            read_lines(write(name, content))


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataFormatError, match=r"nope\.tsv: cannot read the file"):
        read_lines(tmp_path / "nope.tsv")


def test_lines_skip_blank_lines_but_keep_numbers(write):
    path = write("a.txt", "\ufefffirst\n\nthird\r\n")

    assert read_lines(path) == [(1, "first"), (3, "third")]


def test_jsonl_reports_the_broken_line(write):
    path = write("rows.jsonl", '{"a": 1}\n{"a": \n')

    with pytest.raises(DataFormatError, match=r"rows\.jsonl: line 2: not valid JSON"):
        read_jsonl(path)


def test_jsonl_rows_must_be_objects(write):
    with pytest.raises(DataFormatError, match=r"line 1: expected a JSON object, got list"):
        read_jsonl(write("rows.jsonl", "[1, 2]\n"))


def test_json_array_items_carry_their_line(write):
    path = write("split.json", '[\n  {"a": 1},\n  {"a": 2}\n]\n')

    assert read_json_array(path) == [(2, {"a": 1}), (3, {"a": 2})]


def test_json_array_errors(write):
    with pytest.raises(DataFormatError, match=r"line 1: expected a JSON array"):
        read_json_array(write("a.json", '{"a": 1}'))
    with pytest.raises(DataFormatError, match=r"line 2: expected ',' or '\]'"):
        read_json_array(write("b.json", '[{"a": 1}\n {"a": 2}]'))
    with pytest.raises(DataFormatError, match=r"not closed"):
        read_json_array(write("c.json", '[{"a": 1},'))
    with pytest.raises(DataFormatError, match=r"line 3: not valid JSON"):
        read_json_array(write("d.json", '[\n{"a": 1},\n{"a": }]'))


def test_read_json_reports_line(write):
    with pytest.raises(DataFormatError, match=r"labels\.json: line 2: not valid JSON"):
        read_json(write("labels.json", '["a",\n "b" "c"]'))


def test_table_keeps_quoted_fields_and_checks_widths(write):
    path = write("t.tsv", 'text\tlabel\n"say ""hi""\tthere"\tgreet\n\nplain\tother\n')

    header, rows = read_table(path, delimiter="\t")

    assert header == ["text", "label"]
    assert rows == [(2, ['say "hi"\tthere', "greet"]), (4, ["plain", "other"])]
    bad = write("bad.csv", "text,label\na,b\nc\n")
    with pytest.raises(DataFormatError, match=r"bad\.csv: line 3: 1 fields, but the header has 2"):
        read_table(bad, delimiter=",")
