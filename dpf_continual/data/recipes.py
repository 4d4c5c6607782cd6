"""Built-in recipes: CrossFit task names mapped to Hugging Face hub datasets and linearised.

A recipe says which hub dataset (and config) holds a CrossFit task, which splits to use and how
to turn one hub row into ``(input, output, options)`` the way the CrossFit gym writes it: fields
as ``name: value`` joined by `` [SEP] ``, labels as words (``not_entailment``, ``Sci/Tech``).
Fixed label sets are listed in the dataset's class order (index ``i`` is class ``i``); the
options of a task are that set sorted, as in the MetaICL build of the gym.

Rows that cannot be used (unlabelled test rows with label ``-1``, MultiRC questions without a
correct answer, ReCoRD queries without answers) format to ``None`` and are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]
Formatted = tuple[str, str, tuple[str, ...]] | None


@dataclass(frozen=True)
class HubRecipe:
    """How to build one CrossFit task from the hub.

    Args:
        name: The CrossFit task name (``glue-rte``).
        dataset: Hub dataset id; ``config`` its configuration, if any.
        format: Turns one row into ``(input, output, options)``, or ``None`` to skip it.
        labels: Class names in class order for fixed-label tasks; empty otherwise.
        kind: ``choice`` or ``generation``; ``domain`` a word for reports.
        train_split, test_split: Hub splits for train/dev sampling and for test.
        group: Optional pass over a whole split before formatting (MultiRC groups answers).
    """

    name: str
    dataset: str
    config: str | None
    format: Callable[[Row], Formatted]
    labels: tuple[str, ...] = ()
    kind: str = "choice"
    domain: str = "general"
    train_split: str = "train"
    test_split: str = "validation"
    group: Callable[[Iterable[Row]], list[Row]] | None = None

    @property
    def options(self) -> tuple[str, ...]:
        """The fixed options of the task (sorted labels), empty when they vary per row."""
        return tuple(sorted(self.labels))


def clean(text: Any) -> str:
    """One line of text: tabs and line breaks become spaces, ends trimmed."""
    return " ".join(str(text).replace("\t", " ").replace("\r", " ").split("\n")).strip()


def join_fields(row: Row, fields: Sequence[tuple[str, str]]) -> str:
    """CrossFit's linearisation: ``prefix: value [SEP] prefix: value`` (bare when no prefix)."""
    parts = (
        f"{prefix}: {clean(row[key])}" if prefix else clean(row[key]) for prefix, key in fields
    )
    return " [SEP] ".join(parts)


def labelled(
    fields: Sequence[tuple[str, str]], labels: Sequence[str], *, label_key: str = "label"
) -> Callable[[Row], Formatted]:
    """A formatter for a fixed-label task: input from ``fields``, output ``labels[row[key]]``."""
    options = tuple(sorted(labels))

    def format_row(row: Row) -> Formatted:
        index = row[label_key]
        if isinstance(index, bool):
            index = int(index)
        if not isinstance(index, int) or not 0 <= index < len(labels):
            return None  # unlabelled (-1) rows of hidden test sets
        return join_fields(row, fields), labels[index], options

    return format_row


def _classify(name, dataset, config, fields, labels, *, domain, label_key="label", **kwargs):
    fields = tuple((p, k) for p, k in fields)
    formatter = labelled(fields, labels, label_key=label_key)
    return HubRecipe(name, dataset, config, formatter, tuple(labels), domain=domain, **kwargs)


def _boolq(row: Row) -> Formatted:
    text = join_fields(row, (("question", "question"), ("context", "passage")))
    return text, "yes" if row["answer"] else "no", ("no", "yes")


def _copa(row: Row) -> Formatted:
    # Asking for the cause means the premise is the effect, and the other way round.
    asked = "Cause" if row["question"] == "cause" else "Effect"
    given = "Effect" if asked == "Cause" else "Cause"
    options = (f"{asked}: {clean(row['choice1'])}", f"{asked}: {clean(row['choice2'])}")
    if row["label"] not in (0, 1):
        return None
    return f"{given}: {clean(row['premise'])}", options[row["label"]], options


def group_multirc(rows: Iterable[Row]) -> list[Row]:
    """One row per MultiRC question, with all its candidate answers and their labels."""
    grouped: dict[Any, dict[str, Any]] = {}
    for row in rows:
        key = (row["idx"]["paragraph"], row["idx"]["question"])
        entry = grouped.setdefault(
            key, {"paragraph": row["paragraph"], "question": row["question"], "answers": []}
        )
        entry["answers"].append((row["answer"], row["label"]))
    return list(grouped.values())


def _multirc(row: Row) -> Formatted:
    options = tuple(dict.fromkeys(clean(answer) for answer, _ in row["answers"]))
    correct = [clean(answer) for answer, label in row["answers"] if label == 1]
    if not correct or len(options) < 2:
        return None
    text = join_fields(row, (("context", "paragraph"), ("question", "question")))
    return text, correct[0], options


def _record(row: Row) -> Formatted:
    if not row["answers"]:
        return None
    text = f"question: {clean(row['query'])} context: {clean(row['passage'])}"
    return text, clean(row["answers"][0]), ()


PAIR = (("sentence 1", "sentence1"), ("sentence 2", "sentence2"))
NLI = (("premise", "premise"), ("hypothesis", "hypothesis"))
TEXT = (("", "text"),)
ENTAIL = ("entailment", "not_entailment")
POLARITY = ("negative", "positive")
GLUE, SUPERGLUE, TWEETS = "nyu-mll/glue", "aps/super_glue", "cardiffnlp/tweet_eval"

