"""Opt-in: read the shared real data (DPF_DATA_ROOT) through the same readers users get."""

from __future__ import annotations

import pytest

from dpf_continual.data import resolve_task

pytestmark = pytest.mark.realdata

LFPT5_LABELS = {
    "ag_news_csv": 4,
    "amazon_review_full_csv": 5,
    "dbpedia_csv": 14,
    "yahoo_answers_csv": 10,
}


@pytest.fixture
def gym_root(data_root, monkeypatch):
    root = data_root / "crossfit_metaicl_16shot"
    monkeypatch.setenv("DPF_CROSSFIT_ROOT", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def test_every_gym_task_resolves_by_name(gym_root):
    names = sorted(p.name for p in gym_root.iterdir() if p.is_dir())
    kinds = {}

    for name in names:
        task = resolve_task(name)
        assert task.split_sizes()["train"] == 16 or name == "superglue-multirc", name
        kinds[task.spec.kind] = kinds.get(task.spec.kind, 0) + 1

    assert len(names) == 113
    assert kinds["generation"] > 10 and kinds["choice"] > 80


def test_gym_details_survive_reading(gym_root):
    copa = resolve_task("superglue-copa")
    imdb = resolve_task("imdb", seed=13)
    ag_news = resolve_task("ag_news")

    assert copa.spec.label_names == () and len(copa.splits["test"][0].options) == 2
    assert imdb.spec.source.endswith("test=dev (no test split)")
    assert ag_news.spec.label_names == ("Business", "Sci/Tech", "Sports", "World")
    assert ag_news.spec.domain == "news"


@pytest.mark.parametrize("folder", sorted(LFPT5_LABELS))
@pytest.mark.parametrize("seed", [42, 142, 242])
def test_lfpt5_samples(data_root, folder, seed):
    task = resolve_task("lfpt5-task", data=data_root / "lfpt5_textcls" / folder, seed=seed)

    labels = LFPT5_LABELS[folder]
    assert len(task.spec.label_names) == labels
    assert task.split_sizes() == {"train": 16 * labels, "dev": 16 * labels, "test": 100 * labels}
    assert task.spec.source.endswith(f"_{seed}")
