"""Helpers of the semantic-id tests: synthetic clustered embeddings and a fake run."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch


def clustered(n_per: int, centers: int, dim: int, seed: int = 0, spread: float = 0.1, scale: float = 3.0):
    """``centers`` Gaussian blobs in ``dim`` dimensions; returns (x [n, dim], blob id [n])."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(centers, dim)) * scale
    blob = np.repeat(np.arange(centers), n_per)
    x = mu[blob] + spread * rng.normal(size=(blob.size, dim))
    return x.astype(np.float32), blob


def synthetic_items(n_domains: int = 2, n_per_domain: int = 60, dim: int = 16, seed: int = 0):
    """Embeddings ``[n_items + 1, dim]`` (row 0 zeros) and item_domain ``[n_items + 1]`` (-1 at 0).

    Each domain's items come from its own few blobs, so domains are separable, as with real text.
    """
    rng = np.random.default_rng(seed)
    rows, doms = [np.zeros((1, dim), np.float32)], [np.array([-1])]
    for d in range(n_domains):
        x, _ = clustered(n_per_domain // 4, 4, dim, seed=seed + 10 * d + 1, spread=0.5)
        x += rng.normal(size=dim).astype(np.float32) * 2
        rows.append(x)
        doms.append(np.full(x.shape[0], d))
    return np.concatenate(rows).astype(np.float32), np.concatenate(doms).astype(np.int64)


class FakeDataset(SimpleNamespace):
    @property
    def n_items(self) -> int:
        return len(self.item_domain) - 1

    @property
    def domain_items(self):
        return [np.flatnonzero(self.item_domain == d) for d in range(len(self.domains))]


def fake_run(item_domain: np.ndarray, seed: int = 0, texts: list[str] | None = None):
    n_domains = int(item_domain.max()) + 1
    dataset = FakeDataset(
        name="synthetic", domains=[f"D{d}" for d in range(n_domains)], item_domain=item_domain,
        item_text=texts or ["" if i == 0 else f"item {i}" for i in range(len(item_domain))],
        fingerprint=f"synthetic-{len(item_domain)}",
    )
    return SimpleNamespace(dataset=dataset, seed=seed, device=torch.device("cpu"), progress=False)


def bundled_scientific(n: int):
    """The first ``n`` Scientific items of the bundled amazon-mini and their shipped MiniLM embeddings.

    Returns (embeddings ``[n + 1, 384]`` float32 with row 0 zeros, item_domain ``[n + 1]``, all 0 but
    row 0): a real small catalogue, no text model run.
    """
    from mtrec.data.load import load_dataset, resolve_spec
    from mtrec.plugins import get_plugins
    from mtrec.text import shipped_embeddings

    formats = get_plugins().formats
    dataset = load_dataset(resolve_spec("amazon-mini", formats), formats, use_cache=False)
    emb = shipped_embeddings(dataset, "all-MiniLM-L6-v2")
    assert emb is not None, "amazon-mini ships its MiniLM embeddings"
    scientific = np.flatnonzero(np.asarray(dataset.item_domain) == dataset.domains.index("Scientific"))[:n]
    assert scientific.size == n
    rows = np.concatenate([[0], scientific])
    item_domain = np.zeros(n + 1, dtype=np.int64)
    item_domain[0] = -1
    return emb[rows].astype(np.float32), item_domain
