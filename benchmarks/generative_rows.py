"""The rows of the multi-domain generative benchmark (``benchmarks/generative.py``): which recipes it runs,
the ablations and other variants as a recipe plus config switches, each profile's overrides, and which rows
share gmc's identifier and unified stage.  Changing a row here changes what the next run of that row trains;
runs already finished keep the overrides they recorded."""

from __future__ import annotations

RECIPES = ("gmc", "tiger", "sasrec", "gmc-shared-off", "gmc-unified-off", "gmc-full-finetune",
           "gmc-full-finetune-long", "tiger-patience-8", "gmc-t5-paper-size", "tiger-t5-paper-size",
           "gmc-t5-paper-size-full-finetune")
# patience 8, the lr halved after every 2 validations without a new best: for a stage that trains one domain's
# model to early stopping, where patience 4 with a halving after every miss stopped stages still learning
PER_DOMAIN_PATIENCE = {"patience": 8, "lr_decay_patience": 2}
TRAINING_PATIENCE_8 = {f"training.{k}": v for k, v in PER_DOMAIN_PATIENCE.items()}  # for every stage of a run
# The papers' T5 (the seq2seq defaults: 4+4 layers, d_ff 1024, 6 heads of 64) instead of the CPU recipes' 2+2-layer
# one, at lr 1e-3: at the recipes' 3e-3 it trained slower than the small T5 (docs/benchmarks.md, "A unified model
# of the papers' size").
PAPER_T5 = {"encoder.params.d_ff": 1024, "encoder.params.num_layers": 4, "encoder.params.num_decoder_layers": 4,
            "encoder.params.num_heads": 6, "encoder.params.d_kv": 64, "training.lr": 1e-3}


def full_finetune_like_tiger(lr: float) -> dict:
    """gmc's per-domain stages as a full fine-tuning trained like a model from scratch: the unified stage's
    ``lr`` and batch 128, an epoch cap of 80, patience 8 with a halving after every 2 misses."""
    return {"transfer.params.mode": "full", "transfer.params.lora_lr": lr, "transfer.params.lora_batch_size": 128,
            "transfer.params.lora_epochs": 80,
            **{f"transfer.params.lora_{k}": v for k, v in PER_DOMAIN_PATIENCE.items()}}


