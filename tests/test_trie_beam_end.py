"""Variable-length ids (issue 17): decoding scores an id up to and including its end token only.

A generative encoder with ``end_token`` set trains on each id's tokens and its first end token
(the padding after it is never trained); the ``trie-beam`` decoder must score exactly those
positions -- in beam search (a finished beam keeps its score) and in teacher-forced candidate
scoring -- so that an id's decoding score is minus its summed training cross-entropy, and beam
search ranks ids as their likelihood does.  Fixed-length ids (``end_token=None``, semantic ids)
keep scoring every position.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtrec.builtins.generative import id_positions
from mtrec.builtins.seq2seq import Seq2Seq, Seq2SeqParams
from mtrec.builtins.trie_beam import beam_search, build_trie, score_candidates

torch.set_num_threads(1)

END = 0  # the end token (and padding) of the variable-length ids, as textual-id's [END]
PIECES = (1, 2, 3)
LENGTH = 4  # row length: ids of 1..3 pieces, then END up to LENGTH (every row holds an END)
# Every id over 3 pieces of 1..3 tokens: 3 + 9 + 27 = 39 items, exhaustive search is possible.
IDS = [ids for n in (1, 2, 3) for ids in itertools.product(PIECES, repeat=n)]
ROWS = torch.tensor([list(ids) + [END] * (LENGTH - len(ids)) for ids in IDS])
ITEMS = torch.arange(1, len(IDS) + 1)
USERS = 4


class _SpecialsOff(nn.Module):
    """The T5's output layer (still tied to its embeddings) with the model's own special tokens
    (pad, end-of-sequence, domain prompt: never a target, never decoded) pushed 40 nats down.

    The training loss normalises over the model's whole vocabulary, decoders over the identifier's
    tokens (the generative contract: encoders hide their special tokens).  A trained model puts
    no mass on the specials and the two agree; with random weights they would differ by the
    specials' mass at each position, which is not what these tests are about."""

    def __init__(self, head: nn.Module, n_special: int) -> None:
        super().__init__()
        self.head = head
        self.n_special = n_special

    @property
    def weight(self) -> torch.Tensor:
        return self.head.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden)
        return torch.cat([logits[..., : self.n_special] - 40.0, logits[..., self.n_special :]], dim=-1)


def _model(end_token: int | None = END, rows: torch.Tensor = ROWS) -> Seq2Seq:
    table = torch.cat([torch.full((1, rows.shape[1]), END, dtype=torch.long), rows])
    params = Seq2SeqParams(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=2, num_heads=2, d_kv=8,
                           dropout=0.0)
    torch.manual_seed(0)
    model = Seq2Seq(params, table, torch.zeros(table.shape[0], dtype=torch.long), len(PIECES) + 1, ["A"],
                    max_len=5)
    model.t5.lm_head = _SpecialsOff(model.t5.lm_head, model.token_offset)
    model.end_token = end_token
    return model.eval()


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    history = torch.randint(1, len(IDS) + 1, (USERS, 5), generator=g)
    history[1, :2] = 0  # left padding
    return {"history": history, "history_cross": history, "domain": torch.zeros(USERS, dtype=torch.long)}


