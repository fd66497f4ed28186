#!/usr/bin/env python
"""GMC, TIGER and SASRec on one multi-domain benchmark built from the shared datasets, with seeds, and
three of GMC's Table 4 ablations beside them.

Domains (one dataset, four domains, full ranking over each domain's catalogue):

* **Scientific** -- a seeded sample of ``--scientific-users`` users of ``datasets/Scientific/lcrec``
  (GMC's data; ``0`` keeps all 8,317);
* **Arts**, **Office** -- the ArtsOffice sample bundled as ``amazon-mini/artsoffice`` (1,400 users
  drawn from ``datasets/ArtsOffice``; their item embeddings ship with mtrec);
* **Microlens** -- a seeded sample of ``--microlens-users`` users of ``datasets/Microlens`` (a
  non-Amazon platform: micro-video titles).

The samples are drawn with ``--data-seed`` (the same data for every training seed).  Each recipe and
seed runs as its own ``mtrec run`` subprocess, ``--jobs`` at a time with ``--threads`` torch threads
each; every run's own CPU seconds (``wait4``) are reported beside its wall time.  Profiles:

* ``cpu`` (default): each recipe's CPU defaults trained to early stopping -- gmc and tiger with an
  epoch cap of 40, patience 4 and the plateau learning-rate schedule (what reached NDCG@10 0.0489 on
  all of Scientific, see the ``scientific`` section), gmc's LoRA stages capped at 10 epochs with the
  same patience and epoch-0 scoring; sasrec with its defaults (which train to early stopping).
* ``paper``: the ``gmc-paper`` / ``tiger-paper`` recipes (GMC §5.1.4) and ``sasrec``, for a GPU.
* ``smoke``: minutes, to check the script end to end.

``gmc-shared-off`` is GMC's Table 4 ablation (1) "w/o sharable codebook": the ``gmc`` recipe of the
profile with ``identifier.params.shared_codebooks=false`` (one RQ-VAE per domain; the unified T5 and
the per-domain LoRA stages kept).  ``gmc-unified-off`` is ablation (2) "w/o unified recommender":
``transfer.name=single-domain``, gmc's shared identifier with one T5 per domain (tiger's training
on gmc's codes).  ``gmc-full-finetune`` is ablation (5) "fine-tune all parameters":
``transfer.params.mode=full``, a full copy of the unified model per domain instead of a LoRA adapter.
Two rows that are not the paper's put gmc's per-domain stages and tiger's on one protocol (patience 8,
the lr halved after every 2 validations without a new best): ``gmc-full-finetune-long`` (ablation (5)
at the unified stage's lr and batch, trained like a model from scratch) and ``tiger-patience-8``.
Three rows run with the papers' T5 (4+4 layers, ~4.6M parameters, lr 1e-3) and patience 8 in every
stage: ``gmc-t5-paper-size`` (the paper's LoRA), ``gmc-t5-paper-size-full-finetune`` (the long full
fine-tuning) and ``tiger-t5-paper-size``.

The section of docs/benchmarks.md is rewritten after every finished run, so an interrupted benchmark
still reports what finished; ``--resume`` reuses finished runs and continues, from its last checkpoint,
a run an earlier invocation started and did not finish (a benchmark killed with its session).  With
``--resume`` a gmc row whose config differs from a finished row's of its seed only in keys its per-domain
stages read (``transfer.params.mode``, ``transfer.params.lora_*``) starts from that run's identifier and
unified stage (the same computation) and trains only its per-domain stages; its note says so.

    python benchmarks/generative.py                          # gmc, tiger, sasrec and the ablations x 3 seeds
    python benchmarks/generative.py --only gmc tiger --resume
    python benchmarks/generative.py --profile paper --device cuda --jobs 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import shutil
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from benchkit import (
    BENCHMARKS_MD, REPO, log, machine_info, mtrec_run_command, run_cli, save_results, start_run_folder, thread_env,
    unfinished_run,
    write_section,
    WORK_ROOT,
)

SHARED = REPO.parent / "shared" / "datasets"
CACHE = WORK_ROOT / "generative"
SECTION = "generative"
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


# ----------------------------------------------------------------------------- data
def sample_lcrec(src: Path, name: str, users: int, seed: int, work: Path) -> Path:
    """A seeded sample of ``users`` users of an LC-Rec folder, items renumbered (idempotent)."""
    out = work / f"{name.lower()}-{users}-{seed}"
    if (out / f"{name}.item.json").is_file():
        return out
    inter = json.loads((src / f"{name}.inter.json").read_text(encoding="utf-8"))
    items = json.loads((src / f"{name}.item.json").read_text(encoding="utf-8"))
    everyone = sorted(inter, key=int)
    chosen = sorted(random.Random(f"{seed}-{name.lower()}").sample(everyone, min(users, len(everyone))), key=int)
    used = sorted({i for u in chosen for i in inter[u]})
    new_id = {old: new for new, old in enumerate(used)}
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / f"{name}.inter.json").write_text(
        json.dumps({str(n): [new_id[i] for i in inter[u]] for n, u in enumerate(chosen)}), encoding="utf-8")
    (tmp / f"{name}.item.json").write_text(json.dumps({str(new_id[i]): items[str(i)] for i in used}), encoding="utf-8")
    tmp.rename(out)
    return out


def spec_text(scientific: Path | str, artsoffice: Path | str, microlens: Path | str,
              writer: str = "benchmarks/generative.py") -> str:
    """The benchmark's dataset spec with its three sources at these paths (relative ones: to the
    spec's folder; the fingerprint covers the spec, so a carried copy keeps them relative)."""
    return (f"# Written by {writer}\n"
            "name: multidomain-bench\nkcore: 0\nsplit: leave-one-out\ntext_fields: [title, brand, categories]\n"
            "sources:\n"
            f"  - {{format: lcrec, path: {scientific}, domain: Scientific}}\n"
            f"  - {{format: c2dsr, path: {artsoffice}, domains: {{Arts: Arts, Office: Office}}}}\n"
            f"  - {{format: lcrec, path: {microlens}, domain: Microlens}}\n")


