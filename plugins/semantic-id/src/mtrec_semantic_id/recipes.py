"""The ``gmc`` and ``tiger`` recipes (papers/gmc.md §5.1.4).

Both pair the ``semantic-id`` identifier with the core's generative parts: the ``seq2seq``
encoder (a T5 built from a config), the ``trie-beam`` decoder (beam search constrained to the target
domain's identifier trie) and a transfer strategy:

* ``gmc``: one RQ-VAE for all domains with the domain-aware contrastive loss; one unified
  recommender trained on all domains (lr 2e-3, batch 1024, 200 epochs), then one LoRA per domain on
  the attention projections (lr 5e-4, batch 512, early stopping); beam 20.
* ``tiger``: TIGER run on each domain alone, as GMC's Table 3 baseline: one RQ-VAE per domain, no
  contrastive loss, one recommender per domain (``single-domain``); beam 20.

Scale: ``gmc`` and ``tiger`` are sized so that ``mtrec run --plugin gmc`` finishes in minutes on a
laptop CPU with the bundled data (the method and its optimisation hyper-parameters unchanged; a
2+2-layer T5 with d_model 64, fewer epochs, validation on a user sample).  ``gmc-paper`` and
``tiger-paper`` are the paper's scale (§5.1.4: ~4.5M-parameter T5, 200 epochs, batch 1024), for a GPU.

The five ablations of GMC's Table 4 are single ``--set`` switches on ``gmc`` (see ``ABLATIONS`` and the
README).
"""

from __future__ import annotations

from mtrec.components import Recipe

# The RQ-VAE of §5.1.4 (epochs: see the README; the paper's 10k epochs are a GPU budget).
SEMANTIC_ID = {
    "levels": 4, "codebook_size": 256, "latent_dim": 32, "hidden": [512, 256, 128],
    "beta": 0.25, "lr": 1e-3, "batch_size": 1024, "epochs": 30,
    "shared_codebooks": True, "contrastive": True, "kmeans_init": True,
    "text_model": "all-MiniLM-L6-v2", "collision": "extra-level",
}

# --quick: a tiny RQ-VAE, a tiny T5, one or two epochs, validation on a sample of users.
# (tiger's per-domain RQ-VAEs get 30 epochs: a small domain has only a few steps per epoch.)
QUICK_IDENTIFIER = {"params": {"epochs": 10, "hidden": [128], "kmeans_iters": 10}}
QUICK_ENCODER = {"params": {"d_model": 32, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1,
                            "num_heads": 2, "d_kv": 16}}
QUICK_EVAL = {"valid_max_users": 200}

# What both recipes share: the T5 recommender, beam-20 trie decoding and the paper's training loop.
GENERATIVE_PAPER = {
    "encoder": {"name": "seq2seq"},  # the seq2seq defaults: 4+4 layers, d_model 128 (~4.5M parameters)
    "decoder": {"name": "trie-beam", "params": {"beam_size": 20}},
    "data": {"max_len": 20},
    "training": {"epochs": 200, "lr": 2e-3, "batch_size": 1024, "patience": 10},
}
# The CPU-sized default, a demonstration that finishes in a few minutes on a 2-core CPU: the same
# method and optimiser, a smaller T5, three epochs over a seeded sample of 3,000 training examples
# per stage (a step of this T5 at batch 256 costs 2-4 s on such a CPU; all ~60k examples of the
# bundled data for 10 epochs would take hours), validation on a user sample.  No dropout: a third
# of a CPU step is drawing dropout masks, and three short epochs are far from over-fitting.  Its
# metrics are those of an under-trained model; gmc-paper / tiger-paper (a GPU) are the
# configurations to compare.
GENERATIVE = {
    **GENERATIVE_PAPER,
    "encoder": {"name": "seq2seq", "params": {"d_model": 64, "d_ff": 256, "num_layers": 2,
                                                "num_decoder_layers": 2, "num_heads": 4, "d_kv": 16,
                                                "dropout": 0.0}},
    "training": {"epochs": 3, "lr": 2e-3, "batch_size": 256, "patience": 2, "max_train_examples": 3000},
    "evaluation": {"valid_max_users": 200},
}
# RQ-VAE epochs of the CPU-sized recipes (the paper MLP; one epoch of 18.7k items costs ~5 s on a
# 2-core CPU); the paper-scale recipes use PAPER_IDENTIFIER_EPOCHS.
CPU_IDENTIFIER_EPOCHS = 10
QUICK_GENERATIVE = {
    "encoder": QUICK_ENCODER,
    "decoder": {"params": {"beam_size": 10}},
    "training": {"epochs": 2, "patience": 1, "max_train_examples": 4000},
    "evaluation": QUICK_EVAL,
}