def _summed_training_loss(model: Seq2Seq, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[USERS, items]``: each (user, item)'s training loss (``model.loss`` on that one example:
    the mean token cross-entropy over the positions it counts) times the positions counted."""
    out = torch.empty(USERS, len(IDS))
    counted = id_positions(ROWS, model.end_token).sum(dim=1)
    with torch.no_grad():
        for u in range(USERS):
            history = batch["history"][u : u + 1].expand(len(IDS), -1)
            for c, item in enumerate(ITEMS.tolist()):
                loss = model.loss({"history": history[c : c + 1], "target": torch.tensor([item])})
                out[u, c] = loss.losses["A"] * counted[c]
    return out


def test_id_positions_are_the_tokens_and_the_first_end():
    rows = torch.tensor([[1, 0, 0, 0], [2, 3, 0, 0], [1, 2, 3, 0], [1, 2, 3, 1]])
    assert id_positions(rows, END).long().tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]]
    assert id_positions(rows, None).all()  # fixed-length ids: token 0 is a real code
    assert id_positions(rows.unsqueeze(0), END).shape == (1, 4, 4)


@pytest.mark.parametrize("layout", ["padded", "sparse"])
def test_decoding_score_of_an_id_is_minus_its_summed_training_loss(layout):
    model, batch = _model(), _batch()
    expected = -_summed_training_loss(model, batch)
    trie = build_trie(ROWS, ITEMS, layout)
    with torch.no_grad():
        sampled = score_candidates(model, batch, ROWS.unsqueeze(0).expand(USERS, -1, -1), chunk_elements=200)
        items, scores = beam_search(model, batch, trie, beam_size=len(IDS))
    assert torch.allclose(sampled, expected, atol=1e-4)
    assert items.shape == (USERS, len(IDS))
    assert all(sorted(row) == ITEMS.tolist() for row in items.tolist())  # exhaustive: every id once
    assert torch.allclose(scores, expected.gather(1, items - 1), atol=1e-4)
    # a short id is not charged for its padding: the untrained positions after [END] differ from 0
    logits = model.sequence_logits(model.encode(batch), ROWS[:1].expand(USERS, -1))
    after_end = F.log_softmax(logits.float(), -1)[:, 2:, END]
    assert bool((after_end.abs() > 1e-3).all())


@pytest.mark.parametrize("layout", ["padded", "sparse"])
def test_beam_search_ranks_ids_as_their_teacher_forced_scores(layout):
    model, batch = _model(), _batch()
    trie = build_trie(ROWS, ITEMS, layout)
    with torch.no_grad():
        exact = score_candidates(model, batch, ROWS.unsqueeze(0).expand(USERS, -1, -1))
        items, scores = beam_search(model, batch, trie, beam_size=len(IDS))
        narrow, _ = beam_search(model, batch, trie, beam_size=10)
    ranked = ITEMS[torch.sort(exact, dim=1, descending=True, stable=True).indices]
    assert torch.equal(items, ranked)
    assert bool((scores[:, :-1] >= scores[:, 1:]).all())
    # a narrower beam returns ids in the same order of their exact scores
    narrow_scores = exact.gather(1, narrow - 1)
    assert bool((narrow_scores[:, :-1] >= narrow_scores[:, 1:]).all())


def test_fixed_length_ids_still_score_every_position():
    """Semantic-id-like rows (``end_token=None``, code 0 a real code): every position counts, in
    the loss and in decoding, whatever the token values."""
    g = torch.Generator().manual_seed(4)
    rows = torch.unique(torch.randint(0, len(PIECES) + 1, (200, 3), generator=g), dim=0)
    rows = rows[torch.randperm(rows.shape[0], generator=g)[: len(IDS)]]
    assert rows.shape[0] == len(IDS) and bool((rows[:, :-1] == 0).any())  # 0 inside ids: a real code
    model, batch = _model(None, rows), _batch()
    with torch.no_grad():
        state = model.encode(batch)
        tokens = rows.unsqueeze(0).expand(USERS, -1, -1)
        logits = model.sequence_logits(model.select_state(state, torch.arange(USERS).repeat_interleave(len(IDS))),
                                       tokens.reshape(-1, 3))
        full = F.log_softmax(logits.float(), -1).gather(2, tokens.reshape(-1, 3, 1)).sum(dim=(1, 2))
        exact = score_candidates(model, batch, tokens)
        items, scores = beam_search(model, batch, build_trie(rows, ITEMS), beam_size=len(IDS))
        loss = model.loss({"history": batch["history"][:1], "target": torch.tensor([5])}).losses["A"]
    assert torch.allclose(exact, full.view(USERS, len(IDS)), atol=1e-4)
    assert torch.allclose(scores, exact.gather(1, items - 1), atol=1e-4)
    assert float(loss) * 3 == pytest.approx(-float(exact[0, 4]), rel=1e-4)


class _CountingLogits(nn.Module):
    """Fixed random logits per (step, last token); counts ``step`` calls; declares ``end_token``."""

    end_token = END

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.logits = torch.randn(LENGTH, len(PIECES) + 2, len(PIECES) + 1, generator=g) * 3
        self.calls = 0

    def encode(self, batch):
        return batch["domain"]

    def select_state(self, state, index):
        return state[index]

    def next_token_logits(self, state, prefix):
        last = prefix[:, -1] if prefix.shape[1] else torch.full_like(state, len(PIECES) + 1)
        return self.logits[prefix.shape[1], last]

    def step(self, state, prefix):
        self.calls += 1
        return self.next_token_logits(state, prefix), state

    def sequence_logits(self, state, tokens):
        return torch.stack([self.next_token_logits(state, tokens[:, :l]) for l in range(tokens.shape[1])], 1)


@pytest.mark.parametrize("layout", ["padded", "sparse"])
def test_finished_beams_keep_their_score_and_the_model_stops_when_all_are(layout):
    model = _CountingLogits()
    batch = {"domain": torch.zeros(2, dtype=torch.long)}
    lp = F.log_softmax(model.logits, -1)

    def score(ids):  # hand-computed: the pieces and the first END, nothing after
        last, total = len(PIECES) + 1, 0.0
        for l, t in enumerate(list(ids) + [END]):
            total += float(lp[l, last, t])
            last = t
        return total

    trie = build_trie(ROWS, ITEMS, layout)
    items, scores = beam_search(model, batch, trie, beam_size=len(IDS))
    want = torch.tensor([[score(IDS[i - 1]) for i in row] for row in items.tolist()])
    assert torch.allclose(scores, want, atol=1e-5)
    exact = score_candidates(model, batch, ROWS.unsqueeze(0).expand(2, -1, -1))
    assert torch.allclose(exact, torch.tensor([score(ids) for ids in IDS]).expand(2, -1), atol=1e-5)
    # one-piece ids: every beam has written END after step 1, so steps 2 and 3 need no model call
    short = build_trie(ROWS[:3], ITEMS[:3], layout)
    model.calls = 0
    items, scores = beam_search(model, batch, short, beam_size=3)
    assert model.calls == 2
    assert torch.allclose(scores, torch.tensor([[score(IDS[i - 1]) for i in row] for row in items.tolist()]))
