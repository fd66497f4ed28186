"""faiss search and Eq. 8-9 generation."""

from __future__ import annotations

import numpy as np
import pytest

from mtrec_id_matcher.matching import (
    IndexChoice, behavior_neighbors, build_index, choose_index, generate, pca_reduce, search, similarity_weights,
)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_similarity_weights_are_eq9_normalised_similarities():
    sims = np.array([[0.6, 0.2, -0.1], [-0.3, -0.2, 0.0], [0.5, 0.5, 0.9]], dtype=np.float32)
    positions = np.array([[4, 7, 9], [1, 2, 3], [5, 6, -1]])
    w = similarity_weights(sims, positions)
    assert w[0].tolist() == pytest.approx([0.75, 0.25, 0.0])  # negative similarity clamped to 0
    assert w[1].tolist() == pytest.approx([1 / 3] * 3)  # nothing positive: uniform
    assert w[2].tolist() == pytest.approx([0.5, 0.5, 0.0])  # faiss padding (-1) weighs nothing


def test_generate_is_the_weighted_average_of_the_top_m_source_embeddings():
    source_vec = unit(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32))
    source_emb = np.array([[1, 0], [0, 1], [5, 5], [2, 2]], dtype=np.float32)
    query = unit(np.array([[1, 0.2, 0]], dtype=np.float32))
    out = generate(source_vec, source_emb, query, 2, IndexChoice("exact"))
    sims = source_vec @ query[0]
    top = np.argsort(-sims)[:2]
    assert sorted(out.neighbors[0].tolist()) == sorted(top.tolist())
    expected = (sims[top, None] * source_emb[top]).sum(0) / sims[top].sum()
    assert out.embeddings[0] == pytest.approx(expected, abs=1e-5)
    assert out.index_kind == "exact" and out.build_seconds >= 0 and out.search_seconds >= 0


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_agree_with_exact_search_on_separated_data(kind):
    rng = np.random.default_rng(0)
    source = unit(rng.normal(size=(2000, 16)).astype(np.float32))
    queries = unit(source[:50] + 0.01 * rng.normal(size=(50, 16)).astype(np.float32))
    _, exact = search(build_index(source, IndexChoice("exact")), queries, 1)
    _, approx = search(build_index(source, IndexChoice(kind, ivf_nprobe=8)), queries, 1)
    assert (exact[:, 0] == np.arange(50)).all()
    assert (approx[:, 0] == exact[:, 0]).mean() >= 0.9


def test_auto_index_is_exact_for_small_catalogues_and_approximate_for_large_ones():
    assert choose_index(1000, "auto", 5000, "hnsw").kind == "exact"
    assert choose_index(5001, "auto", 5000, "hnsw").kind == "hnsw"
    assert choose_index(5001, "auto", 5000, "ivf").kind == "ivf"
    assert choose_index(10, "ivf", 5000, "hnsw").kind == "ivf"  # an explicit choice wins


def test_behavior_neighbors_exclude_the_item_itself():
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [-1, 0]], dtype=np.float32)
    nb = behavior_neighbors(emb, 1, IndexChoice("exact"))
    assert nb[:, 0].tolist() == [1, 0, 3, 2, 2]  # item 4 = [-1, 0]: cosine 0 with item 2 beats -0.11 with item 3
    nb2 = behavior_neighbors(emb[:2], 3, IndexChoice("exact"))
    assert nb2.tolist() == [[1, -1, -1], [0, -1, -1]]  # fewer other items than k: padded


def test_pca_reduces_to_the_id_width():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 12)).astype(np.float32)
    out = pca_reduce(x, 4)
    assert out.shape == (100, 4)
    var = out.var(axis=0)
    assert (np.diff(var) <= 1e-4).all()  # components ordered by explained variance
    with pytest.raises(ValueError, match="cannot reduce"):
        pca_reduce(x, 20)
