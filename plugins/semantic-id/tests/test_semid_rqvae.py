"""RQ-VAE building blocks: residual levels, k-means initialisation, dead codes, Eq. 6."""

from __future__ import annotations

import math

import torch

from mtrec_semantic_id.identifier import level_stats
from mtrec_semantic_id.rqvae import (
    RQVAE, TrainConfig, domain_contrastive_loss, kmeans, loss_terms, reseed_dead_codes, train_rqvae,
)
from semid_helpers import clustered


def _fit(x, levels, *, seed=0, kmeans_init=True, dead=0, epochs=30, n_codes=16, domains=None, weight=0.0):
    torch.manual_seed(seed)
    model = RQVAE(x.shape[1], [32], 8, levels, n_codes)
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, kmeans_init=kmeans_init, kmeans_iters=10,
                      dead_code_steps=dead, contrastive_weight=weight)
    out = train_rqvae(model, x, domains, cfg, generator=torch.Generator().manual_seed(seed))
    return model, out


def test_more_levels_reconstruct_better():
    x = torch.from_numpy(clustered(20, 10, 16, spread=1.0)[0])
    errors = [_fit(x, levels)[0].reconstruction_error(x) for levels in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]
    # and within one quantiser, each extra level shrinks the residual
    model = _fit(x, 3)[0]
    with torch.no_grad():
        q = model.quantize(model.encoder(x))
        z = model.encoder(x)
        books = model.codebooks
        partial = [z - sum(books[l][q.codes[:, l]] for l in range(k)) for k in range(1, 4)]
    norms = [float(p.pow(2).sum(1).mean()) for p in partial]
    assert norms[0] > norms[1] > norms[2]


def test_kmeans_init_uses_more_codes_than_random_init_on_clustered_data():
    x = torch.from_numpy(clustered(20, 16, 16, spread=0.05, scale=4.0)[0])
    usage = {}
    for init in (True, False):
        torch.manual_seed(0)
        model = RQVAE(16, [32], 8, 1, 16)
        if init:
            model.init_kmeans(x, iters=10, generator=torch.Generator().manual_seed(0))
        codes = model.codes(x)[:, 0].numpy()
        usage[init] = level_stats(codes, 16)[0]
    assert usage[True] >= 0.9 and usage[True] > usage[False] + 0.3


def test_kmeans_finds_separated_blobs_and_is_seeded():
    x, blob = clustered(10, 4, 3, spread=0.01, scale=10.0)
    x = torch.from_numpy(x)
    c1 = kmeans(x, 4, iters=10, generator=torch.Generator().manual_seed(1))
    c2 = kmeans(x, 4, iters=10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(c1, c2)
    assign = ((x[:, None] - c1[None]) ** 2).sum(-1).argmin(1).numpy()
    for b in range(4):  # each blob maps to one centre, different blobs to different centres
        assert len(set(assign[blob == b])) == 1
    assert len(set(assign)) == 4
    few = kmeans(x[:3], 8, iters=2, generator=torch.Generator().manual_seed(0))  # fewer points than codes
    assert few.shape == (8, 3) and torch.isfinite(few).all()


def test_dead_code_reset_moves_unused_codes_onto_residuals():
    torch.manual_seed(0)
    model = RQVAE(4, [8], 2, 1, 4)
    model.codebooks.data[0] = torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [0.1, 0.0]])
    opt = torch.optim.AdamW(model.parameters())
    residual = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    usage = torch.tensor([[5, 0, 0, 1]])
    ones = torch.ones_like(model.codebooks)
    opt.state[model.codebooks] = {"exp_avg": ones.clone(), "exp_avg_sq": ones.clone()}
    n = reseed_dead_codes(model, opt, usage, [residual], torch.Generator().manual_seed(0))
    assert n == 2
    book = model.codebooks.data[0]
    assert torch.equal(book[0], torch.zeros(2)) and torch.equal(book[3], torch.tensor([0.1, 0.0]))
    for k in (1, 2):  # revived codes now sit on real residuals
        assert any(torch.equal(book[k], r) for r in residual)
        assert opt.state[model.codebooks]["exp_avg"][0, k].abs().sum() == 0
    assert opt.state[model.codebooks]["exp_avg"][0, 0].abs().sum() > 0