def artsoffice_path() -> Path:
    """The ArtsOffice sample bundled with mtrec (``amazon-mini/artsoffice``)."""
    import mtrec.bundled

    return Path(mtrec.bundled.__file__).parent / "amazon-mini" / "artsoffice"


def sample_sources(work: Path, scientific_users: int, microlens_users: int, seed: int) -> tuple[Path, Path]:
    """The Scientific and Microlens samples in ``work`` (idempotent)."""
    scientific_src = SHARED / "Scientific" / "lcrec"
    microlens_src = SHARED / "Microlens"
    for path in (scientific_src, microlens_src):
        if not path.is_dir():
            raise SystemExit(f"{path} is missing: run with the shared datasets beside the repository")
    scientific = (sample_lcrec(scientific_src, "Scientific", scientific_users, seed, work)
                  if scientific_users else scientific_src)
    return scientific, sample_lcrec(microlens_src, "Microlens", microlens_users, seed, work)


def build_data(work: Path, scientific_users: int, microlens_users: int, seed: int) -> Path:
    """Write the samples and the spec; return the spec path (idempotent)."""
    scientific, microlens = sample_sources(work, scientific_users, microlens_users, seed)
    spec = work / f"multidomain-{scientific_users}-{microlens_users}-{seed}.yaml"
    spec.write_text(spec_text(scientific, artsoffice_path(), microlens), encoding="utf-8")
    return spec


# ----------------------------------------------------------------------------- runs
def run_plan(recipe: str, seed: int, args, spec: Path) -> tuple[list[str], dict, Path]:
    """The ``mtrec run`` command of one row, its overrides of the recipe and its run folder."""
    overrides = dict(PROFILES[args.profile][recipe])
    if args.threads:
        overrides["training.threads"] = args.threads
    # the paper profile runs the paper-scale recipes; the others override the CPU-sized ones
    plugin = plugin_of(recipe)
    recipe_name = f"{plugin}-paper" if args.profile == "paper" and plugin != "sasrec" else plugin
    run_dir = args.work / "runs" / f"{recipe}-{seed}"
    cmd = mtrec_run_command(["--plugin", recipe_name, "--dataset", str(spec), "--name", f"bench-{recipe}-{seed}"],
                            run_dir / "registry.db", run_dir / "metrics.json",
                            {"seed": seed, "device": args.device, **overrides})
    return cmd, overrides, run_dir


def plugin_of(recipe: str) -> str:
    return ABLATIONS[recipe][0] if recipe in ABLATIONS else recipe


