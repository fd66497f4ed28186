"""Generative recommendation: the seq2seq encoder, trie-constrained beam search, unified-then-LoRA."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mtrec.engine as engine
import mtrec.training.trainer as trainer
from mtrec.builtins.lora import (
    AdapterView, UnifiedThenLoRA, UnifiedThenLoRAParams, add_adapter, base_state_dict, default_target_modules,
)
from mtrec.builtins.seq2seq import Seq2Seq, Seq2SeqParams, build_seq2seq
from mtrec.builtins.trie_beam import TrieBeamDecoder, TrieBeamParams, beam_search, build_trie, score_candidates
from mtrec.config import resolve
from mtrec.engine import execute_run
from mtrec.errors import ConfigError
from mtrec.plugins import Plugins

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def plugins():
    """The built-in plugin registers seq2seq, trie-beam and unified-then-lora: a run of this module
    that cannot find them fails (KeyError / ConfigError), it is not skipped."""
    return Plugins().load()


def test_the_builtin_plugin_registers_the_generative_parts(plugins):
    catalogue = plugins.catalogue
    assert catalogue.get("encoder", "seq2seq").factory is build_seq2seq
    assert catalogue.get("encoder", "seq2seq").provides == {"generative"}
    assert catalogue.get("encoder", "seq2seq").requires == {"identifier": {"tokens"}}
    assert catalogue.get("decoder", "trie-beam").factory is TrieBeamDecoder
    assert catalogue.get("decoder", "trie-beam").requires == {"encoder": {"generative"}, "identifier": {"trie"}}
    assert catalogue.get("transfer", "unified-then-lora").factory is UnifiedThenLoRA
    assert all(catalogue.get(kind, name).plugin == "mtrec"
               for kind, name in (("encoder", "seq2seq"), ("decoder", "trie-beam"), ("transfer", "unified-then-lora")))


# --------------------------------------------------------------------------- trie and search

# Five items, L = 3, level codes disjoint (level l uses tokens 3l .. 3l+2), shared prefixes.
TOKENS = torch.tensor([[0, 3, 6], [0, 3, 7], [0, 4, 6], [1, 5, 8], [2, 3, 6]])
ITEMS = torch.tensor([11, 12, 13, 14, 15])
# Step logits of a fake model (same for every prefix): an item's score is the sum of its tokens'
# log-softmax, so by logit sums: 12: 1+2+1.5=4.5, 11: 3.0, 15: 2.5, 14: 3+0.1-1=2.1, 13: 1.0.
STEP_LOGITS = torch.tensor([
    [1.0, 3.0, 0.5, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 2.0, 0.0, 0.1, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0.0, 1.5, -1.0],
])


class FixedLogits(nn.Module):
    """A fake generative model: logits depend on the user, the step and the last token only."""

    def __init__(self, per_user_step: torch.Tensor, per_last_token: torch.Tensor | None = None) -> None:
        super().__init__()
        self.per_user_step = per_user_step  # [U, L, V]
        self.per_last_token = per_last_token  # [V + 1, V] (row V: no token yet)

    def encode(self, batch):
        return batch["user"]

    def select_state(self, state, index):
        return state[index]

    def next_token_logits(self, state, prefix):
        logits = self.per_user_step[state, prefix.shape[1]]
        if self.per_last_token is not None:
            last = prefix[:, -1] if prefix.shape[1] else torch.full_like(state, self.per_last_token.shape[0] - 1)
            logits = logits + self.per_last_token[last]
        return logits

    def step(self, state, prefix):
        return self.next_token_logits(state, prefix), state

    def sequence_logits(self, state, tokens):
        return torch.stack([self.next_token_logits(state, tokens[:, :l]) for l in range(tokens.shape[1])], 1)


def _batch(users: list[int]) -> dict[str, torch.Tensor]:
    users_t = torch.tensor(users)
    return {"user": users_t, "domain": torch.zeros_like(users_t)}


@pytest.mark.parametrize("layout", ["padded", "sparse"])
def test_trie_allows_exactly_the_continuations_of_known_ids(layout):
    trie = build_trie(TOKENS, ITEMS, layout)
    assert [level.layout for level in trie.levels] == [layout] * 3
    expected = {
        (): [0, 1, 2], (0,): [3, 4], (0, 3): [6, 7], (0, 4): [6], (1,): [5], (1, 5): [8], (2,): [3],
        (2, 3): [6], (0, 5): [], (1, 3): [], (0, 3, 6): [],
    }
    for prefix, allowed in expected.items():
        assert trie.allowed_tokens(list(prefix)) == allowed, prefix
    assert trie.n_items == 5
    with pytest.raises(ValueError, match="duplicates"):
        build_trie(torch.cat([TOKENS, TOKENS[:1]]), torch.arange(6))


@pytest.mark.parametrize("layout", ["padded", "sparse"])
def test_beam_search_returns_hand_computed_best_items(layout):
    trie = build_trie(TOKENS, ITEMS, layout)
    model = FixedLogits(STEP_LOGITS.unsqueeze(0))
    lp = F.log_softmax(STEP_LOGITS, dim=-1)

    def score(row):
        return float(sum(lp[l, t] for l, t in enumerate(row)))

    items, scores = beam_search(model, _batch([0]), trie, beam_size=5)
    assert items.tolist() == [[12, 11, 15, 14, 13]]
    want = [score(TOKENS[ITEMS.tolist().index(i)].tolist()) for i in items[0].tolist()]
    assert torch.allclose(scores[0], torch.tensor(want), atol=1e-5)
    # beam 3 keeps 1, 0, 2 at step 0 and (1,5), (0,3), (2,3) at step 1
    assert beam_search(model, _batch([0]), trie, beam_size=3)[0].tolist() == [[12, 11, 15]]
    # beam 2 prunes token 2 at step 0: item 15 (better than 14) is lost, as beam search does
    assert beam_search(model, _batch([0]), trie, beam_size=2)[0].tolist() == [[12, 11]]
    # a beam wider than the domain returns every item once
    assert beam_search(model, _batch([0]), trie, beam_size=20)[0].tolist() == [[12, 11, 15, 14, 13]]


@pytest.mark.parametrize("layout", ["padded", "sparse"])
def test_beam_search_survives_a_non_finite_distribution(layout):
    """A model that emits NaN (e.g. after an overflow) still yields the domain's items: its
    log-probabilities count as the floor, which every valid token beats and no masked one reaches."""
    trie = build_trie(TOKENS, ITEMS, layout)
    logits = torch.stack([STEP_LOGITS, torch.full_like(STEP_LOGITS, float("nan"))])
    logits[0, 1, 3] = float("-inf")  # user 0: one allowed token is impossible
    items, scores = beam_search(FixedLogits(logits), _batch([0, 1]), trie, beam_size=5)
    assert sorted(items[1].tolist()) == sorted(ITEMS.tolist())  # every item, none invented
    assert bool(torch.isfinite(scores).all())
    assert items[0, -1].item() in (11, 12, 15)  # an item through the -inf token ranks last
    assert scores[0, -1] < -1e29 < scores[0, -4]


def _random_trie_case(seed: int, n: int = 150, length: int = 3, codes: int = 6, users: int = 7):
    g = torch.Generator().manual_seed(seed)
    rows = torch.unique(torch.randint(codes, (4 * n, length), generator=g) + codes * torch.arange(length), dim=0)
    rows = rows[torch.randperm(rows.shape[0], generator=g)[:n]]
    items = torch.randperm(1000, generator=g)[: rows.shape[0]] + 1
    vocab = codes * length
    model = FixedLogits(torch.randn(users, length, vocab, generator=g) * 2,
                        torch.randn(vocab + 1, vocab, generator=g))
    return rows, items, model


def test_beam_search_is_batched_and_valid():
    rows, items, model = _random_trie_case(0)
    valid = {tuple(r) for r in rows.tolist()}
    item_row = dict(zip(items.tolist(), map(tuple, rows.tolist())))
    results = {}
    for layout in ("padded", "sparse"):
        trie = build_trie(rows, items, layout)
        together, scores = beam_search(model, _batch(list(range(7))), trie, beam_size=20)
        assert together.shape == (7, 20)
        for u in range(7):
            alone, alone_scores = beam_search(model, _batch([u]), trie, beam_size=20)
            assert torch.equal(alone[0], together[u])
            assert torch.allclose(alone_scores[0], scores[u])
            assert len(set(together[u].tolist())) == 20  # distinct items
            assert all(item_row[i] in valid for i in together[u].tolist())  # known ids only
            assert bool((scores[u][:-1] >= scores[u][1:]).all())  # best first
        # scores are the items' exact log-likelihoods
        found = rows[[items.tolist().index(i) for i in together.flatten().tolist()]].view(7, 20, 3)
        exact = score_candidates(model, _batch(list(range(7))), found)
        assert torch.allclose(exact, scores, atol=1e-4)
        results[layout] = together
    assert torch.equal(results["padded"], results["sparse"])


# --------------------------------------------------------------------------- seq2seq


def _tiny_seq2seq(length: int = 3, codes: int = 5, n_items: int = 40, **params) -> Seq2Seq:
    g = torch.Generator().manual_seed(1)
    rows = torch.unique(torch.randint(codes, (4 * n_items, length), generator=g) + codes * torch.arange(length), dim=0)
    table = torch.cat([torch.zeros(1, length, dtype=torch.long), rows[:n_items]])
    item_domain = torch.tensor([-1] + [i % 2 for i in range(n_items)])
    p = Seq2SeqParams(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=2, num_heads=2, d_kv=8, **params)
    torch.manual_seed(0)
    return Seq2Seq(p, table, item_domain, codes * length, ["A", "B"], max_len=6).eval()


def _history(users: int = 6, n_items: int = 40) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    history = torch.randint(1, n_items + 1, (users, 6), generator=g)
    for u in range(users):
        history[u, : u + 1] = 0  # left padding of different lengths; the last row is empty
    return {"history": history, "history_cross": history, "domain": torch.zeros(users, dtype=torch.long),
            "user": torch.arange(users), "target": torch.ones(users, dtype=torch.long)}


@pytest.mark.parametrize("history", ["tokens", "items"])
def test_seq2seq_cached_decoding_matches_full_forward(history):
    model = _tiny_seq2seq(history=history)
    batch = _history()
    with torch.no_grad():
        state = model.encode(batch)
        tokens = model.item_token_table[torch.tensor([1, 2, 3, 4, 5, 6])]
        full = model.sequence_logits(state, tokens)
        step_state = model.select_state(state, torch.arange(6))
        for l in range(3):
            logits, step_state = model.step(step_state, tokens[:, :l])
            assert torch.allclose(logits, full[:, l], atol=1e-5)
            assert torch.allclose(model.next_token_logits(state, tokens[:, :l]), full[:, l], atol=1e-5)
    assert full.shape == (6, 3, model.identifier_vocab)


def _cross_rows(state) -> int:
    return int(state.cache.cross_attention_cache.layers[0].keys.shape[0])


def test_beams_share_one_cross_attention_copy_per_example():
    """Widening 6 examples to 4 beams each keeps 6 rows of encoder keys/values (not 24), and the
    grouped attention gives the per-copy attention's logits; a layout that is not a run of beams
    per example falls back to one copy per row, still exact."""
    model = _tiny_seq2seq()
    batch = _history()
    tokens = model.item_token_table[torch.tensor([1, 2, 3, 4, 5, 6])]
    widen = torch.arange(6).repeat_interleave(4)
    with torch.no_grad():
        state = model.encode(batch)
        full = model.sequence_logits(model.select_state(state, widen), tokens[widen])  # no cache: per row
        _, step_state = model.step(state, tokens[:, :0])
        step_state = model.select_state(step_state, widen)
        assert _cross_rows(step_state) == 6 and step_state.cross_group == 4
        logits, step_state = model.step(step_state, tokens[widen, :1])
        assert torch.allclose(logits, full[:, 1], atol=1e-5)
        # beams reordered within their example: still one copy each
        within = (widen * 4 + torch.tensor([3, 2, 1, 0]).repeat(6))
        step_state = model.select_state(step_state, within)
        assert _cross_rows(step_state) == 6
        # a layout across examples (user 5's beams first): copied per row, and still the same logits
        across = torch.cat([torch.arange(20, 24), torch.arange(0, 20)])
        step_state = model.select_state(step_state, across)
        assert _cross_rows(step_state) == 24 and step_state.cross_group == 1
        order = within[across]
        logits, _ = model.step(step_state, tokens[widen[order], :2])
        assert torch.allclose(logits, full[order, 2], atol=1e-5)
        # transformers' own sdpa (a copy per beam) finds the same beams
        grouped = beam_search(model, batch, build_trie(model.item_token_table[1:], torch.arange(1, 41)), 8)
        model.t5.set_attn_implementation("sdpa")
        copied = beam_search(model, batch, build_trie(model.item_token_table[1:], torch.arange(1, 41)), 8)
    assert torch.equal(grouped[0], copied[0]) and torch.allclose(grouped[1], copied[1], atol=1e-5)


@pytest.mark.parametrize("view,history", [("single", "tokens"), ("cross", "tokens"), ("single", "items")])
def test_seq2seq_beam_search_batched_and_sampled_scores_agree(view, history):
    model = _tiny_seq2seq(view=view, history=history)
    batch = _history()
    table = model.item_token_table
    domain_items = torch.arange(1, 41)[torch.arange(40) % 2 == 0]
    trie = build_trie(table[domain_items], domain_items)
    with torch.no_grad():
        items, scores = beam_search(model, batch, trie, beam_size=8)
        for u in range(6):
            one = {k: v[u : u + 1] for k, v in batch.items()}
            alone, alone_scores = beam_search(model, one, trie, beam_size=8)
            assert torch.equal(alone[0], items[u])
            assert torch.allclose(alone_scores[0], scores[u], atol=1e-5)
        assert set(items.flatten().tolist()) <= set(domain_items.tolist())
        # the sampled protocol's teacher-forced scores are the beam's scores for the same items
        exact = score_candidates(model, batch, table[items], chunk_elements=64)
        assert torch.allclose(exact, scores, atol=1e-4)
        # bf16 autocast (the CUDA path) runs and keeps distinct in-domain items
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = beam_search(model, batch, trie, beam_size=8)
            loss = model.loss({"history": batch["history"], "target": domain_items[:6]})
        assert all(len(set(r)) == 8 for r in low.tolist()) and set(low.flatten().tolist()) <= set(domain_items.tolist())
        assert all(math.isfinite(float(v)) for v in loss.losses.values())


@pytest.mark.parametrize("history", ["tokens", "items"])
@pytest.mark.parametrize("prompt", [False, True])
def test_trimming_left_padding_is_exact(history, prompt):
    """A batch's leading all-padding columns are dropped before the encoder: the loss and the
    encoder states of every row are those of the untrimmed batch, and the trimmed input is shorter."""
    model = _tiny_seq2seq(history=history, domain_prompt=prompt, dropout=0.0)
    batch = _history()
    batch["history"][:, :3] = 0  # every row: at most 3 real items in 6 columns
    batch["history"][-1] = 0  # and one empty history
    wide = torch.cat([torch.zeros(6, 4, dtype=torch.long), batch["history"]], dim=1)  # 4 more dead columns
    args = model.encoder_arguments(wide, batch["domain"])
    per_item = 1 if history == "items" else model.code_length
    assert args["attention_mask"].shape[1] == 3 * per_item + prompt
    with torch.no_grad():
        short = model.encode(batch)
        long = model.encode({**batch, "history": wide})
        assert torch.allclose(short.hidden, long.hidden, atol=1e-5)
        target = torch.arange(1, 7)
        a = model.loss({"history": batch["history"], "target": target})
        b = model.loss({"history": wide, "target": target})
        assert all(torch.allclose(a.losses[k], b.losses[k], atol=1e-5) for k in a.losses)
        assert all(math.isfinite(float(v)) for v in a.losses.values())
    lengths = model.example_lengths({"history": batch["history"]})
    assert lengths.tolist() == [per_item * int((row > 0).sum()) for row in batch["history"]]


def test_items_history_is_one_position_per_item_summing_its_token_embeddings():
    model = _tiny_seq2seq(history="items", domain_prompt=False)
    history = torch.tensor([[0, 3, 7]])
    embeds, mask = model.item_embeddings(history, torch.zeros(1, dtype=torch.long))
    table = model.t5.get_input_embeddings().weight
    expected = table[model.to_model_tokens(model.item_token_table[7])].sum(0)
    assert embeds.shape == (1, 3, table.shape[1]) and mask.tolist() == [[0, 1, 1]]
    assert torch.allclose(embeds[0, 2], expected) and float(embeds[0, 0].detach().abs().sum()) == 0.0


def test_default_sizes_match_gmc():
    """Defaults: a ~4.3-4.6M T5 (TIGER/GMC shape) and ~0.17M LoRA parameters per domain."""
    n_items, length, codes = 50, 4, 256
    table = torch.cat([torch.zeros(1, length, dtype=torch.long),
                       torch.randint(codes, (n_items, length)) + codes * torch.arange(length)])
    model = Seq2Seq(Seq2SeqParams(), table, torch.zeros(n_items + 1, dtype=torch.long), codes * length, ["A"], 20)
    total = sum(p.numel() for p in model.parameters())
    embedding = model.t5.shared.weight.numel()
    assert 4.3e6 <= total - embedding <= 4.6e6
    assert default_target_modules(model) == ["q", "v"]
    strategy = UnifiedThenLoRA(UnifiedThenLoRAParams())
    add_adapter(model, "A", strategy.lora_config(model))
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert 0.16e6 <= lora <= 0.18e6
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == lora


def test_trie_beam_rejects_a_partial_catalogue():
    decoder = TrieBeamDecoder(TrieBeamParams())

    class Run:  # the decoder reads identifier, dataset and config from the run
        identifier = type("I", (), {"domain_tokens": lambda self, run, d: TOKENS, "item_tokens": lambda self: TOKENS})()
        dataset = type("D", (), {"domain_items": [ITEMS], "domains": ["A"]})()

    decoder.run = Run()
    model = FixedLogits(STEP_LOGITS.unsqueeze(0))
    assert decoder.rank(model, _batch([0]), ITEMS, 10).topk.tolist() == [[12, 11, 15, 14, 13]]
    with pytest.raises(ConfigError, match="protocol=full"):
        decoder.rank(model, _batch([0]), ITEMS[:3], 10)


@pytest.mark.parametrize("history", ["tokens", "items"])
def test_seq2seq_learns_a_rule_that_trie_beam_then_decodes(history):
    """Training and decoding agree on the token layout: a T5 trained with ``loss`` on "the next item
    is the successor of the last one" ranks that successor first through ``beam_search``."""
    torch.manual_seed(0)
    model = _tiny_seq2seq(dropout=0.0, history=history)
    items = torch.arange(1, 41, 2)  # domain A of _tiny_seq2seq
    successor = torch.zeros(41, dtype=torch.long)
    successor[items] = items.roll(-1)
    g = torch.Generator().manual_seed(5)
    history = items[torch.randint(items.numel(), (100, 6), generator=g)]
    target = successor[history[:, -1]]
    batch = {"history": history, "history_cross": history, "domain": torch.zeros(100, dtype=torch.long)}
    trie = build_trie(model.item_token_table[items], items)

    def top1() -> float:
        with torch.no_grad():
            ranked, _ = beam_search(model.eval(), batch, trie, beam_size=5)
        return float((ranked[:, 0] == target).float().mean())

    untrained = top1()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(300):
        idx = torch.randint(100, (64,), generator=g)
        loss = sum(model.loss({"history": history[idx], "target": target[idx]}).losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert untrained < 0.3  # 20 items: chance is 0.05
    assert top1() >= 0.95


# --------------------------------------------------------------------------- end to end

TINY_T5 = "encoder.params={d_model: 16, d_ff: 32, num_layers: 1, num_decoder_layers: 1, num_heads: 2, d_kv: 8}"


def test_seq2seq_trie_beam_end_to_end(plugins, tmp_path):
    resolved = resolve(plugins.catalogue, "sasrec", overrides=[
        "encoder.name=seq2seq", TINY_T5, "decoder.name=trie-beam", "decoder.params.beam_size=10",
        "transfer.name=joint", "training.epochs=2", "training.batch_size=128", "training.lr=0.005",
        "training.max_train_examples=1200", "evaluation.valid_max_users=50",
    ])
    outcome = execute_run(resolved, plugins, progress=False, output_root=tmp_path)
    assert set(outcome.test.metrics) == {"Scientific", "Arts", "Office", "average"}
    for row in outcome.test.metrics.values():
        assert {"recall@5", "ndcg@10"} <= set(row)
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in row.values())
    history = outcome.stages[0]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[1]["loss"] < history[0]["loss"]


