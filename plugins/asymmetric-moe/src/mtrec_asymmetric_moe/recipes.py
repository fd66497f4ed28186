"""The ``syncrec`` recipe (papers/syncrec.md §5.2.3) and the Table 5 ablations as ``--set`` switches.

Paper values: r = 128, batch 128, T = 128, K = 4 experts (Amazon), single-head two-block
transformer experts, Adam.  Not given by the paper, chosen here (README): lr 1e-3, dropout 0.2,
eta 0.9, at most 200 epochs with early stopping (patience 10) on validation NDCG@10.
"""

from __future__ import annotations

from mtrec.components import Recipe

SYNCREC = Recipe(
    name="syncrec",
    description="SyNCRec: asymmetric cooperative mixture of transformer experts over single- and cross-domain "
                "sequences, NTG loss correction, SC-MIM (papers/syncrec.md).",
    config={
        "identifier": {"name": "atomic"},
        "encoder": {"name": "syncrec", "params": {"hidden": 128, "experts": 4, "layers": 2, "heads": 1,
                                                     "dropout": 0.2, "attn_dropout": 0.2, "eta": 0.9}},
        "transfer": {"name": "ntg-weighting"},
        "decoder": {"name": "topk"},
        "data": {"max_len": 128},
        "training": {"epochs": 200, "lr": 1e-3, "batch_size": 128, "patience": 10},
    },
    quick={
        "encoder": {"params": {"hidden": 32, "experts": 2, "layers": 1}},
        "data": {"max_len": 20},
        "training": {"epochs": 2, "patience": 1, "max_train_examples": 2000},
        "evaluation": {"valid_max_users": 200},
    },
)

# Table 5: variant -> the --set switches that express it on the syncrec recipe.
ABLATIONS: dict[str, list[str]] = {
    "w/o LC-NTG": ["transfer.params.correction=false"],
    "w/o SC-MIM": ["encoder.params.sc_mim=false"],
    "w/o ACMoE": ["encoder.params.stop_gradient=false"],
}
