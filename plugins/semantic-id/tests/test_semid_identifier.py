"""The semantic-id identifier: fit, tokens, collisions, codebook modes, artifacts, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import mtrec.text
from mtrec.errors import ConfigError
from mtrec_semantic_id.identifier import SemanticIdIdentifier, SemanticIdParams, disambiguate, group_sizes
from semid_helpers import fake_run, synthetic_items

TINY = dict(levels=3, codebook_size=8, latent_dim=4, hidden=[16], steps=24, kmeans_warmup_steps=4, batch_size=32,
            kmeans_iters=5)


def _fit(emb, dom, seed=0, **params):
    ident = SemanticIdIdentifier(SemanticIdParams(**{**TINY, **params}))
    ident.fit_embeddings(emb, dom, seed=seed, echo=False)
    return ident


def _unique_within_domains(tokens: np.ndarray, dom: np.ndarray) -> bool:
    rows = np.concatenate([dom[1:, None], tokens[1:]], axis=1)
    return len(np.unique(rows, axis=0)) == rows.shape[0]


def test_disambiguate_hand_checked():
    codes = np.array([[1, 2], [1, 2], [3, 4], [1, 2], [1, 2]])
    dom = np.array([0, 0, 0, 1, 0])
    assert disambiguate(codes, dom).tolist() == [0, 1, 0, 0, 2]
    assert group_sizes(codes, dom).tolist() == [3, 3, 1, 1, 3]


def test_forced_collisions_get_the_extra_level_with_hand_checkable_tokens():
    emb, dom = synthetic_items(n_domains=2, n_per_domain=40)
    emb[2] = emb[1]  # items 1, 2, 3 identical in domain 0 ...
    emb[3] = emb[1]
    first_d1 = int(np.flatnonzero(dom == 1)[0])
    emb[first_d1] = emb[1]  # ... and in domain 1 too (no clash: other domain)
    ident = _fit(emb, dom, levels=2, codebook_size=4)  # 80 items, 16 code pairs: collisions certain
    tok = ident.tokens
    L, N = 2, 4
    assert ident.levels_total == L + 1 and tok.shape == (81, 3)
    assert (tok[1:, 0] < N).all() and ((tok[1:, 1] >= N) & (tok[1:, 1] < 2 * N)).all()
    np.testing.assert_array_equal(tok[1:, :2], ident.codes[1:] + np.array([0, N]))
    assert tok[1:4, :2].tolist() == [tok[1, :2].tolist()] * 3
    assert (tok[1:4, 2] - L * N).tolist() == sorted((tok[1:4, 2] - L * N).tolist())  # ranked by item id
    assert tok[1, 2] == L * N and tok[2, 2] == L * N + 1 and tok[3, 2] == L * N + 2
    rank = disambiguate(ident.codes[1:], dom[1:])
    np.testing.assert_array_equal(tok[1:, 2], L * N + rank)
    assert ident.vocab_size == L * N + rank.max() + 1 == tok.max() + 1
    assert _unique_within_domains(tok, dom)
    s = ident.stats
    assert 0 < s["extra_level_share"] < s["collision_rate"] <= 1
    assert s["max_collision_group"] >= 3 and s["levels_total"] == 3
    assert tok[0].tolist() == [0, 0, 0]


def test_no_collision_no_extra_level_unless_asked():
    emb, dom = synthetic_items(n_domains=1, n_per_domain=8)
    ident = _fit(emb, dom, levels=2, codebook_size=16, steps=20)
    if ident.stats["collision_rate"] == 0:
        assert ident.levels_total == 2 and ident.vocab_size == 32
    always = _fit(emb, dom, levels=2, codebook_size=16, steps=20, collision="always-extra-level")
    assert always.levels_total == 3 and always.vocab_size >= 33
    assert _unique_within_domains(always.tokens, dom)


def test_fit_through_a_run_gives_the_contract(monkeypatch):
    emb, dom = synthetic_items(n_domains=3, n_per_domain=40)
    seen = {}

    def fake_encode(run_or_dataset, model="all-MiniLM-L6-v2", **kw):
        seen["model"], seen["option"] = model, kw.get("option")
        return emb

    monkeypatch.setattr(mtrec.text, "encode_item_texts", fake_encode)
    run = fake_run(dom, seed=3)
    ident = SemanticIdIdentifier(SemanticIdParams(**TINY), run)
    ident.fit(run)
    assert seen == {"model": "all-MiniLM-L6-v2", "option": "identifier.params.text_model"}
    tokens = ident.item_tokens()
    assert tokens.dtype == torch.long and tokens.shape[0] == 121 and tokens[0].eq(0).all()
    assert int(tokens.max()) < ident.vocab_size
    for d, items in enumerate(run.dataset.domain_items):
        dt = ident.domain_tokens(run, d)
        assert torch.equal(dt, tokens[items])
        assert len({tuple(r) for r in dt.tolist()}) == len(items)  # unique within the domain
    for l, (lo, hi) in enumerate(ident.level_ranges()):
        assert ((tokens[1:, l] >= lo) & (tokens[1:, l] < hi)).all()
    for key in ("usage/L1", "perplexity/L3", "collision_rate", "extra_level_share", "fit_seconds",
                "collision_rate/D0", "final_dcl"):
        assert key in ident.stats
    assert "semantic-id: 120 items" in ident.summary()
    rows = {(r["name"], r["domain"], r["k"]): r["value"] for r in ident.metric_rows()}
    assert rows[("usage", "all", 1)] == ident.stats["usage/L1"]
    assert rows[("collision_rate", "D2", None)] == ident.stats["collision_rate/D2"]
    assert all(r["stage"] == "identifier" and r["split"] == "fit" for r in ident.metric_rows())


def test_shared_vs_separate_codebooks():
    emb, dom = synthetic_items(n_domains=2, n_per_domain=40)
    shared = _fit(emb, dom)
    separate = _fit(emb, dom, shared_codebooks=False)
    L, N = TINY["levels"], TINY["codebook_size"]
    assert len(shared.models) == 1 and len(separate.models) == 2
    assert shared.code_vocab == L * N and separate.code_vocab == 2 * L * N
    t = separate.tokens
    d0, d1 = dom == 0, dom == 1
    assert (t[d0, :L] < L * N).all() and (t[d1, :L] >= L * N).all() and (t[d1, :L] < 2 * L * N).all()
    np.testing.assert_array_equal(t[d1, :L], separate.codes[d1] + np.arange(L) * N + L * N)
    assert "final_dcl" not in separate.stats  # one domain per model: Eq. 6 is skipped
    assert _unique_within_domains(shared.tokens, dom) and _unique_within_domains(t, dom)
    # a separate model only ever sees its own domain: new embeddings encode per domain
    np.testing.assert_array_equal(separate.encode(emb[d1], domain=1), separate.codes[d1])
    np.testing.assert_array_equal(shared.encode(emb[1:]), shared.codes[1:])


def test_contrastive_switch_changes_the_codes():
    emb, dom = synthetic_items(n_domains=2, n_per_domain=40)
    on = _fit(emb, dom, contrastive=True)
    off = _fit(emb, dom, contrastive=False)
    assert on.stats["final_dcl"] > 0 and "final_dcl" not in off.stats
    assert not np.array_equal(on.codes, off.codes)


def test_same_seed_same_codes_other_seed_other_codes():
    emb, dom = synthetic_items(n_domains=2, n_per_domain=40)
    a, b, c = _fit(emb, dom, seed=5), _fit(emb, dom, seed=5), _fit(emb, dom, seed=6)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    for ma, mb in zip(a.models, b.models):
        for (k, va), vb in zip(ma.state_dict().items(), mb.state_dict().values()):
            assert torch.equal(va, vb), k
    assert not np.array_equal(a.codes, c.codes)


def test_save_load_round_trip_and_validation(tmp_path):
    emb, dom = synthetic_items(n_domains=2, n_per_domain=40)
    run = fake_run(dom)
    ident = SemanticIdIdentifier(SemanticIdParams(**TINY), run)
    ident.fit_embeddings(emb, dom, echo=False)
    ident.save(tmp_path / "ident")
    assert {p.name for p in (tmp_path / "ident").iterdir()} == {"semantic_id.json", "codes.npz", "rqvae.pt"}
    meta = json.loads((tmp_path / "ident" / "semantic_id.json").read_text())
    assert meta["stats"] == ident.stats and meta["params"]["levels"] == TINY["levels"]

    loaded = SemanticIdIdentifier(SemanticIdParams(), run)  # other params: the saved ones win
    loaded.load(tmp_path / "ident")
    assert torch.equal(loaded.item_tokens(), ident.item_tokens())
    assert loaded.vocab_size == ident.vocab_size and loaded.stats == ident.stats
    assert loaded.params == ident.params
    np.testing.assert_array_equal(loaded.encode(emb[1:]), ident.codes[1:])  # the RQ-VAE weights too
    assert torch.equal(loaded.domain_tokens(run, 1), ident.domain_tokens(run, 1))
    loaded.save(tmp_path / "again")  # the engine saves what it loaded (identifier.from_run)
    again = SemanticIdIdentifier(SemanticIdParams(), run)
    again.load(tmp_path / "again")
    assert torch.equal(again.item_tokens(), ident.item_tokens())

    other = SemanticIdIdentifier(SemanticIdParams(), fake_run(dom[:-1]))
    with pytest.raises(ConfigError, match="80 items, this dataset has 79"):
        other.load(tmp_path / "ident")
    moved = dom.copy()
    moved[1] = 1
    with pytest.raises(ConfigError, match="other domains"):
        SemanticIdIdentifier(SemanticIdParams(), fake_run(moved)).load(tmp_path / "ident")
    with pytest.raises(ConfigError, match="no semantic-id identifier"):
        SemanticIdIdentifier(SemanticIdParams(), run).load(tmp_path)


def test_unfitted_identifier_says_so():
    with pytest.raises(RuntimeError, match="fit"):
        SemanticIdIdentifier().item_tokens()
