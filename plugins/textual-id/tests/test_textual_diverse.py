"""Algorithm 1 (diverse.py) on scripted candidates, and the generator's diverse beam search."""

from __future__ import annotations

import pytest
import torch

from mtrec_textual_id.diverse import assign_unique_ids
from mtrec_textual_id.generator import GeneratorParams, IdGenerator, id_positions
from mtrec_textual_id.vocab import END, UNK

TINY = GeneratorParams(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8, dropout=0.0)


def scripted(table: dict[tuple[int, int, int], list[tuple[int, ...]]], calls: list):
    """generate() whose candidates for (item, penalty, min_len) come from ``table`` (END-padded to 6)."""

    def generate(items, groups, penalty, lo, hi):
        calls.append((list(items), groups, penalty, lo))
        out = torch.full((len(items), groups, 6), END, dtype=torch.long)
        for i, item in enumerate(items):
            cands = table[(int(item), int(penalty), lo)]
            for g in range(groups):
                cand = cands[min(g, len(cands) - 1)]
                out[i, g, : len(cand)] = torch.tensor(cand)
        return out

    return generate


def test_algorithm1_escalates_penalty_then_length():
    # items 1, 2, 3 all write (5,) greedily; at penalty 1 item 2 finds (6,), item 3 only sees taken
    # IDs until penalty 2 gives (5,) again (taken), so it moves to the long range where (5, 7) is free.
    table = {}
    for item in (1, 2, 3):
        table[(item, 0, 1)] = [(5,)]
    table[(2, 1, 1)] = [(5,), (6,)]
    table[(3, 1, 1)] = [(5,), (6,)]
    table[(3, 2, 1)] = [(5,), (5,)]
    table[(3, 1, 2)] = [(5, 7)]
    calls: list = []
    result = assign_unique_ids([1, 2, 3], scripted(table, calls), groups=2, max_penalty=2,
                               length_ranges=[(1, 2), (2, 4)], digit_tokens=list(range(20, 30)))
    assert result.ids == {1: (5,), 2: (6,), 3: (5, 7)}
    assert result.attempts == {1: (0, 1), 2: (0, 1), 3: (1, 1)}
    # greedy first (1 group, penalty 0) for everyone, then k groups only for the items that collided
    assert calls[0] == ([1, 2, 3], 1, 0.0, 1) and calls[1] == ([2, 3], 2, 1.0, 1)
    assert calls[2] == ([3], 2, 2.0, 1) and calls[3] == ([3], 2, 1.0, 2)
    stats = result.stats(3)
    # item 2 found a free ID among its penalty-1 candidates (its first attempt); item 3 needed more
    assert stats["longer_id_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert stats["second_attempt_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert stats["fallback_share"] == 0


def test_exhausted_items_get_digits_and_ids_stay_unique():
    table = {(i, lam, lo): [(5,)] for i in (1, 2, 3) for lam in (0, 1) for lo in (1,)}
    result = assign_unique_ids([1, 2, 3], scripted(table, []), groups=2, max_penalty=1,
                               length_ranges=[(1, 3)], digit_tokens=list(range(20, 30)))
    ids = list(result.ids.values())
    assert len(set(ids)) == 3 and result.ids[1] == (5,)
    assert result.fallback == [2, 3] and result.ids[2] == (5, 21) and result.ids[3] == (5, 22)  # digits "1", "2" appended


def test_id_positions_cover_tokens_and_first_end():
    ids = torch.tensor([[4, 5, END, END], [4, END, END, END], [4, 5, 6, 7]])
    assert id_positions(ids).tolist() == [[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]]


def _generator(vocab: int = 30, seed: int = 0) -> IdGenerator:
    torch.manual_seed(seed)
    cont = [False] * vocab
    cont[7] = True
    word = [i > UNK for i in range(vocab)]
    return IdGenerator(vocab, TINY, wordlike=word, continuation=cont).eval()


def test_diverse_ids_group0_is_greedy_and_groups_differ_at_high_penalty():
    g = _generator()
    text = torch.randint(2, 30, (4, 6))
    mask = torch.ones_like(text)
    greedy = g.diverse_ids(text, mask, 1, 0.0, 1, 5)
    dbs = g.diverse_ids(text, mask, 3, 1e6, 1, 5)
    assert torch.equal(dbs[:, 0], greedy[:, 0])
    # with an overwhelming penalty, no two groups open with the same token
    first = dbs[:, :, 0]
    assert all(len(set(row)) == 3 for row in first.tolist())
    # zero penalty: every group is greedy
    assert torch.equal(g.diverse_ids(text, mask, 3, 0.0, 1, 5), greedy.expand(-1, 3, -1))


def test_diverse_ids_respects_length_copy_repeat_and_word_start():
    g = _generator()
    text = torch.randint(2, 30, (5, 6))
    mask = torch.ones_like(text)
    copy = torch.tensor([[3, 7, 9, 11, 12]] * 5)
    out = g.diverse_ids(text, mask, 4, 1.0, 2, 5, copy_from=copy)
    for row in out.flatten(0, 1).tolist():
        n = row.index(END)
        assert 2 <= n <= 4 and all(t == END for t in row[n:])  # [2, 5): 2..4 pieces, then [END]
        assert set(row[:n]) <= {3, 7, 9, 11, 12} and len(set(row[:n])) == n  # copied, never repeated
        assert row[0] != 7  # a continuation piece never opens an ID
        assert UNK not in row


def test_soft_tokens_are_distributions_over_allowed_pieces_and_carry_gradients():
    g = _generator().train()
    text = torch.randint(2, 30, (3, 6))
    ids = torch.tensor([[3, 9, END], [9, END, END], [11, 3, END]])
    copy = torch.tensor([[3, 9, 11]] * 3)
    probs = g.soft_tokens(text, torch.ones_like(text), ids, copy)
    assert probs.shape == (3, 3, 30)
    assert torch.allclose(probs.sum(-1), torch.ones(3, 3))
    outside = torch.ones(30, dtype=torch.bool)
    outside[[END, 3, 9, 11]] = False
    assert float(probs.detach()[..., outside].abs().max()) == 0.0
    probs[..., 9].sum().backward()
    assert g.t5.shared.weight.grad is not None and float(g.t5.shared.weight.grad.abs().sum()) > 0
