"""The IDGenRec recommender learns, and the ``trie-beam`` decoder reads what it learnt.

A small deterministic dataset built here: 60 items with textual IDs of 1 to 3 word pieces
(``[END]``-padded to 4, as the textual-id identifier writes them), and a successor rule (item
``i`` is followed by ``i + 1``, the last by the first).  The prompt-based recommender is trained
with its own loss (Eq. 4: the ID's pieces and its first ``[END]``) and ranked by beam search over
the catalogue's trie: HR@10 and NDCG@10 must be far above the untrained model's and chance.
Decoding scores IDs up to their ``[END]`` (issue 17): with the padding's untrained
log-probabilities added, short IDs were charged for positions the loss never saw.
"""

from __future__ import annotations

import math

import torch

from mtrec.builtins.trie_beam import beam_search, build_trie, score_candidates
from mtrec_textual_id.generator import id_positions
from mtrec_textual_id.recommender import IdGenRecParams, IdGenRecRecommender
from mtrec_textual_id.vocab import END

N_ITEMS, LENGTH, MAX_LEN, K = 60, 4, 5, 10
SEP = 2  # "," ; 0 is [END], 1 [UNK]
PROMPTS = [([3, 4], [5]), ([6], [7])]  # two templates around {history}
WORDS = list(range(8, 16))  # the ID pieces
VOCAB = WORDS[-1] + 1


def _item_ids() -> torch.Tensor:
    """``[N_ITEMS + 1, LENGTH]`` unique IDs of 1..3 pieces, ``[END]``-padded (row 0: padding)."""
    g = torch.Generator().manual_seed(0)
    seen: set[tuple[int, ...]] = set()
    rows = [[END] * LENGTH]
    while len(rows) <= N_ITEMS:
        n = int(torch.randint(1, LENGTH, (1,), generator=g))
        ids = tuple(WORDS[int(i)] for i in torch.randint(len(WORDS), (n,), generator=g))
        if ids not in seen:
            seen.add(ids)
            rows.append(list(ids) + [END] * (LENGTH - n))
    return torch.tensor(rows)


def _examples() -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of the successor sequence: histories of 1..MAX_LEN consecutive items (left
    padded), the next item as target."""
    histories, targets = [], []
    for last in range(1, N_ITEMS + 1):
        for n in range(1, MAX_LEN + 1):
            items = [(last - j - 1) % N_ITEMS + 1 for j in reversed(range(n))]
            histories.append([0] * (MAX_LEN - n) + items)
            targets.append(last % N_ITEMS + 1)
    return torch.tensor(histories), torch.tensor(targets)


def _metrics(model: IdGenRecRecommender, history: torch.Tensor, target: torch.Tensor, trie) -> tuple[float, float]:
    batch = {"history": history, "history_cross": history, "domain": torch.zeros(len(target), dtype=torch.long)}
    with torch.no_grad():
        ranked, _ = beam_search(model.eval(), batch, trie, beam_size=K)
    hit = ranked == target.unsqueeze(1)
    rank = hit.float().argmax(dim=1)
    ndcg = torch.where(hit.any(dim=1), 1.0 / torch.log2(rank.float() + 2.0), torch.zeros(len(target)))
    return float(hit.any(dim=1).float().mean()), float(ndcg.mean())


def test_idgenrec_recommender_learns_a_successor_rule():
    torch.set_num_threads(1)
    tokens = _item_ids()
    torch.manual_seed(0)
    params = IdGenRecParams(d_model=64, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4, d_kv=16,
                            dropout=0.0, templates=2)
    model = IdGenRecRecommender(params, tokens, torch.zeros(N_ITEMS + 1, dtype=torch.long), VOCAB, ["A"],
                                MAX_LEN, PROMPTS, SEP)
    assert model.end_token == END  # what tells the decoder where each ID ends
    items = torch.arange(1, N_ITEMS + 1)
    trie = build_trie(tokens[items], items)
    history, target = _examples()
    full = history[:, 0] > 0  # evaluation: the full-length history of every item
    untrained = _metrics(model, history[full], target[full], trie)

    steps = 500  # ~15 s on one CPU thread
    optimizer = torch.optim.Adam(model.parameters(), lr=0.005)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    g = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(target), (64,), generator=g)
        loss = sum(model.loss({"history": history[idx], "target": target[idx]}).losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    hit, ndcg = _metrics(model, history[full], target[full], trie)

    chance_hit = K / N_ITEMS  # 0.167
    chance_ndcg = sum(1 / math.log2(r + 2) for r in range(K)) / N_ITEMS  # 0.075
    assert untrained[0] < 2 * chance_hit and untrained[1] < 2 * chance_ndcg, untrained
    assert hit >= 0.9, (hit, ndcg, untrained)
    assert ndcg >= 0.5 and ndcg >= 4 * max(untrained[1], chance_ndcg), (hit, ndcg, untrained)

    # Decoding scores an ID over the positions the loss counts (its pieces and first [END], the
    # same id_positions mask), not over the padding after [END], which the loss never trained.
    b = 4
    batch = {"history": history[full][:b], "domain": torch.zeros(b, dtype=torch.long)}
    rows = tokens[items].unsqueeze(0).expand(b, -1, -1)
    with torch.no_grad():
        state = model.encode(batch)
        logits = model.sequence_logits(model.select_state(state, torch.arange(b).repeat_interleave(N_ITEMS)),
                                       rows.reshape(-1, LENGTH))
        logp = torch.log_softmax(logits.float(), -1).gather(2, rows.reshape(-1, LENGTH, 1)).view(b, N_ITEMS, LENGTH)
        counted = id_positions(rows.reshape(-1, LENGTH), model.end_token).view(b, N_ITEMS, LENGTH)
        exact = score_candidates(model, batch, rows)
        ranked, scores = beam_search(model, batch, trie, beam_size=K)
    assert torch.allclose(exact, (logp * counted).sum(dim=2), atol=1e-4)
    padding = (logp * (1 - counted)).sum(dim=2)
    assert float(padding.min()) < -0.1  # adding it would change scores (and the ranking of short IDs)
    assert torch.allclose(scores, exact.gather(1, ranked - 1), atol=1e-4)  # beam search agrees