def per_domain_key(key: str) -> bool:
    """A key only gmc's per-domain stages read (the unified stage trains the same without it)."""
    return key == "transfer.params.mode" or key.startswith("transfer.params.lora_")


def same_unified_stage(recipe_a: str, sets_a: dict, recipe_b: str, sets_b: dict) -> bool:
    """Whether two gmc rows (their recipes and overrides) train the same identifier and unified stage."""
    def rest(sets: dict) -> dict:
        return {k: v for k, v in sets.items() if not per_domain_key(k)}

    return plugin_of(recipe_a) == plugin_of(recipe_b) == "gmc" and rest(sets_a) == rest(sets_b)


def unified_source(recipe: str, seed: int, args, done: dict[str, dict]) -> dict | None:
    """A finished row of the same seed whose run trained this row's identifier and unified stage (the same
    recipe and overrides but for the per-domain keys), with its stages' resume files still there."""
    _, mine, _ = run_plan(recipe, seed, args, Path("unused"))
    for other in RECIPES:
        row = done.get(f"{other}-{seed}")
        if other == recipe or row is None or not same_unified_stage(recipe, mine, other, row["overrides"]):
            continue
        if any((args.work / "home" / "runs" / row["run_id"] / "checkpoints" / "resume").glob("*-unified.done.pt")):
            return row
    return None


def seed_from_unified_stage(recipe: str, seed: int, args, spec: Path, env: dict, source: dict) -> str:
    """Start this row's run, then give it the identifier and unified stage of ``source`` (a finished row
    of the same seed, ``unified_source``), so that ``mtrec run --resume`` trains only its per-domain
    stages.  Returns the new run's id; the row's note says where its first stages came from."""
    cmd, _, run_dir = run_plan(recipe, seed, args, spec)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "command.txt").write_text(shlex.join(cmd) + "\n", encoding="utf-8")
    runs = args.work / "home" / "runs"
    run_id = start_run_folder(cmd, env, args.work / "home", run_dir / "stdout.log")
    src, dst = runs / source["run_id"], runs / run_id
    shutil.copytree(src / "identifier", dst / "identifier", dirs_exist_ok=True)
    (dst / "checkpoints" / "resume").mkdir(parents=True, exist_ok=True)
    for path in [*(src / "checkpoints" / "resume").glob("*-identifier.done.pt"),
                 *(src / "checkpoints" / "resume").glob("*-unified.done.pt")]:
        shutil.copy2(path, dst / "checkpoints" / "resume" / path.name)
    if (src / "checkpoints" / "unified.pt").is_file():
        shutil.copy2(src / "checkpoints" / "unified.pt", dst / "checkpoints" / "unified.pt")
    (run_dir / "note.md").write_text(
        f"its RQ-VAE and unified stage are those of `{source['recipe']}` seed {seed} (run {source['run_id']}: the "
        "same config up to the per-domain stages" + ("; see that row's note" if source.get("note") else "")
        + "), copied into this row's run folder and continued with `mtrec run --resume`.\n", encoding="utf-8")
    log(f"{recipe} seed {seed}: starts from the unified stage of {source['recipe']} seed {seed}")
    return run_id


def run_recipe(recipe: str, seed: int, args, spec: Path, done: dict[str, dict] | None = None) -> dict:
    cmd, overrides, run_dir = run_plan(recipe, seed, args, spec)
    env = thread_env(args.threads) if args.device == "cpu" else dict(os.environ)
    env["MTREC_HOME"] = str(args.work / "home")
    # with --resume, a run an earlier invocation started and did not finish (killed with its session)
    # goes on from its last checkpoint, if it was started with the config this row has now; a gmc row
    # whose unified stage another finished row trained starts from that stage
    earlier = (unfinished_run(args.work / "home", f"bench-{recipe}-{seed}", {"seed": seed, "device": args.device,
                                                                            **overrides})
               if args.resume else None)
    if earlier is None and args.resume and (source := unified_source(recipe, seed, args, done or {})) is not None:
        earlier = seed_from_unified_stage(recipe, seed, args, spec, env, source)
    if earlier is not None:
        cmd = mtrec_run_command(["--resume", earlier], run_dir / "registry.db", run_dir / "metrics.json")
    res = run_cli(f"{recipe} seed {seed}", cmd, run_dir, env, continuing=earlier is not None)
    return {"recipe": recipe, "seed": seed, "overrides": overrides, "test": res["test"], "counts": res["counts"],
            "stages": res["stages"], "run_id": res["run_id"], "wall_s": res["wall_s"], "cpu_s": res["cpu_s"],
            "load": res["load"], "started": res["started"], "finished": res["finished"],
            # the timings of a continued run cover its last invocation only
            "continued": earlier is not None,
            # what a person who prepared the run folder by hand has to say about it (run_dir/note.md)
            **({"note": (run_dir / "note.md").read_text(encoding="utf-8").strip()} if (run_dir / "note.md").is_file() else {}),
            "registry": str(run_dir / "registry.db"), "identifier": identifier_stats(args.work, res["run_id"])}