DBPEDIA = (
    "Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder",
    "MeanOfTransportation", "Building", "NaturalPlace", "Village", "Animal", "Plant", "Album",
    "Film", "WrittenWork",
)  # fmt: skip
YAHOO = (
    "Society & Culture", "Science & Mathematics", "Health", "Education & Reference",
    "Computers & Internet", "Sports", "Business & Finance", "Entertainment & Music",
    "Family & Relationships", "Politics & Government",
)  # fmt: skip
YAHOO_FIELDS = (
    ("question_title", "question_title"), ("question_content", "question_content"),
    ("best_answer", "best_answer"),
)  # fmt: skip
EMOJI = tuple("❤ 😍 😂 💕 🔥 😊 😎 ✨ 💙 😘 📷 🇺🇸 ☀ 💜 😉 💯 😁 🎄 📸 😜".split())
TWEET_LABELS = {
    "emoji": EMOJI,
    "emotion": ("anger", "joy", "optimism", "sadness"),
    "hate": ("non-hate", "hate"),
    "irony": ("non-irony", "irony"),
    "offensive": ("non-offensive", "offensive"),
    "sentiment": ("negative", "neutral", "positive"),
    **{
        f"stance_{topic}": ("none", "against", "favor")
        for topic in ("abortion", "atheism", "climate", "feminist", "hillary")
    },
}

_RECIPES = [
    _classify("glue-cola", GLUE, "cola", (("", "sentence"),),
              ("unacceptable", "acceptable"), domain="grammar"),
    _classify("glue-sst2", GLUE, "sst2", (("sentence", "sentence"),), POLARITY,
              domain="reviews"),
    _classify("glue-mrpc", GLUE, "mrpc", PAIR, ("not_equivalent", "equivalent"), domain="news"),
    _classify("glue-qqp", GLUE, "qqp", (("question 1", "question1"), ("question 2", "question2")),
              ("not_duplicate", "duplicate"), domain="questions"),
    _classify("glue-mnli", GLUE, "mnli", NLI, ("entailment", "neutral", "contradiction"),
              domain="nli", test_split="validation_matched"),
    _classify("glue-qnli", GLUE, "qnli", (("question", "question"), ("sentence", "sentence")),
              ENTAIL, domain="wikipedia"),
    _classify("glue-rte", GLUE, "rte", PAIR, ENTAIL, domain="nli"),
    _classify("glue-wnli", GLUE, "wnli", PAIR, ("not_entailment", "entailment"), domain="nli"),
    HubRecipe("boolq", "google/boolq", None, _boolq, ("no", "yes"), domain="wikipedia"),
    _classify("superglue-cb", SUPERGLUE, "cb", NLI, ("entailment", "contradiction", "neutral"),
              domain="nli"),
    _classify("superglue-rte", SUPERGLUE, "rte", NLI, ENTAIL, domain="nli"),
    _classify("superglue-wic", SUPERGLUE, "wic", (("word", "word"), *PAIR), ("false", "true"),
              domain="word-sense"),
    _classify("superglue-wsc", SUPERGLUE, "wsc.fixed",
              (("text", "text"), ("span1_text", "span1_text"), ("span2_text", "span2_text")),
              ("false", "true"), domain="coreference"),
    HubRecipe("superglue-copa", SUPERGLUE, "copa", _copa, domain="commonsense"),
    HubRecipe("superglue-multirc", SUPERGLUE, "multirc", _multirc, domain="reading",
              group=group_multirc),
    HubRecipe("superglue-record", SUPERGLUE, "record", _record, kind="generation",
              domain="reading"),
    _classify("ag_news", "fancyzhx/ag_news", None, TEXT,
              ("World", "Sports", "Business", "Sci/Tech"), domain="news", test_split="test"),
    _classify("dbpedia_14", "fancyzhx/dbpedia_14", None, (("", "content"),), DBPEDIA,
              domain="encyclopedia", test_split="test"),
    _classify("yahoo_answers_topics", "community-datasets/yahoo_answers_topics", None,
              YAHOO_FIELDS, YAHOO, label_key="topic", domain="qa-forum", test_split="test"),
    _classify("amazon_polarity", "fancyzhx/amazon_polarity", None,
              (("title", "title"), ("content", "content")), POLARITY, domain="reviews",
              test_split="test"),
    _classify("yelp_polarity", "fancyzhx/yelp_polarity", None, TEXT, POLARITY, domain="reviews",
              test_split="test"),
    _classify("imdb", "stanfordnlp/imdb", None, TEXT, POLARITY, domain="reviews",
              test_split="test"),
    _classify("trec", "CogComp/trec", None, TEXT, ("ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"),
              label_key="coarse_label", domain="questions", test_split="test"),
    _classify("emotion", "dair-ai/emotion", None, TEXT,
              ("sadness", "joy", "love", "anger", "fear", "surprise"), domain="social-media",
              test_split="test"),
    *(
        _classify(f"tweet_eval-{subset}", TWEETS, subset, TEXT, labels, domain="social-media",
                  test_split="test")
        for subset, labels in TWEET_LABELS.items()
    ),
]  # fmt: skip

RECIPES: dict[str, HubRecipe] = {recipe.name: recipe for recipe in _RECIPES}


def find_recipe(name: str) -> HubRecipe | None:
    """The recipe for a CrossFit task name, or ``None``."""
    return RECIPES.get(name)