def test_unified_then_lora_with_sasrec(plugins, tmp_path, monkeypatch):
    trainable: dict[str, int] = {}
    original_trainable = trainer.trainable_parameters

    def count_trainable(model, stage):
        params = original_trainable(model, stage)
        trainable[stage.name] = sum(p.numel() for p in params)
        return params

    captured = {}
    original_save = engine.save_models

    def capture(run, strategy, models):
        captured.update(run=run, strategy=strategy, models=models)
        return original_save(run, strategy, models)

    original_train = trainer.train_stage

    def without_start_scoring(run, model, stage):
        # two tiny epochs rarely beat the unified model, and epoch-0 scoring would then keep every
        # adapter at zero: what this test checks is how trained adapters are held and saved
        return original_train(run, model, dataclasses.replace(stage, score_start=False))

    monkeypatch.setattr(trainer, "trainable_parameters", count_trainable)
    monkeypatch.setattr(trainer, "train_stage", without_start_scoring)
    monkeypatch.setattr(engine, "save_models", capture)
    resolved = resolve(plugins.catalogue, "sasrec", quick=True, overrides=[
        "encoder.params.hidden=16", "transfer.name=unified-then-lora", "transfer.params.r=4",
        "transfer.params.lora_batch_size=256", "transfer.params.lora_lr=0.01", "training.epochs=2",
        "training.max_train_examples=300", "evaluation.valid_max_users=50",
    ])
    outcome = execute_run(resolved, plugins, progress=False, output_root=tmp_path)
    assert [s["name"] for s in outcome.stages] == ["unified", "lora:Scientific", "lora:Arts", "lora:Office"]
    run, strategy, models = captured["run"], captured["strategy"], captured["models"]
    assert all(isinstance(m, AdapterView) for m in models.values())
    shared = models[0].shared
    assert len({id(m.shared) for m in models.values()}) == 1

    # the base is frozen: identical to the unified stage's result (its best checkpoint)
    unified = torch.load(run.checkpoint_path("unified"), map_location="cpu")
    base = base_state_dict(shared)
    assert set(base) == set(unified)
    assert all(torch.equal(base[k].cpu(), unified[k]) for k in unified)

    # a LoRA stage trains exactly its adapter: r * (in + out) per adapted layer (qkv and out)
    adapted = [v for k, v in unified.items() if k.endswith(".qkv.weight") or k.endswith(".out.weight")]
    adapter_size = 4 * sum(w.shape[0] + w.shape[1] for w in adapted)
    assert trainable["unified"] == sum(v.numel() for v in unified.values())
    for name in ("Scientific", "Arts", "Office"):
        assert trainable[f"lora:{name}"] == adapter_size

    # adapters differ between domains, and so do the domains' scores
    from peft.functional import get_peft_model_state_dict

    a = get_peft_model_state_dict(shared, adapter_name=models[0].adapter)
    b = get_peft_model_state_dict(shared, adapter_name=models[1].adapter)
    assert set(a) == set(b) and any(not torch.equal(a[k], b[k]) for k in a)
    examples = run.examples("test", [0])
    batch = {k: torch.as_tensor(v[:16]) for k, v in examples.items()}
    candidates = torch.as_tensor(run.dataset.domain_items[0])
    with torch.no_grad():
        scores = {d: models[d].eval().score(batch, candidates) for d in (0, 1)}
    assert not torch.equal(scores[0], scores[1])

    # save -> load round trip: same scores
    directory = run.run_dir / "models"
    assert {p.name for p in directory.iterdir()} >= {"base.pt", "transfer.json", "adapter-Scientific.pt",
                                                     "adapter-Arts.pt", "adapter-Office.pt"}
    loaded = strategy.load(run, directory)
    with torch.no_grad():
        for d in (0, 1):
            assert torch.equal(loaded[d].score(batch, candidates), models[d].score(batch, candidates))
    assert default_target_modules(run.build_encoder()) == ["qkv", "out"]