def identifier_stats(work: Path, run_id: str) -> dict:
    path = work / "home" / "runs" / run_id / "identifier" / "semantic_id.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data.get("stats", {})


def beam_throughput(work: Path, run_id: str, device: str, beam: int, max_users: int, threads: int,
                    registry: Path | None = None) -> dict:
    """Users/second of the finished run's decoder over test histories (every domain, its own model)."""
    import torch

    from mtrec.inference import load_run
    from mtrec.plugins import get_plugins
    from mtrec.registry import open_registry

    torch.set_num_threads(threads)
    os.environ["MTREC_HOME"] = str(work / "home")
    registry_db = registry or work / "registry.db"
    store = open_registry(f"sqlite:///{registry_db}", runs_root=work / "home" / "runs")
    run, models = load_run(store, run_id, get_plugins(), device=device)
    decoder = run.decoder
    if hasattr(decoder, "params") and hasattr(decoder.params, "beam_size"):
        decoder.params.beam_size = beam
    examples = run.examples("test")
    n = min(max_users, len(examples["target"]))
    pick = torch.randperm(len(examples["target"]), generator=torch.Generator().manual_seed(0))[:n]
    users, seconds = 0, 0.0
    with torch.inference_mode():
        for d, model in models.items():
            sel = pick[torch.as_tensor(examples["domain"])[pick] == d]
            if sel.numel() == 0:
                continue
            batch = {k: torch.as_tensor(v)[sel].to(run.device) for k, v in examples.items()}
            candidates = torch.as_tensor(run.dataset.domain_items[d], device=run.device)
            for start in range(0, sel.numel(), 256):
                part = {k: v[start:start + 256] for k, v in batch.items()}
                if run.device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                decoder.rank(model, part, candidates, 10)
                if run.device.type == "cuda":
                    torch.cuda.synchronize()
                seconds += time.perf_counter() - t0
                users += part["target"].shape[0]
    return {"users": users, "seconds": seconds, "users_per_s": users / seconds if seconds else None,
            "beam": beam, "device": str(run.device), "threads": threads}


# ----------------------------------------------------------------------------- statistics
def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def capped(stage: dict, cap: int | None) -> bool:
    """A stage whose best epoch is its last, at its epoch cap: the budget stopped it, not validation."""
    if "capped" in stage:  # the trainer's own record
        return bool(stage["capped"])
    return cap is not None and stage["epochs_run"] >= cap and stage["best_epoch"] >= stage["epochs_run"]


def stage_cap(row: dict, stage: dict) -> int | None:
    if stage.get("epoch_cap"):
        return int(stage["epoch_cap"])
    sets = row["overrides"]
    if stage["name"].startswith(("lora:", "finetune:")) and "transfer.params.lora_epochs" in sets:
        return int(sets["transfer.params.lora_epochs"])
    return int(sets["training.epochs"]) if "training.epochs" in sets else None


def run_capped(row: dict) -> bool:
    return any(capped(s, stage_cap(row, s)) for s in row["stages"])


def compare(rows_a: list[dict], rows_b: list[dict], domain: str = "average") -> dict:
    """Mean difference a - b of NDCG@10 over the seeds both have, and its standard error."""
    by_b = {r["seed"]: r for r in rows_b}
    diffs = [r["test"][domain]["ndcg@10"] - by_b[r["seed"]]["test"][domain]["ndcg@10"]
             for r in rows_a if r["seed"] in by_b]
    if not diffs:
        return {"n": 0}
    m, s = mean_std(diffs)
    return {"n": len(diffs), "mean": m, "std": s, "se": s / math.sqrt(len(diffs)) if len(diffs) > 1 else None}