# An ablation is a recipe of the table run as another recipe plus its switches (GMC's Table 4, and two variants
# that put gmc's per-domain stages and tiger's on one protocol).
ABLATIONS: dict[str, tuple[str, dict]] = {
    "gmc-shared-off": ("gmc", {"identifier.params.shared_codebooks": False}),
    "gmc-unified-off": ("gmc", {"transfer.name": "single-domain"}),
    "gmc-full-finetune": ("gmc", {"transfer.params.mode": "full"}),
    "gmc-full-finetune-long": ("gmc", full_finetune_like_tiger(3e-3)),
    "tiger-patience-8": ("tiger", TRAINING_PATIENCE_8),
    # gmc as the paper has it (LoRA at the paper's rate) and tiger, both with the papers' T5 and patience 8 in
    # every stage; lora_epochs 40 so that the LoRA stages' patience 8 is not cut by the profile's cap of 10
    "gmc-t5-paper-size": ("gmc", {**PAPER_T5, **TRAINING_PATIENCE_8, "transfer.params.lora_epochs": 40}),
    "tiger-t5-paper-size": ("tiger", {**PAPER_T5, **TRAINING_PATIENCE_8}),
    # the papers' T5 with gmc-full-finetune-long's per-domain stages (at this T5's lr): tiger's protocol per domain,
    # started from the unified model
    "gmc-t5-paper-size-full-finetune": ("gmc", {**PAPER_T5, **TRAINING_PATIENCE_8,
                                                **full_finetune_like_tiger(PAPER_T5["training.lr"])}),
}
# what each ablation row is, for the section's header
ABLATION_NOTES = {
    "gmc-shared-off": "GMC's Table 4 ablation (1) \"w/o sharable codebook\": the `gmc` run above with one RQ-VAE per "
                      "domain (`identifier.params.shared_codebooks=false`; the domain-aware contrastive loss then has "
                      "one domain per RQ-VAE and is 0), the unified T5 and the per-domain LoRA stages kept. The paper "
                      "reports a significant drop without the shared codebook (§5.3).",
    "gmc-unified-off": "GMC's Table 4 ablation (2) \"w/o unified recommender\": gmc's shared identifier (the RQ-VAE "
                       "with the domain-aware contrastive loss) and one T5 per domain (`transfer.name=single-domain`, "
                       "tiger's training on gmc's codes; gmc's LoRA settings do not apply). The paper reports that this "
                       "variant \"drops sharply\" (§5.3).",
    "gmc-full-finetune": "GMC's Table 4 ablation (5) \"fine-tune all parameters\": the `gmc` run with a full copy of "
                         "the unified model fine-tuned per domain instead of a LoRA adapter (`transfer.params.mode=full`, "
                         "the same lr, batch and epochs as the LoRA stages). The paper finds it \"generally\" a little "
                         "worse than LoRA, better on Office (§5.3).",
    "gmc-full-finetune-long": "not a row of the paper: ablation (5) with its per-domain stages trained like a model "
                              "from scratch, at the unified stage's lr and batch (3e-3, 128), patience 8 and the lr "
                              "halved after every 2 validations without a new best, at most 80 epochs; the unified "
                              "stage as gmc's. On this CPU the paper's LoRA cannot move the unified model and a full "
                              "copy at the paper's fine-tuning rate barely does (docs/benchmarks.md, \"What a "
                              "per-domain stage can recover\"); this is the per-domain step that does.",
    "tiger-patience-8": "`tiger` with the per-domain protocol of `gmc-full-finetune-long` (`training.patience=8`, "
                        "`training.lr_decay_patience=2`): the two differ in gmc's unified model and its shared "
                        "identifier, not in how long a domain's model trains.",
    "gmc-t5-paper-size": "`gmc` (the paper's per-domain LoRA) with the papers' T5 (4+4 layers, d_ff 1024, 6 heads of "
                         "64, ~4.5M parameters) instead of the CPU recipe's 2+2-layer one, at lr 1e-3, and patience 8 "
                         "with the lr halved after every 2 validations without a new best in every stage: one T5 of "
                         "this size for four domains validated well above the small one (docs/benchmarks.md, \"A "
                         "unified model of the papers' size\"). About four times the small T5's CPU time.",
    "tiger-t5-paper-size": "`tiger` with the same T5, lr and patience as `gmc-t5-paper-size`: the pair differs only in "
                           "what GMC adds.",
    "gmc-t5-paper-size-full-finetune": "`gmc-t5-paper-size` with `gmc-full-finetune-long`'s per-domain stages at "
                                       "this T5's lr (a full copy of the unified model per domain, lr 1e-3, batch "
                                       "128, patience 8 with the lr halved after every 2 misses, at most 80 epochs): "
                                       "with the papers' T5 too the paper's LoRA leaves the unified model where it "
                                       "is; this row asks what a per-domain stage that trains adds to it, against "
                                       "`tiger-t5-paper-size`.",
}
SEEDS = (2024, 2025, 2026)  # the table's training seeds
DOMAINS = ["Scientific", "Arts", "Office", "Microlens"]
METRICS = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]

# GMC paper, Table 3 (Scientific, all users): R@5, N@5, R@10, N@10.
PAPER = {
    "GMC (paper)": {"recall@5": 0.0780, "ndcg@5": 0.0527, "recall@10": 0.1091, "ndcg@10": 0.0652},
    "TIGER (paper)": {"recall@5": 0.0617, "ndcg@5": 0.0421, "recall@10": 0.0871, "ndcg@10": 0.0534},
    "SASRec (paper)": {"recall@5": 0.0753, "ndcg@5": 0.0488, "recall@10": 0.1017, "ndcg@10": 0.0573},
}