GMC_TRANSFER = {"name": "unified-then-lora", "params": {"mode": "lora", "lora_lr": 5e-4, "lora_batch_size": 512}}

GMC = Recipe(
    name="gmc",
    description="GMC: shared RQ-VAE semantic IDs + domain-aware contrastive loss, a unified T5 recommender "
                "on all domains, per-domain LoRA, trie-constrained beam search (papers/gmc.md); CPU-sized "
                "(gmc-paper: the paper's scale).",
    config={
        **GENERATIVE,
        "identifier": {"name": "semantic-id", "params": {**SEMANTIC_ID, "epochs": CPU_IDENTIFIER_EPOCHS}},
        "transfer": {**GMC_TRANSFER, "params": {**GMC_TRANSFER["params"], "lora_epochs": 1}},
    },
    quick={
        **QUICK_GENERATIVE,
        "identifier": QUICK_IDENTIFIER,
        "transfer": {"params": {"lora_epochs": 1}},
    },
)

TIGER_IDENTIFIER = {"name": "semantic-id", "params": {**SEMANTIC_ID, "shared_codebooks": False, "contrastive": False}}
# tiger's per-domain RQ-VAEs: a domain has a third of the items, so three times the epochs cost the same.
TIGER_CPU_IDENTIFIER = {**TIGER_IDENTIFIER, "params": {**TIGER_IDENTIFIER["params"], "epochs": 3 * CPU_IDENTIFIER_EPOCHS}}

TIGER = Recipe(
    name="tiger",
    description="TIGER on each domain alone: one RQ-VAE and one T5 recommender per domain, "
                "trie-constrained beam search (GMC's Table 3 baseline); CPU-sized (tiger-paper: the paper's scale).",
    config={
        **GENERATIVE,
        "identifier": TIGER_CPU_IDENTIFIER,
        "transfer": {"name": "single-domain"},
    },
    quick={
        **QUICK_GENERATIVE,
        "identifier": {"params": {**QUICK_IDENTIFIER["params"], "epochs": 30}},
    },
)

# The paper's scale (§5.1.4), for a GPU.  RQ-VAE epochs: 100 here, not the paper's 10k (see the README).
PAPER_IDENTIFIER_EPOCHS = 100

GMC_PAPER = Recipe(
    name="gmc-paper",
    description="GMC at the paper's scale (§5.1.4): ~4.5M-parameter T5, 200 epochs at batch 1024, LoRA to "
                "early stopping; meant for a GPU.",
    config={
        **GENERATIVE_PAPER,
        "identifier": {"name": "semantic-id", "params": {**SEMANTIC_ID, "epochs": PAPER_IDENTIFIER_EPOCHS}},
        "transfer": GMC_TRANSFER,
    },
    quick=GMC.quick,
)

TIGER_PAPER = Recipe(
    name="tiger-paper",
    description="TIGER per domain at the paper's scale (GMC §5.1.4 settings); meant for a GPU.",
    config={
        **GENERATIVE_PAPER,
        "identifier": {**TIGER_IDENTIFIER,
                       "params": {**TIGER_IDENTIFIER["params"], "epochs": PAPER_IDENTIFIER_EPOCHS}},
        "transfer": {"name": "single-domain"},
    },
    quick=TIGER.quick,
)

# GMC Table 4: variant -> the --set switches that express it on the gmc recipe.
ABLATIONS: dict[str, list[str]] = {
    "w/o sharable codebook": ["identifier.params.shared_codebooks=false"],
    "w/o unified recommender": ["transfer.name=single-domain"],
    "w/o L_dcl": ["identifier.params.contrastive=false"],
    "w/o lora fine-tuning": ["transfer.params.mode=none"],
    "fine-tune all parameters": ["transfer.params.mode=full"],
}