# ----------------------------------------------------------------------------- report
def fmt(x, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def by_recipe(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: (RECIPES.index(r["recipe"]), r["seed"])):
        out.setdefault(r["recipe"], []).append(r)
    return out


def summary_table(rows: list[dict]) -> str:
    """NDCG@10 per domain and on average: mean ± std over the seeds that finished."""
    cols = DOMAINS + ["average"]
    out = ["| method | seeds | " + " | ".join(c if c != "average" else "**average** (user-weighted)" for c in cols)
           + " | capped runs |", "|---|---:|" + "---:|" * len(cols) + "---:|"]
    for recipe, group in by_recipe(rows).items():
        cells = []
        for c in cols:
            values = [r["test"][c]["ndcg@10"] for r in group if c in r["test"]]
            m, s = mean_std(values) if values else (None, None)
            cells.append("–" if m is None else (f"{m:.4f} ± {s:.4f}" if len(values) > 1 else f"{m:.4f}"))
        n_capped = sum(run_capped(r) for r in group)
        out.append(f"| {recipe} | {len(group)} | " + " | ".join(cells) + f" | {n_capped} |")
    return "\n".join(out)


def seed_table(rows: list[dict]) -> str:
    head = ["method", "seed"] + [f"{d} N@10" for d in DOMAINS] + ["avg R@5", "avg N@5", "avg R@10", "avg N@10",
                                                                   "stages: epochs (best)", "CPU min", "wall min", "load"]
    out = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (len(head) - 6) + "---|---:|---:|---:|"]
    for recipe, group in by_recipe(rows).items():
        for r in group:
            stages = "; ".join(f"{s['name']} {s['epochs_run']} ({s['best_epoch']}"
                               f"{', **capped**' if capped(s, stage_cap(r, s)) else ''})" for s in r["stages"])
            avg = r["test"]["average"]
            out.append("| " + " | ".join(
                [recipe, str(r["seed"])] + [fmt(r["test"].get(d, {}).get("ndcg@10")) for d in DOMAINS]
                + [fmt(avg[m]) for m in METRICS]
                + [stages, fmt(r["cpu_s"] / 60 if r.get("cpu_s") is not None else None, 1) + mark(r),
                   f"{r['wall_s'] / 60:.1f}" + mark(r), fmt((r.get("load") or {}).get("mean_1min"), 1)])
                + " |")  # "–": not recorded
    if any(r.get("continued") for r in rows):
        out += ["", "† continued after an interruption (`mtrec run --resume`): CPU and wall minutes cover the last "
                "invocation only; the stage minutes under the learning curves cover every invocation."]
    notes = [f"- `{r['recipe']}` seed {r['seed']}: {r['note']}" for group in by_recipe(rows).values() for r in group
             if r.get("note")]
    if notes:
        out += ["", "Notes on single runs:", "", *notes]
    return "\n".join(out)


def mark(row: dict) -> str:
    return "†" if row.get("continued") else ""


def identifier_lines(rows: list[dict]) -> list[str]:
    lines = []
    for recipe, group in by_recipe(rows).items():
        r = group[0]
        s = r.get("identifier") or {}
        if not s:
            continue
        usage = ", ".join(f"L{level} {s[f'usage/L{level}']:.0%}" for level in range(1, 5) if f"usage/L{level}" in s)
        extra = "".join(f"; {label} {s[k]:.3f}" for k, label in (("neighbour_agreement/L1", "neighbour agreement@10"),
                                                                    ("neighbour_agreement_chance/L1", "chance")) if k in s)
        lines.append(f"- `{recipe}` semantic IDs (seed {r['seed']}): codebook usage {usage}; items sharing all 4 codes "
                     f"with another item {s.get('collision_rate', 0):.2%} (resolved by the extra level){extra}; "
                     f"RQ-VAE {s.get('fit_seconds', 0):.0f} s")
    return lines