# eval_every 1: the recipes' CPU default validates at epochs 5 and 10 only; to early stopping, every epoch
# (as every recorded run did before that default changed)
# dropout 0.1: as recorded (the CPU recipes' dropout became 0.05 on 2026-12-04, tuned for their 10-epoch default)
TO_EARLY_STOPPING = {"training.epochs": 40, "training.patience": 4, "training.lr_schedule": "plateau",
                     "training.eval_every": 1, "encoder.params.dropout": 0.1}
T5_SMALL = {"encoder.params.d_model": 64, "encoder.params.d_ff": 256, "encoder.params.num_layers": 2,
            "encoder.params.num_decoder_layers": 2, "encoder.params.num_heads": 4, "encoder.params.d_kv": 16}
_PROFILES: dict[str, dict[str, dict]] = {
    "cpu": {
        "sasrec": {},
        # gmc's per-domain LoRA stages to early stopping too: a cap of 10 with the same patience 4 (a cap below
        # the patience, as 3 was on 2026-12-03, can only end a stage at its cap)
        "gmc": {**TO_EARLY_STOPPING, "transfer.params.lora_epochs": 10},
        "tiger": dict(TO_EARLY_STOPPING),
    },
    "paper": {"sasrec": {}, "gmc": {}, "tiger": {}},
    "smoke": {
        "sasrec": {"training.epochs": 1, "evaluation.valid_max_users": 50},
        "gmc": {**T5_SMALL, "training.epochs": 1, "transfer.params.lora_epochs": 1, "identifier.params.steps": 100,
                "identifier.params.kmeans_warmup_steps": 20, "training.max_train_examples": 2000,
                "evaluation.valid_max_users": 50},
        "tiger": {**T5_SMALL, "training.epochs": 1, "identifier.params.steps": 100,
                  "identifier.params.kmeans_warmup_steps": 20, "training.max_train_examples": 2000,
                  "evaluation.valid_max_users": 50},
    },
}


def ablation_overrides(base: dict, switches: dict, base_wins: bool = False) -> dict:
    """The base recipe's overrides plus the ablation's switches.  A switch that renames a component
    drops the base's params of that component, as the config layers do (``transfer.name=single-domain``
    has no ``lora_epochs``).  With ``base_wins`` the base's overrides beat a switch of the same key."""
    renamed = {key.removesuffix(".name") for key in switches if key.endswith(".name")}
    kept = {k: v for k, v in base.items() if not any(k.startswith(f"{part}.params.") for part in renamed)}
    return {**kept, **switches, **(kept if base_wins else {})}


# every profile runs each ablation with its base recipe's overrides plus the ablation's switches; in the smoke
# profile its sizes (one epoch, the small T5) beat a switch's: a smoke run checks a row's code path in minutes
PROFILES: dict[str, dict[str, dict]] = {
    profile: {**sets, **{name: ablation_overrides(sets[base], switches, base_wins=profile == "smoke")
                         for name, (base, switches) in ABLATIONS.items()}}
    for profile, sets in _PROFILES.items()
}


# ----------------------------------------------------------------------------- rows that share a stage
def plugin_of(recipe: str) -> str:
    return ABLATIONS[recipe][0] if recipe in ABLATIONS else recipe


def per_domain_key(key: str) -> bool:
    """A key only gmc's per-domain stages read (the unified stage trains the same without it): what its
    strategy declares for ``transfer.from_run``, which checks the same before a run starts."""
    from mtrec.builtins.lora import UnifiedThenLoRA

    section, _, name = key.rpartition(".")
    return section == "transfer.params" and name in UnifiedThenLoRA.per_domain_params


def same_unified_stage(recipe_a: str, sets_a: dict, recipe_b: str, sets_b: dict) -> bool:
    """Whether two gmc rows (their recipes and overrides) train the same identifier and unified stage."""
    def rest(sets: dict) -> dict:
        return {k: v for k, v in sets.items() if not per_domain_key(k)}

    return plugin_of(recipe_a) == plugin_of(recipe_b) == "gmc" and rest(sets_a) == rest(sets_b)
