"""The ``idgenrec`` (CPU-sized) and ``idgenrec-paper`` recipes (papers/idgenrec.md §2-3; see the README).

``textual-id`` identifier (word-piece vocabulary of all-MiniLM-L6-v2, a small T5 ID generator
warm-started on TF-IDF keywords, Algorithm 1 with k = 10 groups and penalties 1..10), the
``idgenrec-seq2seq`` recommender (prompt templates over the core T5), ``trie-beam`` decoding over the
target domain's IDs, and ``idgenrec-alternate`` training (3 rounds).  Table 5's ablations are
``--set transfer.params.schedule=rec-only|id-only``; zero-shot is ``domains.sources`` without the
target; per-domain LoRA on top is ``--set transfer.params.mode=lora``.

Scale: ``idgenrec-paper`` has the paper's sizes (§3.2: T5-small backbones, the whole vocabulary,
ID lengths [1, 10) then [10, 20), 10 recommender epochs per round) trained from scratch (no
pretrained T5 is reachable), and no samples; it is meant for a GPU.  The default ``idgenrec`` is
CPU-sized (small T5s, a 2,000-piece vocabulary, 4 recommender epochs a round, samples of the
warm-start items and generator examples); only scale keys differ (tests/test_idgenrec_recipes_scale.py).
"""

from __future__ import annotations

from mtrec.components import Recipe

# Shared by both scales: Algorithm 1's k = 10 groups and penalties 1..10 (§3.2), TF-IDF warm start (a
# stand-in for the paper's tag-generation T5), beam 20, 3 alternate rounds, lr 1e-3 (§3.2), the
# generator's lr (README: the paper's 1e-8 is for a pretrained T5), batch sizes.
IDENTIFIER_METHOD = {"warm_start": "tfidf", "warm_words": 3, "warm_epochs": 2, "warm_lr": 3e-3,
                     "groups": 10, "max_penalty": 10}
TRANSFER_METHOD = {"schedule": "alternate", "rounds": 3, "generator_epochs": 1, "generator_lr": 1e-4,
                   "generator_batch_size": 16, "mode": "none"}

# T5-small (the paper's backbone, §2.6 / §3.2: d_model 512, 6+6 layers, 8 heads of 64, d_ff 2048).
T5_SMALL = {"d_model": 512, "d_ff": 2048, "num_layers": 6, "num_decoder_layers": 6, "num_heads": 8, "d_kv": 64}

PAPER_CONFIG = {
    "identifier": {"name": "textual-id", "params": {
        **IDENTIFIER_METHOD, "generator": T5_SMALL,
        "max_text_tokens": 64, "max_pieces": None, "warm_max_items": None,
        "length_ranges": [[1, 10], [10, 20]]}},  # §3.2: "[1, 10) ... [10, 20)"
    "encoder": {"name": "idgenrec-seq2seq", "params": {**T5_SMALL, "dropout": 0.1}},
    "decoder": {"name": "trie-beam", "params": {"beam_size": 20}},
    "transfer": {"name": "idgenrec-alternate", "params": {
        **TRANSFER_METHOD, "recommender_epochs": 10, "generator_max_examples": None}},  # §3.2: 1 + 10 epochs x 3
    # History 20 (the paper gives none; P5-style prompts); patience 10 = the paper's 10 epochs per round.
    "data": {"max_len": 20},
    "training": {"epochs": 10, "lr": 1e-3, "batch_size": 128, "patience": 10},
}

# The CPU-sized default (measured in the README).  On a 2-core CPU, generating every item's ID
# (initially and after each generator round) costs ~30 s a time with 2,000 pieces, a recommender epoch
# over every training example ~50 s and a validation on every user ~20 s (one thread).  A seeded
# sample of 2,000 examples (the previous default) left the recommender at chance level (test NDCG@10
# 0.0008): the recommender needs every example and ~10 epochs before it ranks anything, so the default
# trains on all of them, 4 epochs a round, and validates on every user (a 100-user sample holds a hit
# or two and cannot select epochs).  The smaller vocabulary and text keep the generator's output layer
# and masks small.
GENERATOR = {"d_model": 64, "d_ff": 256, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4, "d_kv": 16}
RECOMMENDER = {**GENERATOR, "dropout": 0.1}

CPU_CONFIG = {
    **PAPER_CONFIG,
    "identifier": {"name": "textual-id", "params": {
        **IDENTIFIER_METHOD, "generator": GENERATOR,
        "max_text_tokens": 32, "max_pieces": 2000, "warm_max_items": 2000,
        "length_ranges": [[1, 6], [6, 10]]}},
    "encoder": {"name": "idgenrec-seq2seq", "params": RECOMMENDER},
    "transfer": {"name": "idgenrec-alternate", "params": {
        **TRANSFER_METHOD, "recommender_epochs": 4, "generator_max_examples": 500}},
    "data": {"max_len": 10},
    "training": {"epochs": 10, "lr": 1e-3, "batch_size": 128, "patience": 3, "max_train_examples": None},
    "evaluation": {"valid_max_users": None},
}

# --quick (~1 min on the shared 2-core CPU): generating every item's ID (twice: initial, round 2)
# dominates, and its cost grows with the vocabulary (output layer, masks) and the ID length,
# so both are small here; the IDs stay unique (digits rescue ~0.2% of items).
QUICK = {
    "identifier": {"params": {
        "generator": {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "d_kv": 16},
        "max_text_tokens": 16, "max_pieces": 800, "warm_epochs": 1, "warm_max_items": 2000,
        "groups": 4, "max_penalty": 2, "length_ranges": [[1, 5], [5, 8]]}},
    "encoder": {"params": {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1,
                           "num_heads": 2, "d_kv": 16}},
    "decoder": {"params": {"beam_size": 10}},
    "transfer": {"params": {"rounds": 2, "recommender_epochs": 1, "generator_max_examples": 200}},
    # max_len and patience: the default's values, so that idgenrec-paper --quick is the same tiny run.
    "data": {"max_len": 10},
    "training": {"max_train_examples": 1500, "patience": 3},
    "evaluation": {"valid_max_users": 100},
}

IDGENREC = Recipe(
    name="idgenrec",
    description="IDGenRec: textual item IDs from a seq2seq ID generator (diverse beam search for uniqueness), "
                "a prompt-based T5 recommender, trie-constrained beam search, alternate training (papers/idgenrec.md); "
                "CPU-sized (idgenrec-paper: the paper's scale).",
    config=CPU_CONFIG,
    quick=QUICK,
)

IDGENREC_PAPER = Recipe(
    name="idgenrec-paper",
    description="IDGenRec at the paper's scale (§3.2: T5-small generator and recommender from scratch, whole "
                "vocabulary, IDs of [1, 10) then [10, 20) pieces, 3 rounds of 1 + 10 epochs); meant for a GPU.",
    config=PAPER_CONFIG,
    quick=QUICK,
)

# Table 5: strategy -> the --set switches that express it on the idgenrec recipe.
ABLATIONS: dict[str, list[str]] = {
    "alternate": [],
    "rec-only": ["transfer.params.schedule=rec-only"],
    "id-only": ["transfer.params.schedule=id-only"],
}

# Table 6: which IDs the prompt carries -> the --set switches on the idgenrec recipe.
TABLE6: dict[str, list[str]] = {
    "item IDs": [],
    "user + item IDs": ["encoder.params.user_ids=with-items"],
    "user IDs only": ["encoder.params.user_ids=only"],
}