def verdict(rows: list[dict], seeds: list[int]) -> list[str]:
    """GMC's claim on this benchmark, read off the table (no number typed by hand)."""
    groups = by_recipe(rows)
    lines = []
    for a, b in (("gmc", "tiger"), ("gmc", "sasrec"), ("tiger", "sasrec"), ("gmc", "gmc-shared-off"),
                 ("gmc", "gmc-unified-off"), ("gmc-unified-off", "tiger"), ("gmc", "gmc-full-finetune"),
                 ("gmc-full-finetune-long", "tiger-patience-8"), ("gmc-full-finetune-long", "gmc"),
                 ("tiger-patience-8", "tiger"), ("tiger-patience-8", "sasrec"),
                 ("gmc-t5-paper-size", "tiger-t5-paper-size"), ("gmc-t5-paper-size", "sasrec"),
                 ("tiger-t5-paper-size", "tiger-patience-8"), ("gmc-t5-paper-size-full-finetune", "tiger-t5-paper-size"),
                 ("gmc-t5-paper-size-full-finetune", "gmc-t5-paper-size")):
        if a not in groups or b not in groups:
            continue
        c = compare(groups[a], groups[b])
        if not c["n"]:
            continue
        usable = [r for r in groups[a] + groups[b] if not run_capped(r)]
        complete = c["n"] >= len(seeds) and len(usable) == len(groups[a]) + len(groups[b])
        if c["se"] is None or not complete:
            word = f"not decided ({c['n']} of {len(seeds)} seeds paired" + \
                   (", some runs capped" if len(usable) < len(groups[a]) + len(groups[b]) else "") + ")"
        elif c["mean"] > 2 * c["se"]:
            word = f"**{a} > {b}** (difference above twice its standard error)"
        elif c["mean"] < -2 * c["se"]:
            word = f"**{a} < {b}** (difference below minus twice its standard error)"
        else:
            word = f"**no difference** between {a} and {b} (within twice its standard error)"
        se = f", standard error {c['se']:.4f}" if c["se"] is not None else ""
        lines.append(f"- {a} − {b}, average NDCG@10 paired by seed: {c['mean']:+.4f} (std {c['std']:.4f} over "
                     f"{c['n']} seed(s){se}) → {word}.")
    return lines


def curves(rows: list[dict]) -> list[str]:
    lines = []
    for recipe, group in by_recipe(rows).items():
        r = group[0]
        for s in r["stages"]:
            if s["name"] not in ("unified", "single:Scientific") or not s.get("history"):
                continue
            vals = [f"{h['ndcg@10']:.4f}" for h in s["history"] if h.get("ndcg@10") is not None]
            if len(vals) > 12:
                vals = [*vals[:4], "…", *vals[-3:]]
            lines.append(f"- `{recipe}` seed {r['seed']} stage `{s['name']}` ({s['seconds'] / 60:.1f} min): validation "
                         f"NDCG@10 {' → '.join(vals)} (best at epoch {s['best_epoch']})")
    return lines


def set_aside_lines(args, rows: list[dict]) -> list[str]:
    """Runs an earlier invocation finished under a profile since corrected: reported, never averaged."""
    path = args.work / f"set-aside-{args.profile}.json"
    if not path.is_file():
        return []
    lines = []
    finished = {(r["recipe"], r["seed"]) for r in rows}
    for r in json.loads(path.read_text(encoding="utf-8")).values():
        rerun = ("rerun with the corrected profile: its row is above" if (r["recipe"], r["seed"]) in finished
                 else "not rerun yet")
        stages = "; ".join(f"{s['name']} {s['epochs_run']} ({s['best_epoch']}{', capped' if s.get('capped') else ''})"
                           for s in r["stages"])
        lines.append(f"- Set aside: `{r['recipe']}` seed {r['seed']} ({r['started'][:16].replace('T', ' ')}), average "
                     f"NDCG@10 {r['test']['average']['ndcg@10']:.4f} (stages {stages}): {r['reason']}; {rerun}.")
    return [*lines, ""]


