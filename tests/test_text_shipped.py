"""The bundled dataset ships its MiniLM embeddings: used only for exactly its texts and model."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mtrec import text
from mtrec.data.load import load_dataset, resolve_spec
from mtrec.plugins import Plugins


@pytest.fixture(scope="module")
def bundled():
    formats = Plugins().load().formats
    return load_dataset(resolve_spec(None, formats), formats)


def test_shipped_embeddings_match_a_fresh_encoding(bundled, monkeypatch, tmp_path):
    monkeypatch.setenv("MTREC_CACHE_DIR", str(tmp_path))
    calls: list[int] = []
    real_encode = text.encode_texts

    def spy(texts, *args, **kwargs):
        calls.append(len(texts))
        return real_encode(texts, *args, **kwargs)

    monkeypatch.setattr(text, "encode_texts", spy)
    vectors = text.encode_item_texts(bundled)
    assert calls == []  # nothing was encoded
    assert vectors.shape == (bundled.n_items + 1, 384) and not vectors[0].any()
    assert text.embeddings_path(bundled).is_file()  # copied into the cache for the next run
    picks = [1, 2, bundled.n_items // 2, bundled.n_items]
    fresh = real_encode([bundled.item_text[i] for i in picks])
    cosine = (fresh * vectors[picks]).sum(1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(vectors[picks], axis=1))
    assert cosine.min() > 0.999  # float16 storage, same vectors


def test_other_texts_or_models_do_not_use_them(bundled, monkeypatch, tmp_path):
    monkeypatch.setenv("MTREC_CACHE_DIR", str(tmp_path))
    edited = copy.copy(bundled)
    edited.item_text = list(bundled.item_text)
    edited.item_text[5] = edited.item_text[5] + " (new edition)"
    assert text.shipped_embeddings(edited, text.DEFAULT_TEXT_MODEL) is None
    assert text.shipped_embeddings(bundled, str(tmp_path)) is None  # a model folder, not the registered name
    assert text.shipped_embeddings(bundled, text.DEFAULT_TEXT_MODEL) is not None


def test_datasets_sharing_texts_encode_only_the_rest(bundled, monkeypatch, tmp_path):
    """A dataset that shares item texts with the bundle (a benchmark including its domains) reuses them."""
    monkeypatch.setenv("MTREC_CACHE_DIR", str(tmp_path))
    edited = copy.copy(bundled)
    edited.fingerprint = "edited-bundle"
    edited.item_text = list(bundled.item_text)
    edited.item_text[7] = "Clover Wonder Clips, 50 pack, red (a new item)"
    encoded: list[list[str]] = []
    real_encode = text.encode_texts

    def spy(texts, *args, **kwargs):
        encoded.append(list(texts))
        return real_encode(texts, *args, **kwargs)

    monkeypatch.setattr(text, "encode_texts", spy)
    vectors = text.encode_item_texts(edited)
    assert encoded == [[edited.item_text[7]]]
    shipped = text.shipped_embeddings(bundled, text.DEFAULT_TEXT_MODEL)
    unchanged = [i for i in range(1, bundled.n_items + 1) if i != 7]
    # identical texts (a few items share one) get one vector, equal up to batch-padding noise
    assert np.allclose(vectors[unchanged], shipped[unchanged], atol=2e-3)
    assert np.allclose(vectors[7], real_encode([edited.item_text[7]])[0], atol=1e-6)