def test_dead_code_reset_raises_codebook_usage_in_training():
    x = torch.from_numpy(clustered(16, 16, 16, spread=0.3, scale=4.0)[0])
    used = {}
    for dead in (0, 2):
        model, out = _fit(x, 1, kmeans_init=False, dead=dead, epochs=20)
        used[dead] = level_stats(model.codes(x)[:, 0].numpy(), 16)[0]
        if dead:
            assert out["dead_code_resets"] > 0
    assert used[2] > used[0] + 0.2


def test_contrastive_loss_matches_a_hand_computation():
    zq = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    dom = torch.tensor([0, 0, 1])
    # inner products: row0 [1,0,1], row1 [0,1,1], row2 [1,1,2]
    e = math.e
    by_hand = -(
        math.log((e + 1) / (e + 1 + e))
        + math.log((1 + e) / (1 + e + e))
        + math.log(e**2 / (e + e + e**2))
    ) / 3
    assert abs(float(domain_contrastive_loss(zq, dom)) - by_hand) < 1e-6
    # temperature 2 halves the logits; one domain only -> 0
    halved = -(math.log((e**0.5 + 1) / (e**0.5 + 1 + e**0.5)) * 2 + math.log(e / (2 * e**0.5 + e))) / 3
    assert abs(float(domain_contrastive_loss(zq, dom, temperature=2.0)) - halved) < 1e-6
    assert float(domain_contrastive_loss(zq, torch.zeros(3, dtype=torch.long))) == 0.0
    # cosine normalises first
    zn = torch.nn.functional.normalize(zq, dim=1)
    assert abs(float(domain_contrastive_loss(zq, dom, similarity="cosine"))
               - float(domain_contrastive_loss(zn, dom))) < 1e-6


def test_contrastive_loss_equals_the_masked_logsumexp_form_even_when_terms_underflow():
    torch.manual_seed(0)
    dom = torch.randint(0, 3, (48,))
    for scale in (1.0, 30.0):  # at 30 some rows' same-domain terms underflow after the max shift
        z = (torch.randn(48, 8) * scale).requires_grad_()
        logits = z @ z.t()
        same = dom[None] == dom[:, None]
        ref = (torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~same, float("-inf")), 1)).mean()
        (g_ref,) = torch.autograd.grad(ref, z)
        ours = domain_contrastive_loss(z, dom + 7)  # domain ids need not start at 0
        (g_ours,) = torch.autograd.grad(ours, z)
        ours_v, ref_v = float(ours.detach()), float(ref.detach())
        assert math.isfinite(ours_v) and abs(ours_v - ref_v) <= 1e-4 * max(1.0, abs(ref_v))
        assert torch.allclose(g_ours, g_ref, rtol=1e-3, atol=1e-3)


def test_contrastive_switch_changes_the_loss_and_its_gradients():
    x = torch.from_numpy(clustered(8, 4, 16)[0])
    dom = torch.arange(x.shape[0]) % 2
    torch.manual_seed(0)
    model = RQVAE(16, [32], 8, 2, 8)
    off, _ = loss_terms(model, x, dom, contrastive_weight=0.0)
    on, _ = loss_terms(model, x, dom, contrastive_weight=1.0)
    assert "dcl" not in off and float(on["dcl"].detach()) > 0
    assert torch.allclose(on["recon"], off["recon"]) and torch.allclose(on["rq"], off["rq"])
    on["dcl"].backward()
    assert model.codebooks.grad.abs().sum() > 0  # reaches the codebooks ...
    assert model.encoder[0].weight.grad.abs().sum() > 0  # ... and, straight through, the encoder
    assert model.decoder[0].weight.grad is None or model.decoder[0].weight.grad.abs().sum() == 0


def test_rescale_latent_preserves_the_auto_encoder():
    torch.manual_seed(0)
    x = torch.from_numpy(clustered(10, 4, 8)[0])
    model = RQVAE(8, [16], 4, 1, 4)
    with torch.no_grad():
        before = model.decoder(model.encoder(x))
        factor = model.rescale_latent(x, 3.0)
        z = model.encoder(x)
        after = model.decoder(z)
    assert factor > 0 and abs(float(z.norm(dim=1).mean()) - 3.0) < 1e-4
    assert torch.allclose(before, after, atol=1e-5)