@pytest.mark.parametrize("sample", [None, 50])
def test_lora_stages_reuse_the_unified_validation_only_when_it_is_the_same_computation(plugins, tmp_path,
                                                                                      monkeypatch, sample):
    seen: dict[str, tuple] = {}
    original_train = trainer.train_stage

    def recompute_epoch_0(run, model, stage):
        if stage.score_start:  # what validating the starting model on this stage's domain gives
            seen[stage.name] = (stage.start_validation, run.evaluate({stage.domains[0]: model}, "valid", stage.domains))
        return original_train(run, model, stage)

    monkeypatch.setattr(trainer, "train_stage", recompute_epoch_0)
    overrides = ["encoder.params.hidden=16", "transfer.name=unified-then-lora", "transfer.params.r=4",
                 "transfer.params.lora_epochs=1", "training.epochs=2", "training.max_train_examples=300"]
    if sample is not None:
        overrides.append(f"evaluation.valid_max_users={sample}")
    resolved = resolve(plugins.catalogue, "sasrec", quick=True, overrides=overrides)
    resolved.config.evaluation.valid_max_users = sample  # quick mode samples users; None: every user
    outcome = execute_run(resolved, plugins, progress=False, output_root=tmp_path)
    assert list(seen) == ["lora:Scientific", "lora:Arts", "lora:Office"]
    unified = outcome.stages[0]
    for stage in outcome.stages[1:]:
        reused, recomputed = seen[stage["name"]]
        domain = stage["name"].split(":")[1]
        # a user sample is drawn across the validated domains in turn: only the first domain's is the same
        if sample is None or domain == "Scientific":
            assert reused is not None
            assert reused.metrics == recomputed.metrics and reused.counts == recomputed.counts  # to the bit
            assert reused.metrics[domain] == unified["best_validation"]["metrics"][domain]
        else:
            assert reused is None
        assert stage["history"][0] == {"epoch": 0, **recomputed.metrics["average"]}


def test_incompatible_combinations_are_refused(plugins):
    with pytest.raises(ConfigError, match="generative"):
        resolve(plugins.catalogue, "sasrec", overrides=["decoder.name=trie-beam"])
    with pytest.raises(ConfigError, match="scores"):
        resolve(plugins.catalogue, "sasrec", overrides=["encoder.name=seq2seq"])