def section(rows: list[dict], args, machine: dict, pending: list[str]) -> str:
    when = (f"{min(r['started'] for r in rows)[:16].replace('T', ' ')} – {max(r['finished'] for r in rows)[:16].replace('T', ' ')}"
            if rows else "–")
    overrides = "\n".join(f"  - `{recipe}`: " + (", ".join(f"`{k}={v if isinstance(v, str) else json.dumps(v)}`"
                                                          for k, v in sets.items()) or "none")
                          for recipe, sets in PROFILES[args.profile].items() if recipe in args.only)
    throughput = [r for r in rows if r.get("throughput")]
    tp = "\n".join(
        f"| {r['recipe']} | {r['seed']} | {r['throughput']['beam']} | {r['throughput']['device']} "
        f"({r['throughput']['threads']} thread(s)) | {r['throughput']['users']} | {r['throughput']['seconds']:.1f} "
        f"| {fmt(r['throughput']['users_per_s'], 1)} |" for r in throughput)
    counts = rows[0]["counts"] if rows else {}
    users = ", ".join(f"{d} {counts[d]:,}" for d in DOMAINS if d in counts)
    pend = (f"\n\n**Not run, or not finished, when this section was written: {', '.join(pending)}.** Rows and verdicts below "
            "cover the runs that finished.") if pending else ""
    cpu = f"{machine['cpu']}, {machine['cores']} cores" + (", CUDA" if args.device != "cpu" else ", CPU only (no GPU was lent)")
    sci = f"{args.scientific_users:,} users sampled from" if args.scientific_users else "all users of"
    return "\n".join([
        "## GMC, TIGER and SASRec on the multi-domain benchmark (seeds)",
        "",
        f"- **Machine:** {cpu}, torch {machine['torch']}; {args.jobs} run(s) at a time, {args.threads} torch thread(s) "
        "each. **CPU min** is a run's own user + system time; **load** the mean 1-minute load average while it ran "
        "(above the running threads, other work shared the machine and wall time grew, CPU time much less).",
        f"- **When:** {when}.",
        f"- **Command** (the invocation that last wrote this section; it shows every run finished in its work "
        f"folder): `python benchmarks/generative.py {' '.join(args.argv)}` (profile `{args.profile}`, seeds "
        f"{', '.join(map(str, args.seeds))}).",
        f"- **Data** (drawn once with data seed {args.data_seed}, the same for every training seed): Scientific "
        f"({sci} `datasets/Scientific/lcrec`), Arts and Office (the 1,400-user ArtsOffice sample bundled as "
        f"`amazon-mini/artsoffice`), Microlens ({args.microlens_users:,} users sampled from `datasets/Microlens`). "
        f"Test users per domain: {users or '–'}. Leave-one-out per user and domain; **full ranking** over each "
        "domain's whole catalogue (trie-constrained beam search, beam 20, for gmc and tiger: items outside the beam "
        "count as misses); history items not removed; epochs selected on validation NDCG@10 over every validation user.",
        f"- **Overrides of the recipes' CPU defaults** (profile `{args.profile}`):",
        overrides or "  - none",
        *(f"- **`{name}`** is {ABLATION_NOTES[name]}" for name in ABLATIONS if name in args.only),
        pend,
        "",
        "### NDCG@10 on test, mean ± std over seeds",
        "",
        summary_table(rows),
        "",
        "A run is **capped** when a stage's best validation epoch is its last at the epoch cap; capped runs do not "
        "decide a claim.",
        "",
        *verdict(rows, args.seeds),
        "",
        "### Every run",
        "",
        seed_table(rows),
        "",
        *set_aside_lines(args, rows),
        *curves(rows),
        "",
        *identifier_lines(rows),
        "",
        f"### Beam-search throughput (test histories, trained models, beam {args.beam}, first seed)",
        "",
        "| method | seed | beam | device | users | seconds | users/s |",
        "|---|---:|---:|---|---:|---:|---:|",
        tp or "| – | – | – | – | – | – | – |",
        "",
        "GMC's Table 3 on all of Scientific, for scale (a different user set from this benchmark's Scientific sample): "
        + "; ".join(f"{k} NDCG@10 {v['ndcg@10']:.4f}" for k, v in PAPER.items()) + ".",
    ])


# ----------------------------------------------------------------------------- main
def unified_followers(todo: list[tuple[str, int]], args) -> dict[tuple[str, int], list[tuple[str, int]]]:
    """Rows of ``todo`` to run after another row of ``todo`` (the first of their seed in the table's order
    with the same unified stage), in its thread, so that they start from its unified stage."""
    followers: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for recipe, seed in todo:
        _, mine, _ = run_plan(recipe, seed, args, Path("unused"))
        for other, other_seed in todo:
            if (other, other_seed) == (recipe, seed):
                break
            if other_seed == seed and same_unified_stage(recipe, mine, other, run_plan(other, seed, args,
                                                                                         Path("unused"))[1]):
                followers.setdefault((other, seed), []).append((recipe, seed))
                break
    return followers


