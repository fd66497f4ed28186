"""The built-in recipe ``sasrec``: SASRec trained per domain, full-ranking top-k."""

from __future__ import annotations

from mtrec.components import Recipe

# RecBole-style SASRec on Amazon data (GMC's baseline protocol: history 20, full ranking).
SASREC = Recipe(
    name="sasrec",
    description="SASRec with atomic item IDs, one model per domain (the single-domain baseline).",
    config={
        "identifier": {"name": "atomic"},
        "encoder": {"name": "sasrec", "params": {"hidden": 64, "layers": 2, "heads": 2, "dropout": 0.5,
                                                    "attn_dropout": 0.5, "loss": "ce"}},
        "transfer": {"name": "single-domain"},
        "decoder": {"name": "topk"},
        "data": {"max_len": 20},
        "training": {"epochs": 200, "lr": 1e-3, "batch_size": 256, "patience": 10},
    },
    quick={
        "encoder": {"params": {"hidden": 32}},
        "training": {"epochs": 3, "patience": 2},
        "evaluation": {"valid_max_users": 300},
    },
)
