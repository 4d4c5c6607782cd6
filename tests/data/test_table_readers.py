"""CSV, TSV, JSONL and JSON tables with named columns."""

from __future__ import annotations

import json

import pytest

from dpf_continual.data import Choices, resolve_task
from dpf_continual.data.tables import read_table_file
from dpf_continual.errors import DataFormatError

CSV = "id,body,queue\n" + "1,printer on fire,hardware\n2,forgot password,accounts\n" * 2


def test_csv_with_named_columns(write):
    path = write("tickets.csv", CSV)

    task = resolve_task("tickets", data=path, input_columns=("body",), output_column="queue")

    assert task.spec.label_names == ("accounts", "hardware")
    assert task.spec.source.startswith(f"table:{path}; dev carved from train")
    assert {e.input for e in task.splits["train"]} <= {"printer on fire", "forgot password"}


def test_missing_column_lists_the_header(write):
    path = write("tickets.csv", CSV)

    with pytest.raises(
        DataFormatError,
        match=r"tickets\.csv: line 1: no column 'text'; the "
        r"columns are \[id, body, queue\]",
    ):
        read_table_file(path, input_columns=("text",), output_column="queue")
    with pytest.raises(DataFormatError, match=r"cannot tell the input and output columns"):
        read_table_file(path)


def test_several_input_columns_are_joined_crossfit_style(write):
    path = write("nli.tsv", "premise\thypothesis\tlabel\nA cat sat.\tA cat is sitting.\tyes\n")

    records = read_table_file(path, input_columns=("premise", "hypothesis"))

    assert records[0].input == "premise: A cat sat. [SEP] hypothesis: A cat is sitting."
    assert records[0].output == "yes"


def test_jsonl_guesses_columns_and_keeps_options(write):
    rows = [{"text": "2+2", "label": "4", "options": ["3", "4"]}, {"text": "ok", "label": True}]
    path = write("rows.jsonl", "\n".join(json.dumps(row) for row in rows))

    first, second = read_table_file(path)

    assert (first.input, first.output, first.options) == ("2+2", "4", ("3", "4"))
    assert (second.output, second.options) == ("true", ())


def test_jsonl_row_missing_a_column_names_its_line(write):
    path = write("rows.jsonl", '{"input": "a", "output": "b"}\n{"input": "c"}\n')

    with pytest.raises(DataFormatError, match=r"rows\.jsonl: line 2: no column 'output'"):
        read_table_file(path)


def test_cells_must_be_text_or_numbers(write):
    path = write("rows.jsonl", '{"input": "a", "output": ["b"]}\n')

    with pytest.raises(DataFormatError, match=r"line 1: column 'output' holds \['b'\]"):
        read_table_file(path)


def test_unknown_suffix(write):
    with pytest.raises(DataFormatError, match=r"unknown table format '\.xml'"):
        read_table_file(write("a.xml", "<a/>"))


def test_split_files_in_a_folder(write):
    write("tables/train.csv", "input,output\nhello,greet\nbye,leave\nhi,greet\n")
    write("tables/validation.csv", "input,output\nhey,greet\n")
    folder = write("tables/test.csv", "input,output\nsee you,leave\n").parent

    task = resolve_task("greetings", data=folder)

    assert task.split_sizes() == {"train": 3, "dev": 1, "test": 1}
    assert task.spec.source == f"table:{folder}"


def test_given_options_reject_outputs_outside_them(write):
    path = write("rows.csv", "input,output\na,x\nb,y\nc,z\n")

    with pytest.raises(
        DataFormatError,
        match=r"rows\.csv: line 4: output 'z' is not among the "
        r"options \['x', 'y'\]",
    ):
        resolve_task("letters", data=path, choices=Choices(options=("x", "y")))


def test_tsv_with_a_header_is_a_table_and_without_is_crossfit(write):
    headed = write("headed.tsv", "text\tlabel\nfoo\ta\nbar\tb\n")
    bare = write("bare.tsv", "foo\ta\nbar\tb\n")

    assert resolve_task("headed", data=headed).spec.source.startswith("table:")
    assert resolve_task("bare", data=bare).spec.source.startswith("crossfit:")
