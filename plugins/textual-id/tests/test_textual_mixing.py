"""``idgenrec-seq2seq`` with identifiers other than ``textual-id`` (semantic IDs): the prompt words
sit after the identifier's tokens, IDs have no end marker; the textual path is unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mtrec_textual_id.generator import id_positions
from mtrec_textual_id.recommender import IdGenRecParams, build_idgenrec_seq2seq
from mtrec_textual_id.templates import SEPARATOR, TEMPLATES, split_template
from mtrec_textual_id.vocab import END, PieceVocab, load_tokenizer, prompt_vocab

REPO = Path(__file__).resolve().parents[3]
MIX = REPO / "examples" / "mixes" / "semantic-ids-prompt-recommender.yaml"
PARAMS = dict(d_model=16, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8, dropout=0.0)

# A semantic-ID-like identifier: 3 codes per item, vocabulary 8, code 0 is a real code (no END).
CODES = torch.tensor([[0, 0, 0], [0, 3, 0], [5, 0, 7], [0, 0, 4], [6, 1, 2]])


class CodeIdentifier:
    vocab_size = 8

    def item_tokens(self) -> torch.Tensor:
        return CODES.clone()


def fake_run(identifier: object, name: str = "semantic-id") -> SimpleNamespace:
    dataset = SimpleNamespace(n_items=4, item_domain=np.array([-1, 0, 0, 1, 1]), domains=["A", "B"])
    config = SimpleNamespace(identifier=SimpleNamespace(name=name), data=SimpleNamespace(max_len=3))
    return SimpleNamespace(identifier=identifier, dataset=dataset, config=config)


@pytest.fixture(scope="module")
def words() -> PieceVocab:
    parts = [text for t in TEMPLATES for text in split_template(t)]
    return prompt_vocab(load_tokenizer("all-MiniLM-L6-v2"), parts, SEPARATOR)


def mixed_model(templates: int = 1):
    torch.manual_seed(0)
    return build_idgenrec_seq2seq(IdGenRecParams(**PARAMS, templates=templates), fake_run(CodeIdentifier())).eval()


def test_prompt_pieces_map_above_the_identifier_vocabulary(words):
    m = mixed_model()
    assert m.identifier_vocab == CodeIdentifier.vocab_size + len(words)
    assert m.t5.config.vocab_size == m.token_offset + CodeIdentifier.vocab_size + len(words)
    assert m.end_token is None and m.decode_vocab == CodeIdentifier.vocab_size
    assert m.separator == CodeIdentifier.vocab_size + words.index[SEPARATOR]
    prefix, suffix = split_template(TEMPLATES[0])
    assert m.prefix[0, : m.prefix_len[0]].tolist() == [8 + i for i in words.encode(prefix)]
    assert m.suffix[0, : m.suffix_len[0]].tolist() == [8 + i for i in words.encode(suffix)]
    pieces = torch.cat([m.prefix[m.prefix_len.unsqueeze(1) > torch.arange(m.prefix.shape[1])],
                        m.suffix[m.suffix_len.unsqueeze(1) > torch.arange(m.suffix.shape[1])]])
    assert int(pieces.min()) >= 8 and int(pieces.max()) < 8 + len(words)
    # "{" / "}" of the placeholder are not prompt words
    assert "{" not in words.index and "history" in words.index


def test_prompt_interpolates_the_history_codes_unchanged(words):
    m = mixed_model()
    history = torch.tensor([[0, 1, 2], [0, 0, 3]])
    ids, mask = m.encoder_inputs(history, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    rows = [[t - m.token_offset for t, keep in zip(r, k) if keep] for r, k in zip(ids.tolist(), mask.tolist())]
    prefix, suffix = ([8 + i for i in words.encode(part)] for part in split_template(TEMPLATES[0]))
    sep = m.separator
    # every code is kept, zeros included (no END to strip); "," between items, not after the last
    assert rows[0] == prefix + [0, 3, 0, sep, 5, 0, 7] + suffix
    assert rows[1] == prefix + [0, 0, 4] + suffix


def test_decoder_sees_identifier_tokens_only():
    m = mixed_model()
    batch = {"history": torch.tensor([[0, 1, 2]]), "domain": torch.tensor([1])}
    logits, _ = m.step(m.encode(batch), torch.zeros(1, 0, dtype=torch.long))
    assert logits.shape == (1, CodeIdentifier.vocab_size)
    full = m.t5(input_ids=m.encoder_inputs(batch["history"], batch["domain"])[0],
                decoder_input_ids=torch.zeros(1, 1, dtype=torch.long)).logits[0, -1]
    assert torch.allclose(logits[0], full[m.token_offset : m.token_offset + CodeIdentifier.vocab_size], atol=1e-6)


def test_id_positions_count_every_position_without_an_end_marker():
    rows = torch.tensor([[0, 0, 4], [3, 0, 0]])
    assert id_positions(rows).tolist() == [[1, 0, 0], [1, 1, 0]]  # textual: tokens + first [END]
    assert id_positions(rows, None).tolist() == [[1, 1, 1], [1, 1, 1]]


def test_loss_scores_every_code_of_the_target():
    m = mixed_model()
    batch = {"history": torch.tensor([[0, 1, 2]]), "target": torch.tensor([3])}  # target codes 0 0 4
    loss = m.loss(batch)
    ids, mask = m.encoder_inputs(batch["history"], torch.tensor([1]), torch.tensor([0]))
    logits = m.t5(input_ids=ids, attention_mask=mask, decoder_input_ids=m._decoder_inputs(CODES[[3]])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    off = m.token_offset
    expected = -(logp[0, 0 + off] + logp[1, 0 + off] + logp[2, 4 + off]) / 3  # a textual END rule would stop at 1
    assert loss.losses["B"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_textual_identifier_keeps_its_own_vocabulary():
    tokenizer = load_tokenizer("all-MiniLM-L6-v2")
    vocab = PieceVocab.build(tokenizer, ["red apple box", "green pear"], always=TEMPLATES)
    rows = torch.tensor([[END, END], [vocab.index["red"], END], [vocab.index["pear"], END],
                         [vocab.index["apple"], vocab.index["box"]], [vocab.index["green"], END]])
    identifier = SimpleNamespace(vocab=vocab, vocab_size=len(vocab), item_tokens=lambda: rows.clone())
    m = build_idgenrec_seq2seq(IdGenRecParams(**PARAMS), fake_run(identifier, "textual-id"))
    assert m.identifier_vocab == m.decode_vocab == len(vocab) and m.end_token == END
    assert m.separator == vocab.index[SEPARATOR]
    prefix, _ = split_template(TEMPLATES[0])
    assert m.prefix[0, : m.prefix_len[0]].tolist() == vocab.encode(prefix)


def test_identifier_tokens_outside_its_vocabulary_are_refused():
    from mtrec.errors import ConfigError

    bad = CodeIdentifier()
    bad.vocab_size = 5  # CODES hold 7
    with pytest.raises(ConfigError, match="semantic-id.*vocab_size=5"):
        build_idgenrec_seq2seq(IdGenRecParams(**PARAMS), fake_run(bad))


# Small enough for a test; the mix's own --quick profile is timed in the README.
TINY = ["identifier.params.epochs=2", "training.max_train_examples=200", "training.epochs=1",
        "evaluation.valid_max_users=20", "data.max_len=5", "decoder.params.beam_size=5", "training.threads=1",
        "transfer.params.lora_batch_size=256"]


@pytest.mark.slow
def test_semantic_ids_through_the_prompt_recommender_mix(tmp_path, words):
    from mtrec.config import resolve
    from mtrec.engine import execute_run
    from mtrec.plugins import Plugins

    plugins = Plugins().load()
    if "semantic-id" not in plugins.catalogue.components["identifier"]:
        pytest.skip("semantic-id plugin not installed")
    resolved = resolve(plugins.catalogue, None, config_file=MIX, quick=True, overrides=TINY)
    config = resolved.config
    assert (config.recipe, config.identifier.name, config.encoder.name, config.transfer.name, config.decoder.name) \
        == ("gmc", "semantic-id", "idgenrec-seq2seq", "unified-then-lora", "trie-beam")
    assert config.encoder.params["d_model"] == 32  # the file's quick section, not seq2seq's
    outcome = execute_run(resolved, plugins, progress=False, output_root=tmp_path)
    for domain in ("Scientific", "Arts", "Office"):
        metrics = outcome.test.metrics[domain]
        assert 0.0 <= metrics["ndcg@10"] <= metrics["recall@10"] <= 1.0
    models = outcome.run_dir / "models"
    assert sorted(p.name for p in models.glob("adapter-*.pt")) == \
        ["adapter-Arts.pt", "adapter-Office.pt", "adapter-Scientific.pt"]
    id_vocab = json.loads((outcome.run_dir / "identifier" / "semantic_id.json").read_text())["vocab_size"]
    embedding = torch.load(models / "base.pt", weights_only=True)["t5.shared.weight"]
    token_offset = 2 + 3  # pad, eos, one token per domain
    assert embedding.shape[0] == token_offset + id_vocab + len(words)


def test_task_losses_key_the_loss_by_task_and_domain():
    torch.manual_seed(0)
    m = build_idgenrec_seq2seq(IdGenRecParams(**PARAMS, templates=1, task_losses=True), fake_run(CodeIdentifier()))
    assert m.domain_prompt  # a cross-domain history needs the target domain's token
    batch = {"history": torch.tensor([[0, 1, 2], [0, 2, 3]]), "target": torch.tensor([3, 4]),
             "task": torch.tensor([0, 1])}
    assert sorted(m.eval().loss(batch).losses) == ["cross/B", "single/B"]
