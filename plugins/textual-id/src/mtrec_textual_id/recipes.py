"""The ``idgenrec`` recipe (papers/idgenrec.md §2-3), sized for a 2-core CPU (see the README).

``textual-id`` identifier (word-piece vocabulary of all-MiniLM-L6-v2, a small T5 ID generator
warm-started on TF-IDF keywords, Algorithm 1 with k = 10 groups and penalties 1..10), the
``idgenrec-seq2seq`` recommender (prompt templates over the core T5), ``trie-beam`` decoding over the
target domain's IDs, and ``idgenrec-alternate`` training (3 rounds).  Table 5's ablations are
``--set transfer.params.schedule=rec-only|id-only``; zero-shot is ``domains.sources`` without the
target; per-domain LoRA on top is ``--set transfer.params.mode=lora``.
"""

from __future__ import annotations

from mtrec.components import Recipe

GENERATOR = {"d_model": 64, "d_ff": 256, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4, "d_kv": 16}
RECOMMENDER = {"d_model": 64, "d_ff": 256, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4, "d_kv": 16,
               "dropout": 0.1}

IDGENREC = Recipe(
    name="idgenrec",
    description="IDGenRec: textual item IDs from a seq2seq ID generator (diverse beam search for uniqueness), "
                "a prompt-based T5 recommender, trie-constrained beam search, alternate training (papers/idgenrec.md).",
    config={
        "identifier": {"name": "textual-id", "params": {
            "generator": GENERATOR, "max_text_tokens": 48, "max_pieces": 4000, "warm_start": "tfidf",
            "warm_words": 3, "warm_epochs": 2, "warm_max_items": 4000, "warm_lr": 3e-3,
            "groups": 10, "max_penalty": 10,
            "length_ranges": [[1, 6], [6, 10]]}},
        "encoder": {"name": "idgenrec-seq2seq", "params": RECOMMENDER},
        "decoder": {"name": "trie-beam", "params": {"beam_size": 20}},
        "transfer": {"name": "idgenrec-alternate", "params": {
            "schedule": "alternate", "rounds": 3, "recommender_epochs": 2, "generator_epochs": 1,
            "generator_lr": 1e-4, "generator_batch_size": 16, "generator_max_examples": 1000, "mode": "none"}},
        "data": {"max_len": 10},
        "training": {"epochs": 10, "lr": 1e-3, "batch_size": 128, "patience": 3, "max_train_examples": 6000},
        "evaluation": {"valid_max_users": 300},
    },
    # --quick (~1 min on the shared 2-core CPU): generating every item's ID (twice: initial, round 2)
    # dominates, and its cost grows with the vocabulary (output layer, masks) and the ID length,
    # so both are small here; the IDs stay unique (digits rescue ~0.2% of items).
    quick={
        "identifier": {"params": {
            "generator": {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "d_kv": 16},
            "max_text_tokens": 16, "max_pieces": 800, "warm_epochs": 1, "warm_max_items": 2000,
            "groups": 4, "max_penalty": 2, "length_ranges": [[1, 5], [5, 8]]}},
        "encoder": {"params": {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1,
                               "num_heads": 2, "d_kv": 16}},
        "decoder": {"params": {"beam_size": 10}},
        "transfer": {"params": {"rounds": 2, "recommender_epochs": 1, "generator_max_examples": 200}},
        "training": {"max_train_examples": 1500},
        "evaluation": {"valid_max_users": 100},
    },
)

# Table 5: strategy -> the --set switches that express it on the idgenrec recipe.
ABLATIONS: dict[str, list[str]] = {
    "alternate": [],
    "rec-only": ["transfer.params.schedule=rec-only"],
    "id-only": ["transfer.params.schedule=id-only"],
}
