"""IDGenRec's optional user IDs (``encoder.params.user_ids``, §2.1 and Table 6): prompts, what a user
ID reads, caching, Eq. 5 through user IDs, the unchanged prompts with the switch off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mtrec.builtins.seq2seq import FIRST_DOMAIN_TOKEN, PAD
from mtrec.data.assemble import leave_one_out_roles
from mtrec.data.model import MultiDomainDataset
from mtrec.data.views import eval_examples
from mtrec.errors import ConfigError
from mtrec_textual_id.generator import GeneratorParams, IdGenerator
from mtrec_textual_id.identifier import TextualIdIdentifier, TextualIdParams
from mtrec_textual_id.recommender import IdGenRecParams, IdGenRecRecommender, UserIds, build_idgenrec_seq2seq
from mtrec_textual_id.templates import (LAYOUTS, TEMPLATES, USER_ONLY_TEMPLATES, USER_TEMPLATES, split_template,
                                        template_parts)
from mtrec_textual_id.vocab import END, load_tokenizer

# identifier tokens: 0 [END], 1 [UNK], 2 ",", 3..9 words, 10..12 user words
SEP = 2
ITEMS = torch.tensor([[END, END, END], [3, 4, END], [5, END, END], [6, 7, 8], [9, END, END]])
USERS = torch.tensor([[END, END, END], [10, END, END], [11, 12, END], [12, END, END], [10, 11, END]])
PARAMS = dict(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8, dropout=0.0)
PROMPTS = {  # two templates per layout, parts around the slots
    "none": [([3, 4], [5]), ([6], [7, 8, 9])],
    "with-items": [([3], [4, 5], [6]), ([7, 8], [9], [3, 4])],
    "only": [([3], [6]), ([7, 8], [3, 4])],
}


def last_item_user(history: torch.Tensor) -> torch.Tensor:
    """A stand-in writer: the user ID of a history is USERS[its newest item]."""
    return USERS[history[:, -1]]


def model(mode: str = "none", templates: int = 2, domain_prompt: bool | None = None) -> IdGenRecRecommender:
    torch.manual_seed(0)
    params = IdGenRecParams(**PARAMS, templates=templates, user_ids=mode, domain_prompt=domain_prompt)
    return IdGenRecRecommender(params, ITEMS.clone(), torch.tensor([-1, 0, 0, 1, 1]), 13, ["A", "B"], 3,
                               PROMPTS[mode], SEP, users=None if mode == "none" else last_item_user).eval()


def prompt_rows(m: IdGenRecRecommender, history: torch.Tensor, template: torch.Tensor) -> list[list[int]]:
    ids, mask = m.encoder_inputs(history, torch.zeros(len(history), dtype=torch.long), template)
    return [[t - m.token_offset for t, keep in zip(r, k) if keep] for r, k in zip(ids.tolist(), mask.tolist())]


# --------------------------------------------------------------------------- templates
def test_user_templates_pair_with_the_item_templates_and_add_no_vocabulary():
    assert len(USER_TEMPLATES) == len(USER_ONLY_TEMPLATES) == len(TEMPLATES)
    for t in USER_TEMPLATES:
        prefix, middle, _ = template_parts(t, ("user", "history"))
        assert "{" not in prefix + middle
    for t in USER_ONLY_TEMPLATES:
        assert "{history}" not in t and len(template_parts(t, ("user",))) == 2
    # the "none" layout splits the original templates exactly as before
    assert [template_parts(t, ("history",)) for t in TEMPLATES] == [list(split_template(t)) for t in TEMPLATES]
    assert LAYOUTS["none"][0] is TEMPLATES
    # the identifier's vocabulary holds the pieces of TEMPLATES: the user variants need no other
    tokenizer = load_tokenizer("all-MiniLM-L6-v2")
    known = {p for t in TEMPLATES for p in tokenizer.tokenize(t.replace("{history}", ""))}
    for t in USER_TEMPLATES + USER_ONLY_TEMPLATES:
        assert set(tokenizer.tokenize(t.replace("{user}", "").replace("{history}", ""))) <= known, t
    with pytest.raises(ValueError, match="placeholders"):
        template_parts(TEMPLATES[0], ("user", "history"))


# --------------------------------------------------------------------------- prompts
def test_user_id_comes_before_the_history_when_on_and_is_absent_when_off():
    history = torch.tensor([[0, 1, 2], [4, 3, 1]])
    on = prompt_rows(model("with-items"), history, torch.tensor([0, 1]))
    # template 0: "3 | user | 4 5 | items | 6"; USERS[2] = 11 12, USERS[1] = 10
    assert on[0] == [3, 11, 12, 4, 5, 3, 4, SEP, 5, 6]
    assert on[1] == [7, 8, 10, 9, 9, SEP, 6, 7, 8, SEP, 3, 4, 3, 4]
    off = prompt_rows(model("none"), history, torch.tensor([0, 0]))
    assert off[0] == [3, 4, 3, 4, SEP, 5, 5] and not {10, 11, 12} & {t for r in off for t in r}


def test_only_mode_drops_the_history_item_ids():
    history = torch.tensor([[0, 1, 2], [4, 3, 1]])
    rows = prompt_rows(model("only"), history, torch.tensor([0, 1]))
    assert rows == [[3, 11, 12, 6], [7, 8, 10, 3, 4]]  # prefix, user ID, suffix; no item piece, no ","
    m = model("only")
    _, _, kind, _ = m.prompt_slots(history, torch.tensor([0, 1]))
    assert set(kind.unique().tolist()) == {0, 2}


def test_an_empty_user_id_leaves_no_gap():
    m = model("with-items")
    m.users = lambda h: torch.full((h.shape[0], 3), END)
    assert prompt_rows(m, torch.tensor([[0, 0, 2]]), torch.tensor([0])) == [[3, 4, 5, 5, 6]]


@pytest.mark.parametrize("domain_prompt", [False, True])
def test_switch_off_gives_the_prompts_without_user_ids(domain_prompt):
    """user_ids=none: prefix, the history's item IDs joined by ",", suffix; left-aligned, PAD after."""
    m = model("none", domain_prompt=domain_prompt)
    history, domain, template = torch.tensor([[0, 1, 2], [4, 3, 1]]), torch.tensor([0, 1]), torch.tensor([0, 1])
    ids, mask = m.encoder_inputs(history, domain, template)
    o = m.token_offset  # identifier token t is model token t + 4 (PAD, EOS, one token per domain first)
    assert o == 4
    # template 0: [3 4] | item 1 = 3 4, "," , item 2 = 5 | [5]  (item 0 is padding)
    row0 = [3, 4, 3, 4, SEP, 5, 5]
    # template 1: [6] | item 4 = 9, ",", item 3 = 6 7 8, ",", item 1 = 3 4 | [7 8 9]
    row1 = [6, 9, SEP, 6, 7, 8, SEP, 3, 4, 7, 8, 9]
    expected_ids = [[t + o for t in row0] + [PAD] * 5, [t + o for t in row1]]
    expected_mask = [[1] * 7 + [0] * 5, [1] * 12]
    if domain_prompt:  # the target domain's token closes the prompt, always attended
        expected_ids = [r + [FIRST_DOMAIN_TOKEN + d] for r, d in zip(expected_ids, [0, 1])]
        expected_mask = [r + [1] for r in expected_mask]
    assert ids.tolist() == expected_ids
    assert mask.tolist() == expected_mask and mask.dtype == torch.long


