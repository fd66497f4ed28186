"""The prompt-based recommender: prompts, Eq. 4 / Eq. 5 losses, gradients, ID updates."""

from __future__ import annotations


import pytest
import torch

from mtrec_textual_id.generator import GeneratorParams, IdGenerator
from mtrec_textual_id.recommender import IdGenRecParams, IdGenRecRecommender
from mtrec_textual_id.vocab import END

# identifier tokens: 0 [END], 1 [UNK], 2 ",", 3..9 words
SEP = 2
PROMPTS = [([3, 4], [5]), ([6], [7, 8, 9])]  # template 0: "3 4 {history} 5"; template 1: "6 {history} 7 8 9"
ITEMS = torch.tensor([[END, END, END], [3, 4, END], [5, END, END], [6, 7, 8], [9, END, END]])
PARAMS = dict(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8, dropout=0.0)


def model(templates: int = 2) -> IdGenRecRecommender:
    torch.manual_seed(0)
    params = IdGenRecParams(**PARAMS, templates=templates)
    return IdGenRecRecommender(params, ITEMS.clone(), torch.tensor([-1, 0, 0, 1, 1]), 10, ["A", "B"], 3,
                               PROMPTS, SEP).eval()


def test_prompt_interpolates_history_ids_between_template_parts():
    m = model()
    history = torch.tensor([[0, 1, 2], [0, 0, 3], [4, 3, 1]])
    ids, mask = m.encoder_inputs(history, torch.zeros(3, dtype=torch.long), torch.tensor([0, 1, 0]))
    rows = [[t - m.token_offset for t, keep in zip(r, k) if keep] for r, k in zip(ids.tolist(), mask.tolist())]
    assert rows[0] == [3, 4, 3, 4, SEP, 5, 5]  # "3 4 | item1=3 4 , item2=5 | 5"
    assert rows[1] == [6, 6, 7, 8, 7, 8, 9]  # template 1, one item (6 7 8), no separator after the last
    assert rows[2] == [3, 4, 9, SEP, 6, 7, 8, SEP, 3, 4, 5]
    assert mask.sum(1).tolist() == [7, 7, 11] and mask[:, 0].all()  # left-aligned, padding at the end


def test_loss_scores_id_tokens_and_first_end_only():
    m = model(templates=1)
    batch = {"history": torch.tensor([[0, 1, 2]]), "target": torch.tensor([4])}  # target ID "9 [END] [END]"
    loss = m.loss(batch)
    ids, mask = m.encoder_inputs(batch["history"], torch.tensor([1]), torch.tensor([0]))
    logits = m.t5(input_ids=ids, attention_mask=mask, decoder_input_ids=m._decoder_inputs(ITEMS[[4]])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    expected = -(logp[0, 9 + m.token_offset] + logp[1, END + m.token_offset]) / 2  # position 2 is not scored
    assert loss.losses["B"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.counts == {"B": 1}


def test_soft_loss_with_one_hot_distributions_equals_the_hard_loss():
    m = model(templates=1)
    batch = {"history": torch.tensor([[0, 1, 2], [4, 3, 1]]), "target": torch.tensor([3, 2])}
    items = torch.tensor([1, 2, 3, 4])
    probs = torch.nn.functional.one_hot(ITEMS[items], 10).float()
    hard, soft = m.loss(batch), m.soft_loss(batch, items, probs)
    for key in hard.losses:
        assert soft.losses[key].item() == pytest.approx(hard.losses[key].item(), rel=1e-5)


def test_soft_loss_trains_the_generator_not_the_frozen_recommender():
    m = model(templates=2)
    for p in m.parameters():
        p.requires_grad_(False)
    torch.manual_seed(1)
    gen = IdGenerator(10, GeneratorParams(**PARAMS))
    text = torch.randint(3, 10, (5, 4))
    items = torch.tensor([1, 2, 3, 4])
    probs = gen.soft_tokens(text[items], torch.ones(4, 4, dtype=torch.long), ITEMS[items])
    batch = {"history": torch.tensor([[0, 1, 2], [4, 3, 1]]), "target": torch.tensor([3, 2])}
    loss = sum(m.soft_loss(batch, items, probs).losses.values())
    loss.backward()
    grads = [p.grad for p in gen.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in m.parameters())


def test_set_item_tokens_changes_what_the_prompt_reads():
    m = model()
    history = torch.tensor([[0, 0, 1]])
    new = ITEMS.clone()
    new[1] = torch.tensor([9, 8, END])
    m.set_item_tokens(new)
    ids, mask = m.encoder_inputs(history, torch.zeros(1, dtype=torch.long))
    assert (ids[0][mask[0].bool()] - m.token_offset).tolist() == [3, 4, 9, 8, 5]
