"""The ``idp`` recipe (papers/idp.md §3.2) and the paper's variants as ``--set`` switches.

Defaults: SASRec with 64-d item embeddings trained with BPR and one sampled negative, batch 256,
Adam(W) lr 1e-3, early stopping with patience 20 (§3.2); history of 20 items; full ranking (the
project's protocol; ``evaluation.protocol=sampled`` gives the paper's 99 sampled negatives).  On
the bundled ``amazon-mini`` the new domain is Scientific and Arts + Office are pre-trained on; for
another dataset set ``domains.targets`` to its new domain(s).
"""

from __future__ import annotations

from mtrec.components import Recipe

IDP = Recipe(
    name="idp",
    description="IDP: SASRec pre-trained (BPR) on the source domains; a text matcher tuned with text + behaviour "
                "contrastive losses; new items' ID embeddings = similarity-weighted top-m pre-trained embeddings "
                "(faiss); fine-tuned on the new domain (papers/idp.md).",
    config={
        "identifier": {"name": "atomic"},
        "encoder": {"name": "sasrec", "params": {"hidden": 64, "layers": 2, "heads": 2, "dropout": 0.5,
                                                    "attn_dropout": 0.5, "loss": "bpr"}},
        "transfer": {"name": "pretrain-match-finetune", "params": {"mode": "finetune"}},
        "decoder": {"name": "topk"},
        "data": {"max_len": 20},
        "domains": {"targets": ["Scientific"]},
        "training": {"epochs": 200, "lr": 1e-3, "batch_size": 256, "patience": 20},
    },
    quick={
        "encoder": {"params": {"hidden": 32}},
        "transfer": {"params": {"pretrain_epochs": 3, "finetune_epochs": 3, "matcher_epochs": 1,
                                "matcher_max_steps": 40}},
        "training": {"patience": 2},
        "evaluation": {"valid_max_users": 300},
    },
)

# Variants of the paper (§2.6, §3.6-3.8) -> the --set switches that express them on the idp recipe.
VARIANTS: dict[str, list[str]] = {
    "IDP (mode 2: fine-tune encoder + generated embeddings)": [],
    "zero-shot (mode 1, Table 6)": ["transfer.params.mode=zero-shot"],
    "new encoder (mode 3, w/o PS of Table 8)": ["transfer.params.mode=new-encoder"],
    "IDP_ID+t": ["transfer.params.id_text=true"],
    "w/o M (Fig. 4)": ["transfer.params.matcher=false"],
    "w/o BCL (Fig. 4)": ["transfer.params.behavior_loss=false"],
    "intra-domain cold start (Table 7)": ["transfer.params.mode=cold-start"],
}
