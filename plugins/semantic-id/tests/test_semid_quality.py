"""Identifier quality: step budgets, warm-up, dead codes on a small catalogue, neighbour agreement,
the degeneracy warning, and the training-free residual-kmeans method."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from mtrec.config import format_errors
from mtrec_semantic_id.identifier import (
    DEFAULT_STEPS, DegenerateIdentifierWarning, SemanticIdIdentifier, SemanticIdParams,
)
from mtrec_semantic_id.quality import degeneracy, neighbour_agreement
from mtrec_semantic_id.rqvae import (
    RQVAE, WARMUP_LATENT_NORM, BatchStream, TrainConfig, dead_code_window, train_rqvae,
)
from semid_helpers import bundled_scientific, clustered, fake_run, synthetic_items

# A small MLP and batch keep a default-budget fit on 2,000 real items at a few seconds on one thread;
# the budget itself (steps unset: DEFAULT_STEPS) and the codebooks (4 x 256) are the defaults.
SMALL = dict(hidden=[64], batch_size=128)


@pytest.fixture(scope="module")
def scientific():
    return bundled_scientific(2000)


@pytest.fixture(scope="module")
def good_fit(scientific):
    torch.set_num_threads(1)
    emb, dom = scientific
    ident = SemanticIdIdentifier(SemanticIdParams(**SMALL))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateIdentifierWarning)  # a good fit must not warn
        ident.fit_embeddings(emb, dom, seed=0, echo=False)
    return ident


class CountingAdamW(torch.optim.AdamW):
    steps = 0

    def step(self, closure=None):
        CountingAdamW.steps += 1
        return super().step(closure)


@pytest.fixture
def count_steps(monkeypatch):
    import mtrec_semantic_id.rqvae as rqvae

    CountingAdamW.steps = 0
    monkeypatch.setattr(rqvae.torch.optim, "AdamW", CountingAdamW)
    return CountingAdamW


# --------------------------------------------------------------------------- a small real catalogue


def test_small_catalogue_default_budget_uses_the_codebooks(good_fit):
    s = good_fit.stats
    assert good_fit.n_items == 2000 and s["rqvae_steps"] == DEFAULT_STEPS
    # 2,000 items can fill all 256 first-level codes (~8 items each): require most of them used
    # and spread (the gmc recipe's old 10-epoch budget gave 13.7% usage and perplexity 8 here).
    assert s["usage/L1"] >= 0.9 and s["perplexity/L1"] >= 150
    assert s["collision_rate"] < 0.15 and s["max_collision_group"] <= 20
    assert s["degenerate"] == 0.0 and good_fit.quality_warnings == []
    # codes follow the text: far above what random codes of the same sizes would score
    assert s["neighbour_agreement/L1"] > 0.25 > 10 * s["neighbour_agreement_chance/L1"]


def test_dead_codes_are_reseeded_on_a_small_catalogue(scientific):
    # 2,000 items at batch 128: a code is dead after max(50, 2 * 16) = 50 unchosen steps, a window
    # that fits twenty times in 1,000 steps (the old check every 50 steps never ran in the gmc
    # recipe's 20-step fits of such a catalogue)
    assert dead_code_window(50, 2000, 128) == 50
    emb, dom = scientific
    usage = {}
    for dead in (50, 0):
        # randomly initialised codebooks: most codes start far from every item
        ident = SemanticIdIdentifier(SemanticIdParams(**SMALL, steps=1000, kmeans_init=False, dead_code_steps=dead))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateIdentifierWarning)
            ident.fit_embeddings(emb, dom, seed=0, echo=False)
        usage[dead] = ident.stats["usage/L1"]
        assert (ident.stats["dead_code_resets"] > 0) == (dead > 0)
    assert usage[50] >= 0.9 and usage[50] > usage[0] + 0.3


def test_starved_fit_warns_loudly_with_the_numbers(scientific, capsys):
    emb, dom = scientific
    ident = SemanticIdIdentifier(SemanticIdParams(**SMALL, steps=3, kmeans_warmup_steps=0, kmeans_init=False))
    with pytest.warns(DegenerateIdentifierWarning) as caught:
        ident.fit_embeddings(emb, dom, seed=0, echo=False)
    message = str(caught[0].message)
    s = ident.stats
    assert s["degenerate"] == 1.0 and ident.quality_warnings
    assert f"level-1 usage {s['usage/L1']:.1%}" in message and "identifier.params.steps" in message
    assert "3 RQ-VAE steps" in message
    assert "warning: semantic-id identifier is degenerate" in capsys.readouterr().err
    rows = {(r["name"], r["domain"], r["k"], r["value"]) for r in ident.metric_rows()}
    assert ("degenerate", "all", None, 1.0) in rows
    assert ident.summary().startswith("DEGENERATE")


def test_degeneracy_thresholds_scale_with_the_catalogue():
    # the numbers: 2,400 items, 13.7% of 256 codes, perplexity 8, 71% collide, group of 154
    reasons = degeneracy([("", 2400, 0.137, 8.0)], codebook_size=256, levels=4, n_items=2400,
                         collision_rate=0.71, max_group=154)
    assert len(reasons) == 4
    assert "level-1 usage 13.7% (35 of 256 codes; expected >= 128 for 2400 items)" in reasons[0]
    assert "perplexity 8" in reasons[1] and "71% of items collide" in reasons[2] and "154" in reasons[3]
    # 500 items can fill only ~125 first-level codes: 100 used is fine, 50 is not
    ok = degeneracy([("", 500, 100 / 256, 80.0)], codebook_size=256, levels=4, n_items=500,
                    collision_rate=0.05, max_group=3)
    assert ok == []
    low = degeneracy([("Arts", 500, 50 / 256, 40.0)], codebook_size=256, levels=4, n_items=500,
                     collision_rate=0.05, max_group=3)
    assert len(low) == 1 and "(Arts)" in low[0] and "expected >= 63" in low[0]
    # a code space hardly larger than the catalogue (4^2 = 16 tuples for 80 items): collisions are the
    # layout's, not a failed fit
    assert degeneracy([("", 80, 1.0, 3.9)], codebook_size=4, levels=2, n_items=80,
                      collision_rate=0.9, max_group=12) == []


# --------------------------------------------------------------------------- neighbour agreement


def test_neighbour_agreement_against_a_hand_computation():
    emb = np.array([[0, 0], [1, 0], [0.9, 0.1], [0, 1], [1, 0], [1, 0.1]], dtype=np.float32)
    dom = np.array([-1, 0, 0, 0, 1, 1])
    codes = np.array([0, 7, 7, 3, 7, 5])
    # k=1: 1->2 (same code), 2->1 (same), 3->2 (7 != 3); 4->5, 5->4 (7 != 5). Item 4 equals item 1 but
    # sits in another domain, so item 1 is never its neighbour.
    overall, per_domain, chance = neighbour_agreement(emb, dom, codes, k=1)
    assert overall == pytest.approx(2 / 5) and per_domain == pytest.approx({0: 2 / 3, 1: 0.0})
    # chance: items 1 and 2 share their code with 1 of the 2 other items of domain 0, the rest with none
    assert chance == pytest.approx((0.5 + 0.5) / 5)
    # k=2: 1 -> {2, 3}: 1/2; 2 -> {1, 3}: 1/2; 3 -> {1, 2}: 0; domain 1 has only one other item
    overall, per_domain, _ = neighbour_agreement(emb, dom, codes, k=2)
    assert overall == pytest.approx(1 / 5) and per_domain == pytest.approx({0: 1 / 3, 1: 0.0})
    # cosine: scaling an item's vector changes nothing
    scaled = emb.copy()
    scaled[3] *= 10
    assert neighbour_agreement(scaled, dom, codes, k=1)[0] == pytest.approx(2 / 5)


def test_neighbour_agreement_sample_is_seeded_and_close_to_the_full_value():
    x, blob = clustered(300, 10, 8, spread=1.5)
    emb = np.concatenate([np.zeros((1, 8), np.float32), x])
    dom = np.concatenate([[-1], np.arange(blob.size) % 2])
    codes = np.concatenate([[0], blob])
    full = neighbour_agreement(emb, dom, codes)[0]
    a = neighbour_agreement(emb, dom, codes, sample=800, seed=1)[0]
    assert a == neighbour_agreement(emb, dom, codes, sample=800, seed=1)[0]
    assert a != full and abs(a - full) < 0.05


def test_neighbour_agreement_reaches_stats_and_registry_rows():
    emb, dom = synthetic_items(n_domains=2, n_per_domain=40)
    ident = SemanticIdIdentifier(SemanticIdParams(levels=2, codebook_size=8, latent_dim=4, hidden=[16],
                                                  steps=40, kmeans_warmup_steps=10, batch_size=32),
                                 fake_run(dom))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateIdentifierWarning)
        ident.fit_embeddings(emb, dom, echo=False)
    expected = neighbour_agreement(emb, dom, ident.codes[:, 0])
    assert ident.stats["neighbour_agreement/L1"] == round(expected[0], 4)
    rows = {(r["name"], r["domain"], r["k"]): r["value"] for r in ident.metric_rows()}
    assert rows[("neighbour_agreement", "all", 1)] == ident.stats["neighbour_agreement/L1"]
    assert rows[("neighbour_agreement", "D1", 1)] == round(expected[1][1], 4)
    assert ("degenerate", "all", None) in rows and "neighbour agreement@10" in ident.summary()


# --------------------------------------------------------------------------- step budget and warm-up


def test_step_budget_is_honoured(count_steps):
    x = torch.from_numpy(clustered(25, 4, 8)[0])  # 100 items
    model = RQVAE(8, [16], 4, 2, 8)
    out = train_rqvae(model, x, None, TrainConfig(steps=37, batch_size=32, kmeans_warmup_steps=5),
                      generator=torch.Generator().manual_seed(0))
    assert count_steps.steps == 37 and out["steps"] == 37
    count_steps.steps = 0  # epochs (compatibility): passes of ceil(100 / 32) = 4 steps
    train_rqvae(RQVAE(8, [16], 4, 2, 8), x, None, TrainConfig(epochs=3, batch_size=32),
                generator=torch.Generator().manual_seed(0))
    assert count_steps.steps == 12


def test_step_budget_through_the_identifier_per_codebook(count_steps):
    emb, dom = synthetic_items(n_domains=2, n_per_domain=40)
    params = dict(levels=2, codebook_size=8, latent_dim=4, hidden=[16], steps=25, kmeans_warmup_steps=5,
                  epochs=999)  # steps wins over epochs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateIdentifierWarning)
        SemanticIdIdentifier(SemanticIdParams(**params)).fit_embeddings(emb, dom, echo=False)
        assert count_steps.steps == 25
        count_steps.steps = 0
        separate = SemanticIdIdentifier(SemanticIdParams(**params, shared_codebooks=False))
        separate.fit_embeddings(emb, dom, echo=False)
    assert count_steps.steps == 50 and separate.stats["rqvae_steps"] == 50  # 25 per domain
    assert SemanticIdParams().budget() == (DEFAULT_STEPS, None)
    assert SemanticIdParams(epochs=7).budget() == (None, 7)
    assert SemanticIdParams(epochs=7, steps=9, kmeans_warmup_steps=0).budget() == (9, None)


def test_batches_are_full_even_on_a_tiny_catalogue():
    stream = BatchStream(10, 4, torch.Generator().manual_seed(0))
    batches = [stream.next() for _ in range(5)]
    assert all(b.numel() == 4 for b in batches)
    drawn = torch.cat(batches)
    assert torch.equal(torch.bincount(drawn, minlength=10), torch.full((10,), 2))  # two whole passes
    assert TrainConfig(batch_size=1024).effective_batch(300) == 300
    assert dead_code_window(50, 100_000, 1024) == 2 * 98  # long enough to see every item


def test_kmeans_initialisation_waits_for_the_warm_up(count_steps, monkeypatch):
    x = torch.from_numpy(clustered(25, 4, 8)[0])
    torch.manual_seed(0)
    model = RQVAE(8, [16], 4, 2, 8)
    start_books = model.codebooks.detach().clone()
    with torch.no_grad():
        untrained = model.encoder(x).clone()
    seen = {}
    original = RQVAE.init_kmeans

    def spy(self, data, **kw):
        seen["steps_before"] = count_steps.steps
        seen["books_untouched"] = torch.equal(self.codebooks.detach(), start_books)
        with torch.no_grad():
            seen["encoder_out"] = self.encoder(data).clone()
        original(self, data, **kw)

    monkeypatch.setattr(RQVAE, "init_kmeans", spy)
    train_rqvae(model, x, None, TrainConfig(steps=30, batch_size=32, kmeans_warmup_steps=12, lr=1e-2),
                generator=torch.Generator().manual_seed(0))
    # k-means ran after the 12 reconstruction-only steps, on the trained and rescaled encoder, and
    # the warm-up did not touch the codebooks
    assert seen["steps_before"] == 12 and seen["books_untouched"]
    z = seen["encoder_out"]
    assert abs(float(z.norm(dim=1).mean()) - WARMUP_LATENT_NORM) < 1e-3
    direction = torch.nn.functional.cosine_similarity(z.flatten(), untrained.flatten(), dim=0)
    assert float(direction) < 0.9  # not just the untrained encoder rescaled


def test_warm_up_must_fit_in_the_step_budget():
    with pytest.raises(ValidationError) as err:
        SemanticIdParams(steps=100, kmeans_warmup_steps=100)
    text = format_errors(err.value, prefix="identifier.params")
    assert "identifier.params.kmeans_warmup_steps" in text and "below steps (100)" in text
    with pytest.raises(ValidationError, match="method"):
        SemanticIdParams(method="kmeans")


# --------------------------------------------------------------------------- residual k-means


def _rkm(emb, dom, seed=0, **params):
    ident = SemanticIdIdentifier(SemanticIdParams(method="residual-kmeans", levels=3, codebook_size=8,
                                                  latent_dim=6, **params), fake_run(dom))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateIdentifierWarning)
        ident.fit_embeddings(emb, dom, seed=seed, echo=False)
    return ident


def test_residual_kmeans_is_deterministic_and_follows_the_blobs():
    emb, dom = synthetic_items(n_domains=2, n_per_domain=80)
    a, b, c = _rkm(emb, dom, seed=3), _rkm(emb, dom, seed=3), _rkm(emb, dom, seed=4)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert torch.equal(a.models[0].codebooks, b.models[0].codebooks)
    assert not np.array_equal(a.codes, c.codes)
    assert a.models[0].components.shape == (16, 6)  # PCA 16 -> latent_dim
    assert "rqvae_steps" not in a.stats and a.stats["neighbour_agreement/L1"] > 0.8  # tight blobs
    rows = np.concatenate([dom[1:, None], a.tokens[1:]], axis=1)
    assert len(np.unique(rows, axis=0)) == rows.shape[0]  # collisions resolved as for the RQ-VAE


def test_residual_kmeans_save_load_round_trip(tmp_path):
    emb, dom = synthetic_items(n_domains=2, n_per_domain=80)
    for shared in (True, False):
        ident = _rkm(emb, dom, shared_codebooks=shared)
        folder = tmp_path / f"shared-{shared}"
        ident.save(folder)
        assert {p.name for p in folder.iterdir()} == {"semantic_id.json", "codes.npz", "residual_kmeans.pt"}
        loaded = SemanticIdIdentifier(SemanticIdParams(), fake_run(dom))  # the saved params win
        loaded.load(folder)
        assert loaded.params.method == "residual-kmeans" and loaded.params.shared_codebooks is shared
        assert torch.equal(loaded.item_tokens(), ident.item_tokens()) and loaded.stats == ident.stats
        for d in (0, 1):  # the quantiser itself came back: new embeddings encode as before
            items = dom == d
            np.testing.assert_array_equal(loaded.encode(emb[items], domain=d), ident.codes[items])
    separate = _rkm(emb, dom, shared_codebooks=False)
    assert len(separate.models) == 2 and separate.tokens[dom == 1, 0].min() >= 3 * 8  # domain 1's ranges