@pytest.mark.parametrize("domain_prompt", [False, True])
def test_switch_off_soft_loss_with_one_hot_item_distributions_equals_the_hard_loss(domain_prompt):
    """A one-hot distribution over an item's own ID tokens embeds to exactly that item's token
    embeddings, so Eq. 5's soft loss is the hard loss on the same templates."""
    m = model("none", domain_prompt=domain_prompt)
    g = torch.Generator().manual_seed(3)
    history = torch.randint(0, 5, (16, 3), generator=g)
    history[:, -1] = history[:, -1].clamp(min=1)
    batch = {"history": history, "target": torch.randint(1, 5, (16,), generator=g)}
    items = torch.unique(history[history > 0])
    probs = torch.nn.functional.one_hot(ITEMS[items], 13).float()
    torch.manual_seed(5)  # the same template draws for both
    hard = m.loss(batch)
    torch.manual_seed(5)
    soft = m.soft_loss(batch, items, probs)
    torch.manual_seed(5)
    wrong = m.soft_loss(batch, items, probs.roll(1, dims=-1))  # the item slots do read probs
    assert set(soft.losses) == set(hard.losses) == {"A", "B"} and soft.counts == hard.counts
    for key in hard.losses:
        assert soft.losses[key].item() == hard.losses[key].item()  # the same embeddings, bit for bit
        assert abs(wrong.losses[key].item() - hard.losses[key].item()) > 1e-4


# --------------------------------------------------------------------------- Eq. 5 with user IDs
def test_soft_loss_with_one_hot_user_distributions_equals_the_hard_loss():
    m = model("with-items", templates=1)
    batch = {"history": torch.tensor([[0, 1, 2], [4, 3, 1]]), "target": torch.tensor([3, 2])}
    items = torch.tensor([1, 2, 3, 4])
    probs = torch.nn.functional.one_hot(ITEMS[items], 13).float()
    user_probs = torch.nn.functional.one_hot(last_item_user(batch["history"]), 13).float()
    hard = m.loss(batch)
    soft = m.soft_loss(batch, items, probs, user_probs)
    wrong = m.soft_loss(batch, items, probs, user_probs.roll(1, dims=-1))  # the user slots do read user_probs
    for key in hard.losses:
        assert soft.losses[key].item() == pytest.approx(hard.losses[key].item(), rel=1e-5)
        assert wrong.losses[key].item() != pytest.approx(hard.losses[key].item(), rel=1e-3)


