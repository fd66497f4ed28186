"""The ``man`` recipe (papers/man.md §4.1.3, Amazon settings), Table 3 ablations, Figure 3 study.

Paper values: Adam lr 1e-3, Xavier init, embedding size 20, prediction MLPs [20, 10], history 20,
batch 20, L2 searched in {1e-7, 1e-5, 1e-3}, N_g searched in {1, 5, 10, 20}.  One joint stage on all
domains; Eq. 18 sums the per-domain mean losses, i.e. every domain weighs the same (``equal``).
Everything the paper leaves open is in the plugin README.
"""

from __future__ import annotations

from mtrec.components import Recipe

MAN = Recipe(
    name="man",
    description="MAN: local/global embeddings and encoders, item-similarity, sequence-fusion and "
                "group-prototype attention, local/global prediction MLPs, BCE with sampled negatives (papers/man.md).",
    config={
        "identifier": {"name": "atomic"},
        "encoder": {"name": "man", "params": {"hidden": 20, "mlp": [20, 10], "groups": 10, "backbone": "sasrec"}},
        "transfer": {"name": "joint", "params": {"domain_weighting": "equal"}},
        "decoder": {"name": "pointwise"},
        "data": {"max_len": 20},
        "training": {"epochs": 200, "lr": 1e-3, "batch_size": 20, "patience": 10},
        # Pointwise full ranking costs ~|items| head evaluations per user: validate on a seeded sample.
        "evaluation": {"batch_size": 128, "valid_max_users": 1000},
    },
    # Full ranking dominates a quick run (every user of every domain against every item, each pair
    # through ISA's [T, isa_hidden] tensor), so the history (T) and ISA width are halved: ~1 minute.
    quick={
        "encoder": {"params": {"hidden": 16, "mlp": [16, 8], "groups": 4, "isa_hidden": 8,
                               "backbone_params": {"layers": 1, "heads": 1, "dropout": 0.2, "attn_dropout": 0.2}}},
        "data": {"max_len": 10},
        "training": {"epochs": 2, "patience": 1, "batch_size": 256, "max_train_examples": 6000},
        "evaluation": {"valid_max_users": 200},
    },
)

# Table 3: variant -> the --set switches on the man recipe.
ABLATIONS: dict[str, list[str]] = {
    "w/o ISA": ["encoder.params.isa=false"],
    "w/o SFA": ["encoder.params.sfa=false"],
    "w/o GPA": ["encoder.params.gpa=false"],
}

# Figure 3: Single (local module, one model per domain), Shared (global module on all domains), Cross (MAN).
BACKBONE_STUDY: dict[str, list[str]] = {
    "single": ["encoder.params.variant=single", "transfer.name=single-domain"],
    "shared": ["encoder.params.variant=shared"],
    "cross": [],
}