def whole_record(done: dict[str, dict], args) -> tuple[list[dict], argparse.Namespace, list[str]]:
    """What the section and the results record show: every run finished in the work folder, whatever this
    invocation trains (``--only`` and ``--seeds`` choose what to run, not what the record keeps, so that
    running one row does not drop the others from docs/benchmarks.md), and, as pending, every row and seed
    of the whole table not finished yet."""
    seeds = sorted(set(SEEDS) | set(args.seeds))
    shown = argparse.Namespace(**{**vars(args), "only": list(RECIPES), "seeds": seeds})
    rows = [row for row in done.values() if row["recipe"] in RECIPES and row["seed"] in seeds]
    pending = [f"{r} seed {s}" for s in seeds for r in RECIPES if f"{r}-{s}" not in done]
    return rows, shown, pending


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=RECIPES, default=list(RECIPES))
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="training seeds")
    parser.add_argument("--data-seed", type=int, default=2024, help="seed of the Scientific and Microlens samples")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time [2]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run [1]")
    parser.add_argument("--scientific-users", type=int, default=3000, help="Scientific users sampled (0: all 8,317)")
    parser.add_argument("--microlens-users", type=int, default=2000)
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--throughput-users", type=int, default=1024)
    parser.add_argument("--work", type=Path, default=CACHE, help=f"work folder [{CACHE}]")
    parser.add_argument("--resume", action="store_true", help="reuse runs an earlier invocation finished")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the section and benchmarks/results/generative.json from finished runs; train nothing")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args(argv)
    args.argv = argv
    args.work = args.work.resolve()  # the spec names the samples by path, read relative to the spec's folder
    if args.render_only:
        args.resume = True
    args.work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    spec = build_data(args.work, args.scientific_users, args.microlens_users, args.data_seed)
    results_path = args.work / f"results-{args.profile}.json"
    done: dict[str, dict] = json.loads(results_path.read_text()) if (args.resume and results_path.is_file()) else {}
    # seed-major order: with two jobs, gmc and tiger of one seed run side by side, so a cut-short benchmark
    # still holds paired seeds
    todo = [(r, s) for s in args.seeds for r in args.only if f"{r}-{s}" not in done]
    lock = threading.Lock()

    def report() -> None:
        rows, shown, pending = whole_record(done, args)
        write_section(args.out, SECTION, section(rows, shown, machine, pending))
        if args.out == BENCHMARKS_MD:  # the committed record benchmarks/claims.py reads
            save_results(SECTION, {"machine": machine, "command": f"python benchmarks/generative.py {' '.join(args.argv)}",
                                   "args": {"profile": args.profile, "seeds": shown.seeds, "only": shown.only,
                                            "data_seed": args.data_seed,
                                            "scientific_users": args.scientific_users,
                                            "microlens_users": args.microlens_users, "jobs": args.jobs,
                                            "threads": args.threads, "overrides": PROFILES[args.profile]},
                                   "pending": pending, "rows": rows})

    def one(recipe: str, seed: int) -> None:
        with lock:
            finished = dict(done)
        row = run_recipe(recipe, seed, args, spec, finished)
        if recipe in ("gmc", "tiger") and seed == args.seeds[0]:  # an ablation has gmc's model shape and decoder
            log(f"{recipe}: measuring beam-{args.beam} throughput")
            row["throughput"] = beam_throughput(args.work, row["run_id"], args.device, args.beam,
                                                args.throughput_users, args.threads, Path(row["registry"]))
        log(f"{recipe} seed {seed}: average " + ", ".join(f"{m} {row['test']['average'][m]:.4f}" for m in METRICS)
            + f"; {row['cpu_s'] / 60:.1f} CPU-min")
        with lock:
            done[f"{recipe}-{seed}"] = row
            results_path.write_text(json.dumps(done, indent=1))
            report()
        for follower in followers.get((recipe, seed), []):
            one(*follower)

    report()
    if args.render_only:
        return 0
    followers = unified_followers(todo, args) if args.resume else {}
    firsts = [job for job in todo if not any(job in jobs for jobs in followers.values())]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in as_completed([pool.submit(one, r, s) for r, s in firsts]):
            future.result()
    log(f"wrote {args.out} (section {SECTION})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