def test_only_mode_trains_the_generator_through_the_user_ids():
    m = model("only", templates=2)
    for p in m.parameters():
        p.requires_grad_(False)
    torch.manual_seed(1)
    gen = IdGenerator(13, GeneratorParams(**PARAMS))
    batch = {"history": torch.tensor([[0, 1, 2], [4, 3, 1]]), "target": torch.tensor([3, 2])}
    user_probs = gen.soft_tokens(torch.randint(3, 13, (2, 4)), torch.ones(2, 4, dtype=torch.long),
                                 last_item_user(batch["history"]))
    sum(m.soft_loss(batch, None, None, user_probs).losses.values()).backward()
    assert sum(float(p.grad.abs().sum()) for p in gen.parameters() if p.grad is not None) > 0
    assert all(p.grad is None for p in m.parameters())


# --------------------------------------------------------------------------- writing user IDs
def _dataset() -> MultiDomainDataset:
    # Domain A items 1-5, domain B items 6-9; two users, cross-domain order (no repeats):
    #   u0: 1 6 2 7 3 8 4 9      u1: 5 9 4 8 3 7
    item_domain = np.array([-1, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    seq = np.array([1, 6, 2, 7, 3, 8, 4, 9, 5, 9, 4, 8, 3, 7])
    offsets = np.array([0, 8, 14])
    return MultiDomainDataset(
        name="t", domains=["A", "B"], item_domain=item_domain, item_raw_id=[str(i) for i in range(10)],
        item_fields={}, item_text=[""] * 10, user_raw_id=["u0", "u1"], user_offsets=offsets,
        inter_item=seq, inter_role=leave_one_out_roles(offsets, item_domain[seq]))


def _identifier(seed: int = 0) -> TextualIdIdentifier:
    """A hand-built fitted textual-id: item i's text is pieces (10 + 2i, 11 + 2i), its own words."""
    ident = TextualIdIdentifier(TextualIdParams(length_ranges=[(1, 4)], max_text_tokens=4))
    text = torch.zeros(10, 4, dtype=torch.long)
    for i in range(1, 10):
        text[i, :2] = torch.tensor([10 + 2 * i, 11 + 2 * i])
    ident.text, ident.text_mask, ident.copy = text, (text > 0).long(), text.clone()
    ident.text_mask[0, 0] = 1
    torch.manual_seed(seed)
    ident.generator = IdGenerator(30, GeneratorParams(**PARAMS)).eval()
    ident.version = 1
    return ident


def _owner(piece: int) -> int:
    return (piece - 10) // 2


def test_user_ids_read_only_the_history_never_the_target_or_later_items():
    ds = _dataset()
    ident = _identifier()
    users = UserIds(ident, items=2, item_tokens=2)
    run = SimpleNamespace(dataset=ds, config=SimpleNamespace(data=SimpleNamespace(max_len=3)))
    train = model("none").train_tensors(run, [0, 1])
    examples = [(train["history"], train["target"])]
    for split in ("valid", "test"):
        for view in ("history", "history_cross"):
            ex = eval_examples(ds, split, [0, 1], max_len=3)
            examples.append((torch.as_tensor(ex[view]), torch.as_tensor(ex["target"])))
    checked = 0
    for history, target in examples:
        text, mask = users.text(history)
        ids = users(history)
        for row in range(len(history)):
            read = {_owner(p) for p in text[row][mask[row].bool()].tolist() if p > 0}
            recent = set(history[row, -2:].tolist()) - {0}
            assert read == recent  # the history's last two items, nothing else
            assert int(target[row]) not in read
            assert set(ids[row].tolist()) - {END} <= {p for p in text[row].tolist() if p > 0}  # copy_only
            checked += 1
    assert checked == len(train["target"]) + 2 * 2 * 4


def test_changing_the_target_and_later_items_leaves_the_user_id_unchanged():
    ds = _dataset()
    ex = eval_examples(ds, "valid", [0, 1], max_len=3)  # u0's A target: 3, history 1 6 2 7 ...
    history = torch.as_tensor(ex["history_cross"])
    ident = _identifier()
    before = UserIds(ident, items=3, item_tokens=2)(history)
    assert (before[:, 0] != END).all()  # every example has a user ID
    seen = set(history.flatten().tolist())
    for item in range(1, 10):
        if item not in seen:  # every target and every later item gets another text
            ident.text[item, :2] = torch.tensor([11 + 2 * item, 10 + 2 * item])
    assert torch.equal(UserIds(ident, items=3, item_tokens=2)(history), before)


def test_user_text_takes_the_first_pieces_of_each_item_skipping_field_names():
    ident = _identifier()
    ident.text = torch.cat([torch.full((10, 1), 5), ident.text[:, :3]], dim=1)  # "5" opens every text
    ident.text[0] = 0
    text, mask = ident.user_text(torch.tensor([[0, 3, 4], [0, 0, 0]]), per_item=1)
    assert text[0][mask[0].bool()].tolist() == [16, 18]  # oldest first; 5 is in every text: skipped
    assert mask[1].tolist() == [1, 0] and text[1].tolist() == [0, 0]  # nothing to read: one padding position
    text, mask = ident.user_text(torch.tensor([[3, 4]]), per_item=8)
    assert text[0][mask[0].bool()].tolist() == [16, 17, 18, 19]


def test_write_user_ids_shape_lengths_and_empty_history():
    ident = _identifier()
    rows = ident.write_user_ids(torch.tensor([[0, 1, 2], [0, 0, 0], [3, 4, 5]]), per_item=2)
    assert rows.shape == (3, ident.code_length)
    lengths = (rows != END).sum(1).tolist()
    assert lengths[1] == 0 and 1 <= lengths[0] < ident.code_length and 1 <= lengths[2] < ident.code_length
    assert (rows[:, -1] == END).all()


class CountingIdentifier:
    version = 1
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.written: list[int] = []

    def write_user_ids(self, items: torch.Tensor, per_item: int) -> torch.Tensor:
        self.written.append(len(items))
        return torch.stack([items[:, -1] + 100 * self.version, torch.zeros_like(items[:, -1])], 1)


def test_user_ids_are_cached_per_recent_items_and_renewed_with_the_generator():
    ident = CountingIdentifier()
    users = UserIds(ident, items=2, item_tokens=4)
    history = torch.tensor([[1, 2, 3], [9, 2, 3], [0, 4, 5]])  # rows 0 and 1 share their last two items
    first = users(history)
    assert ident.written == [2] and first[:, 0].tolist() == [103, 103, 105]
    users(history[[2, 0]])
    assert ident.written == [2]  # all cached
    ident.version = 2  # a regeneration: user IDs are written again by the new generator
    assert users(history)[:, 0].tolist() == [203, 203, 205] and ident.written == [2, 2]


# --------------------------------------------------------------------------- building
def test_identifiers_without_a_generator_are_refused():
    class CodeIdentifier:
        vocab_size = 8

        def item_tokens(self) -> torch.Tensor:
            return torch.zeros(5, 3, dtype=torch.long)

    dataset = SimpleNamespace(n_items=4, item_domain=np.array([-1, 0, 0, 1, 1]), domains=["A", "B"])
    config = SimpleNamespace(identifier=SimpleNamespace(name="semantic-id"), data=SimpleNamespace(max_len=3))
    run = SimpleNamespace(identifier=CodeIdentifier(), dataset=dataset, config=config)
    with pytest.raises(ConfigError, match="encoder.params.user_ids='only'.*textual-id"):
        build_idgenrec_seq2seq(IdGenRecParams(**PARAMS, user_ids="only"), run)
    assert build_idgenrec_seq2seq(IdGenRecParams(**PARAMS), run).users is None  # off: unchanged


# --------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_quick_run_with_user_ids(tmp_path):
    metrics = tmp_path / "metrics.json"
    tiny = ["identifier.params.max_pieces=300", "identifier.params.warm_max_items=200",
            "transfer.params.generator_max_examples=32", "training.max_train_examples=64",
            "evaluation.valid_max_users=10", "domains.targets=[Scientific]", "decoder.params.beam_size=5",
            "training.threads=1", "encoder.params.user_ids=with-items"]
    cmd = [str(Path(sys.executable).with_name("mtrec")), "run", "--plugin", "idgenrec", "--quick", "--no-registry",
           "--no-progress", "--metrics-json", str(metrics)] + [a for s in tiny for a in ("--set", s)]
    env = {**os.environ, "MTREC_HOME": str(tmp_path / "home"), "MTREC_CACHE_DIR": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    # user IDs written by the initial generator and again after the round-2 regeneration
    assert "user IDs (identifier v1)" in done.stderr and "user IDs (identifier v2)" in done.stderr
    out = json.loads(metrics.read_text())
    assert [s["name"] for s in out["stages"]] == ["recommender:1", "generator:2", "recommender:2"]
    scientific = out["test"]["Scientific"]
    assert out["counts"]["Scientific"] > 0
    assert 0.0 <= scientific["ndcg@10"] <= scientific["recall@10"] <= 1.0 and 0.0 <= scientific["mrr"] <= 1.0
