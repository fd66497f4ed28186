"""The ``syncrec`` and ``syncrec-paper`` recipes (papers/syncrec.md §5.2.3) and the Table 5 ablations.

Paper values (§5.2.3): r = 128, batch 128, T = 128, K = 4 experts (Amazon), single-head two-block
transformer experts, Adam.  Not given by the paper, chosen here (README): lr 1e-3, dropout 0.2,
eta 0.9, early stopping on validation NDCG@10.

Scale: ``syncrec-paper`` is §5.2.3 as written (plus at most 200 epochs, patience 10); one epoch of
it costs ~5 min on a 2-core CPU, so ``syncrec`` (the default) is CPU-sized: the same method and
optimisation, r 64 and T 20, at most 15 epochs with patience 3 (~20 s an epoch, a few minutes a run).
Only these scale keys differ; tests/test_syncrec_recipes_scale.py keeps it that way.
"""

from __future__ import annotations

from mtrec.components import Recipe

# §5.2.3 as written (the epochs and patience are ours: the paper gives none).
PAPER_CONFIG = {
    "identifier": {"name": "atomic"},
    "encoder": {"name": "syncrec", "params": {"hidden": 128, "experts": 4, "layers": 2, "heads": 1,
                                                 "dropout": 0.2, "attn_dropout": 0.2, "eta": 0.9}},
    "transfer": {"name": "ntg-weighting"},
    "decoder": {"name": "topk"},
    "data": {"max_len": 128},
    "training": {"epochs": 200, "lr": 1e-3, "batch_size": 128, "patience": 10},
}

# The CPU-sized default.  Why these two: a user of the bundled amazon-mini has 11 training items on
# average (90% at most 23), so T = 128 windows are ~90% padding -- T = 20 (the history IDP and MAN
# use on Amazon) keeps nearly every interaction and cuts an epoch ~15-fold together with r 64; r is
# the paper's own scale knob (§5.6, Fig. 3: on Amazon r = 16 already does best).  K, the blocks,
# heads, dropout, eta, lr and batch stay §5.2.3's / the README's.
CPU_CONFIG = {
    **PAPER_CONFIG,
    "encoder": {**PAPER_CONFIG["encoder"], "params": {**PAPER_CONFIG["encoder"]["params"], "hidden": 64}},
    "data": {"max_len": 20},
    "training": {**PAPER_CONFIG["training"], "epochs": 15, "patience": 3},
}

QUICK = {
    "encoder": {"params": {"hidden": 32, "experts": 2, "layers": 1}},
    "data": {"max_len": 20},
    "training": {"epochs": 2, "patience": 1, "max_train_examples": 2000},
    "evaluation": {"valid_max_users": 200},
}

SYNCREC = Recipe(
    name="syncrec",
    description="SyNCRec: asymmetric cooperative mixture of transformer experts over single- and cross-domain "
                "sequences, NTG loss correction, SC-MIM (papers/syncrec.md); CPU-sized (syncrec-paper: the "
                "paper's scale).",
    config=CPU_CONFIG,
    quick=QUICK,
)

SYNCREC_PAPER = Recipe(
    name="syncrec-paper",
    description="SyNCRec at the paper's scale (§5.2.3: r 128, T 128, batch 128, K 4; at most 200 epochs, "
                "patience 10); ~5 min an epoch on a 2-core CPU, meant for a GPU.",
    config=PAPER_CONFIG,
    quick=QUICK,
)

# Table 5: variant -> the --set switches that express it on the syncrec recipe.
ABLATIONS: dict[str, list[str]] = {
    "w/o LC-NTG": ["transfer.params.correction=false"],
    "w/o SC-MIM": ["encoder.params.sc_mim=false"],
    "w/o ACMoE": ["encoder.params.stop_gradient=false"],
}
