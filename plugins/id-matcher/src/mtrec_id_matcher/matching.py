"""Similarity search with faiss and the generation of new items' ID embeddings (papers/idp.md §2.5).

* :func:`build_index`: an inner-product index over unit vectors (so scores are cosines): exact
  (``IndexFlatIP``) for small catalogues, HNSW or IVF for large ones (§2.8 names HNSW);
* :func:`behavior_neighbors`: each source item's top-k most similar source items by pre-trained ID
  embedding (the positives of Eq. 6);
* :func:`generate` (Eq. 8–9): each target item's top-m source items by matcher similarity, and the
  similarity-weighted average of their ID embeddings;
* :func:`pca_reduce`: the ID+text variant's PCA of text vectors to the ID embedding width.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class IndexChoice:
    kind: str  # "exact" | "hnsw" | "ivf"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nprobe: int = 16


def choose_index(n: int, index: str, exact_max: int, large: str, **tuning: int) -> IndexChoice:
    """``index: auto`` searches exactly up to ``exact_max`` vectors and with ``large`` above."""
    kind = index if index != "auto" else ("exact" if n <= exact_max else large)
    return IndexChoice(kind, **tuning)


def build_index(vectors: np.ndarray, choice: IndexChoice, k: int = 1):
    """A faiss inner-product index over ``vectors`` ``[n, d]`` (float32; unit rows give cosines)."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if choice.kind == "exact":
        index = faiss.IndexFlatIP(dim)
    elif choice.kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, choice.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = max(choice.hnsw_ef_search, k)
    elif choice.kind == "ivf":
        # faiss's rule of thumb: about 4 sqrt(n) lists, at least 39 training points per list.
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(choice.ivf_nprobe, nlist)  # faiss's wrapper keeps the quantizer referenced
    else:
        raise ValueError(f"unknown index kind {choice.kind!r}")
    index.add(vectors)
    return index


def search(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (similarities, positions) per query; faiss pads short answers with -1."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    return index.search(queries, k)


def behavior_neighbors(id_embeddings: np.ndarray, k: int, choice: IndexChoice) -> np.ndarray:
    """For each row, the positions of its ``k`` most cosine-similar other rows ``[n, k]`` (-1 pads)."""
    unit = _unit(id_embeddings)
    k_eff = min(k, unit.shape[0] - 1)
    out = np.full((unit.shape[0], k), -1, dtype=np.int64)
    if k_eff <= 0:
        return out
    index = build_index(unit, choice, k_eff + 1)
    _, positions = search(index, unit, k_eff + 1)
    for row, found in enumerate(positions):
        found = [p for p in found if p >= 0 and p != row][:k_eff]
        out[row, : len(found)] = found
    return out


def similarity_weights(similarities: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Eq. 9's ``score_{i,j} = sim_ij / sum_k sim_ik`` over the found items.

    Similarities are clamped at 0 first (a negative cosine would flip an embedding's sign); a row
    whose similarities are all 0 averages its found items uniformly; -1 positions weigh 0.
    """
    found = positions >= 0
    sims = np.where(found, np.clip(similarities, 0.0, None), 0.0).astype(np.float64)
    totals = sims.sum(axis=1, keepdims=True)
    uniform = found / np.maximum(found.sum(axis=1, keepdims=True), 1)
    return np.where(totals > 0, sims / np.where(totals > 0, totals, 1.0), uniform).astype(np.float32)


@dataclass
class Generated:
    embeddings: np.ndarray  # [q, H]: one generated ID embedding per query item
    neighbors: np.ndarray  # [q, m]: positions in the source set (-1 pads)
    weights: np.ndarray  # [q, m]: Eq. 9 scores
    index_kind: str
    build_seconds: float
    search_seconds: float


def generate(
    source_vectors: np.ndarray,
    source_embeddings: np.ndarray,
    query_vectors: np.ndarray,
    m: int,
    choice: IndexChoice,
) -> Generated:
    """Eq. 8–9: top-``m`` source items per query by matcher similarity, weighted ID-embedding average."""
    started = time.perf_counter()
    index = build_index(source_vectors, choice, m)
    built = time.perf_counter()
    similarities, positions = search(index, query_vectors, min(m, source_vectors.shape[0]))
    searched = time.perf_counter()
    weights = similarity_weights(similarities, positions)
    rows = source_embeddings[np.clip(positions, 0, None)]  # [q, m, H]; -1 rows weigh 0
    embeddings = np.einsum("qm,qmh->qh", weights, rows).astype(np.float32)
    return Generated(embeddings, positions, weights, choice.kind, built - started, searched - built)


def pca_reduce(vectors: np.ndarray, dim: int) -> np.ndarray:
    """PCA (faiss ``PCAMatrix``, fitted on ``vectors`` themselves) to ``dim`` dimensions."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if dim > vectors.shape[1]:
        raise ValueError(f"cannot reduce {vectors.shape[1]}-d text vectors to {dim} dimensions")
    pca = faiss.PCAMatrix(vectors.shape[1], dim)
    pca.train(vectors)
    return pca.apply(vectors)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
