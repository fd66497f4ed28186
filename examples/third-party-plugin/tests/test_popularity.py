"""Popularity: training counts only, ties by item id, and the engine's capability check."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from classic_baselines.popularity import PopularityParams, build_popularity, training_counts
from mtrec.config import resolve
from mtrec.errors import ConfigError
from mtrec.evaluation.metrics import ranks_from_scores


def test_counts_are_training_interactions_only(tiny_run):
    # By hand from tiny_dataset's docstring; validation and test targets are not counted.
    assert training_counts(tiny_run).tolist() == [0, 2, 2, 1, 2, 1, 2, 1]


@pytest.mark.parametrize("domain, candidates, expected_order", [
    ("A", [1, 2, 3, 4], [1, 2, 4, 3]),  # 1, 2 and 4 have 2 each (ties: lower id first), 3 has 1
    ("B", [5, 6, 7], [6, 5, 7]),        # 6 has 2; 5 and 7 have 1 each
])
def test_ranking_is_most_popular_first_then_by_id(tiny_run, domain, candidates, expected_order):
    model = build_popularity(PopularityParams(), tiny_run)
    candidates = torch.tensor(candidates)
    targets = candidates.clone()  # one example per candidate: where does each item rank?
    batch = {"target": targets, "history": torch.zeros(len(targets), 4, dtype=torch.long)}
    ranks = ranks_from_scores(model.score(batch, candidates), candidates, targets)
    order = [int(c) for _, c in sorted(zip(ranks.tolist(), candidates.tolist()))]
    assert order == expected_order


def test_history_is_ignored_and_per_example_candidates_work(tiny_run):
    model = build_popularity(PopularityParams(), tiny_run)
    batch = {"target": torch.tensor([1, 5]), "history": torch.tensor([[0, 0, 2, 3], [0, 0, 0, 6]])}
    assert model.score(batch, torch.tensor([[1, 3], [7, 6]])).tolist() == [[2.0, 1.0], [1.0, 2.0]]
    assert model.score(batch, torch.tensor([1, 2, 3, 4])).tolist() == [[2.0, 2.0, 1.0, 2.0]] * 2


def test_popularity_under_a_training_strategy_is_refused(plugins):
    with pytest.raises(ConfigError, match="encoder 'popularity' needs a transfer that provides no-training"):
        resolve(plugins.catalogue, "pop", overrides=["transfer.name=single-domain"])
    with pytest.raises(ConfigError, match="transfer 'no-training' needs an encoder that provides training-free"):
        resolve(plugins.catalogue, "gru4rec", overrides=["transfer.name=no-training"])


def expected_full_ranking_metrics(dataset) -> dict[str, dict[str, float]]:
    """Popularity's test metrics computed independently: numpy over the interaction arrays."""
    train = dataset.inter_role == 0
    counts = np.bincount(dataset.inter_item[train], minlength=dataset.n_items + 1)
    out = {}
    for d, name in enumerate(dataset.domains):
        items = np.asarray(dataset.domain_items[d])
        targets = dataset.inter_item[(dataset.inter_role == 2) & (dataset.item_domain[dataset.inter_item] == d)]
        ranks = np.array([((counts[items] > counts[t]) | ((counts[items] == counts[t]) & (items < t))).sum()
                          for t in targets])
        out[name] = {"recall@10": float(np.mean(ranks < 10)),
                     "ndcg@10": float(np.mean(np.where(ranks < 10, 1 / np.log2(ranks + 2), 0.0))),
                     "mrr": float(np.mean(1 / (ranks + 1)))}
    return out


def test_pop_run_on_the_bundled_dataset_matches_an_independent_count(plugins, tmp_path):
    from mtrec.engine import execute_run, load_run_dataset

    resolved = resolve(plugins.catalogue, "pop", quick=True, overrides=["training.threads=1"])
    outcome = execute_run(resolved, plugins, registry=None, progress=False, output_root=tmp_path)
    expected = expected_full_ranking_metrics(load_run_dataset(resolved, plugins, progress=False))
    assert outcome.stages == []  # nothing was trained
    for domain, metrics in expected.items():
        for name, value in metrics.items():
            assert math.isclose(outcome.test.metrics[domain][name], value, abs_tol=1e-9), (domain, name)
    assert json.loads((tmp_path / outcome.run_id / "metrics.json").read_text())["test"]["average"]
