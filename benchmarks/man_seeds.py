#!/usr/bin/env python
"""MAN against SASRec on Arts + Office, every model to early stopping, several seeds.

The data are section ``man``'s: the seeded sample of 1,000 users of ``datasets/ArtsOffice`` that
``benchmarks/man.py`` draws (seed 2024, "overlap" variant: each user's Arts and Office interactions are
one user), built by man.py's own functions; every training seed sees the same users.  Each seed runs:

* ``man``: the ``man`` recipe with man.py's batch 128 and lr 2e-3, at most ``MAN_CAP`` epochs validated
  every ``MAN_EVAL_EVERY``, patience ``MAN_PATIENCE`` validations (section ``man`` capped it at 10 epochs);
* ``sasrec-ce-single``: the ``sasrec`` recipe per domain, cross-entropy over the domain's items (the
  platform's strongest baseline), at most ``SASREC_CAP`` epochs, patience ``SASREC_PATIENCE``;
* ``sasrec-ce-joint``: the same SASRec trained on both domains at once (``transfer.name=joint``,
  Figure 3's "Shared");
* ``sasrec-bce-single``: the same per-domain SASRec at the paper's protocol (man.py's ``PAPER_PROTOCOL``:
  D = 20, BCE against 16 negatives).

Validation on every validation user (the man recipe's 200-user sample is switched off), test on every
user at the best validation epoch.  The section reports each run, mean ± std per model and domain and
the paired differences by seed (MAN − each SASRec) with the verdict of ``benchkit.seed_verdict`` (a
difference counts beyond 2 SE, and only when no stage of the two models was capped).

    python benchmarks/man_seeds.py                   # seeds 2024 2025 2026, 2 runs at a time, 1 thread each
    python benchmarks/man_seeds.py --resume          # keep finished runs, run the rest
    python benchmarks/man_seeds.py --render-only     # rewrite the section and json from finished runs
    python benchmarks/man_seeds.py --smoke           # 100 users, 2 epochs, 2 seeds: temp work dir, doc and json

Writes the ``man-seeds`` section of docs/benchmarks.md and ``benchmarks/results/man-seeds.json`` (the
record goes beside ``--out`` when that is another file, so a trial doc never overwrites the real record).
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import (Z, capped_stages, gather_seeded_runs, log, machine_info, mean_std,  # noqa: E402
                      paired_difference, parse_pooled, record_path, run_in_pool, run_seeded, save_results,
                      script_command, seed_verdict, seeded_header_lines, seeded_record, seeded_row_record,
                      seeded_run_table, seeded_summary_record, seeded_verdict_lines, thread_env, write_section)
from man import PAPER_PROTOCOL, PAPER_PROTOCOL_LABEL, subsample, write_spec  # noqa: E402

SECTION = "man-seeds"
TITLE = "MAN vs SASRec at convergence, with seeds (Arts + Office, 1,000 users)"
DOMAINS = ("Arts", "Office")
COLUMNS = (*DOMAINS, "average")  # "average": the user-weighted average the run reports
HEADLINE = "ndcg@10"
METRICS = ("ndcg@10", "recall@10", "mrr")  # summarised in the json; the doc shows the headline
USERS = 1000  # section man's sample
DATA_SEED = 2024  # the seed man.py drew its sample with: the users stay fixed while the training seed varies
SMOKE_USERS, SMOKE_CAP, SMOKE_SEEDS = 100, 2, 2  # a check of the command lines, about a minute
# Section man stopped MAN at a 10-epoch cap 4 epochs after its best (one seed); 60 epochs lies well beyond
# that.  SASRec single (CE) ran into section man's 40-epoch cap on Arts (best epoch 38): 100.  A run that still
# reaches its cap is flagged capped and decides nothing.  Patience: the recipes' own 10 epochs (sasrec, man-paper)
# for every model -- MAN's 5 validations every 2 epochs.  With patience 5 (3 validations for MAN; 2026-12-03,
# kept in benchmarks/.work/man-seeds-patience5) SASRec CE stopped at epoch 10-12 on one seed, after a best at 5-7
# that a 1,000-user validation cannot tell from noise.
MAN_CAP, MAN_EVAL_EVERY, MAN_PATIENCE = 60, 2, 5
MAN_BATCH, MAN_LR = 128, 2e-3  # man.py's --man-batch / --man-lr defaults (the recipe's CPU size has 256, 1e-3)
SASREC_CAP, SASREC_PATIENCE = 100, 10
METHODS = ("man", "sasrec-ce-single", "sasrec-ce-joint", "sasrec-bce-single")
RECIPE = {"man": "man", "sasrec-ce-single": "sasrec", "sasrec-ce-joint": "sasrec", "sasrec-bce-single": "sasrec"}
LOSS = {"man": "bce", "sasrec-ce-single": "ce", "sasrec-ce-joint": "ce", "sasrec-bce-single": "bce"}
LABELS = {
    "man": "MAN (Cross), the man recipe with batch 128, lr 2e-3, to early stopping",
    "sasrec-ce-single": "SASRec per domain (Single), CE over the domain's items",
    "sasrec-ce-joint": "SASRec on both domains (Shared), CE over the domain's items",
    "sasrec-bce-single": f"SASRec per domain, {PAPER_PROTOCOL_LABEL}",
}
SHORT = {"man": "MAN", "sasrec-ce-single": "SASRec single (CE)", "sasrec-ce-joint": "SASRec joint (CE)",
         "sasrec-bce-single": "SASRec single (D=20, BCE)"}
# man − each of these, seed by seed; the role says what the comparison asks
COMPARED = {
    "sasrec-ce-single": "the strongest baseline, SASRec per domain with cross-entropy over all items: "
                        "Figure 3's Single",
    "sasrec-ce-joint": "SASRec on both domains with cross-entropy: Figure 3's Shared",
    "sasrec-bce-single": "SASRec per domain at the paper's protocol, §4.1.3: MAN's size and loss",
}
SMOKE_VERDICT = "undecided (smoke run: not a measurement)"


# ----------------------------------------------------------------------------- what each method runs
@lru_cache(maxsize=None)
def catalogue():
    from mtrec.plugins import Plugins

    return Plugins().load().catalogue


def method_sets() -> dict[str, dict]:
    """The ``--set`` overrides of each method over its recipe."""
    every_user = {"evaluation.valid_max_users": None}  # the man recipe validates on a 200-user sample
    sasrec = {**every_user, "training.epochs": SASREC_CAP, "training.patience": SASREC_PATIENCE}
    return {
        "man": {**every_user, "training.epochs": MAN_CAP, "training.eval_every": MAN_EVAL_EVERY,
                "training.patience": MAN_PATIENCE, "training.batch_size": MAN_BATCH, "training.lr": MAN_LR},
        "sasrec-ce-single": sasrec,
        "sasrec-ce-joint": {**sasrec, "transfer.name": "joint"},
        "sasrec-bce-single": {**sasrec, **dict(s.split("=", 1) for s in PAPER_PROTOCOL)},
    }


def overrides_for(method: str, seed: int, args) -> dict:
    sets: dict = {"seed": seed, "training.threads": args.threads, **method_sets()[method]}
    if args.smoke:
        sets["training.epochs"] = SMOKE_CAP
    return sets


def users(args) -> int:
    return SMOKE_USERS if args.smoke else USERS


def dataset_spec(args) -> Path:
    """The dataset spec of the user sample (man.py's files and spec; rewritten identically on every call)."""
    n = users(args)
    name = f"artsoffice-{n}-overlap"
    return write_spec(args.work / f"{name}.yaml", name, subsample(n, DATA_SEED, args.work / f"ArtsOffice-{n}"),
                      split_users=False)


def run_one(method: str, seed: int, spec: Path, args) -> dict:
    # run folders and the dataset cache of the generated sample under --work, as man.py keeps them
    env = thread_env(args.threads) | {"MTREC_HOME": str(args.work / "home"),
                                      "MTREC_CACHE_DIR": str(args.work / "cache")}
    return run_seeded(method, seed, recipe=RECIPE[method], dataset=str(spec), sets=overrides_for(method, seed, args),
                      args=args, env=env, section=SECTION, columns=COLUMNS, headline=HEADLINE)


def run_all(todo: list[tuple[str, int]], args) -> dict:
    if not todo:
        return {}
    spec = dataset_spec(args)  # once, before the runs read it
    return run_in_pool(todo, args.jobs, lambda m, s: run_one(m, s, spec, args))


def is_smoke(results: dict, args) -> bool:
    """A smoke invocation, or finished runs that trained at the smoke cap (--render-only over a smoke work dir)."""
    return bool(args.smoke) or any(r["overrides"].get("training.epochs") == SMOKE_CAP for r in results.values())


# ----------------------------------------------------------------------------- statistics
def versus(results: dict, seeds: list[int], other: str, smoke: bool) -> dict:
    """man − ``other`` on the headline metric per domain and on the average: paired differences, the capped
    stages of the two methods and the verdicts (none from a smoke run)."""
    diffs = {d: paired_difference([results[("man", s)]["test"][d][HEADLINE] for s in seeds],
                                  [results[(other, s)]["test"][d][HEADLINE] for s in seeds]) for d in COLUMNS}
    capped = capped_stages(results, ("man", other))
    verdicts = {d: SMOKE_VERDICT if smoke else seed_verdict(x, capped, SHORT["man"], SHORT[other])
                for d, x in diffs.items()}
    return {"paired": diffs, "capped": capped, "verdicts": verdicts}


def summarise(results: dict, seeds: list[int], smoke: bool = False) -> dict:
    methods = {m: {d: {k: mean_std([results[(m, s)]["test"][d][k] for s in seeds]) for k in METRICS}
                   for d in COLUMNS} for m in METHODS}
    return {"methods": methods, "capped": capped_stages(results, METHODS),
            "vs": {other: versus(results, seeds, other, smoke) for other in COMPARED}}


# ----------------------------------------------------------------------------- the doc
def value_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)  # as mtrec_run_command passes it


def sets_text(method: str, sets: dict) -> str:
    return f"  - `{method}` (`--plugin {RECIPE[method]}`): " + ", ".join(
        f"`{k}={value_text(v)}`" for k, v in sets.items() if k not in ("seed", "training.threads"))


def cap_of(method: str, smoke: bool) -> int:
    return SMOKE_CAP if smoke else method_sets()[method]["training.epochs"]


def protocol(seeds: list[int], smoke: bool) -> str:
    """One sentence for the claims table (the record's ``protocol``)."""
    return (f"ArtsOffice, section man's seeded sample of {SMOKE_USERS if smoke else USERS:,} users (overlap), "
            "leave-one-out, full ranking over each domain's items; the man recipe (batch 128, lr 2e-3, validated "
            f"every {MAN_EVAL_EVERY} epochs, patience {MAN_PATIENCE} validations, at most {cap_of('man', smoke)} "
            "epochs) against SASRec per domain and on both domains with cross-entropy over all items, and per "
            f"domain at the paper's D = 20 and BCE (patience {SASREC_PATIENCE}, at most "
            f"{cap_of('sasrec-ce-single', smoke)} epochs); every model early-stopped on validation NDCG@10 over "
            f"every user; {len(seeds)} seeds, paired")


def section(results: dict, seeds: list[int], args, machine: dict, summary: dict, smoke: bool) -> str:
    sets = {m: results[(m, seeds[0])]["overrides"] for m in METHODS}
    counts = results[("man", seeds[0])]["counts"]
    test_users = ", ".join(f"{d} {counts[d]:,}" for d in DOMAINS)
    total_cpu = sum(r["cpu_s"] for r in results.values()) / 60
    final = "; ".join(f"vs `{o}`: " + ", ".join(f"{d} {summary['vs'][o]['verdicts'][d]}" for d in COLUMNS)
                      for o in ("sasrec-ce-single", "sasrec-ce-joint"))
    capped = summary["capped"]
    n_users = SMOKE_USERS if smoke else USERS
    return "\n".join([
        f"## {TITLE}" + (f" — SMOKE ({n_users} users, {SMOKE_CAP} epochs; decides nothing)" if smoke else ""),
        "",
        *seeded_header_lines(results, args, machine),
        f"- **Command:** `{script_command('man_seeds.py', args, SECTION)}`; each "
        "run is `mtrec run --plugin man|sasrec --dataset artsoffice-….yaml --set seed=S "
        "--set training.threads=1 …` with:",
        *(sets_text(m, s) for m, s in sets.items()),
        f"- **Data:** `datasets/ArtsOffice` (URLLM's Amazon Arts + Office), a seeded sample (seed {DATA_SEED}) of "
        f"{n_users:,} of its 9,577 users{'' if smoke else ', the one section `man` uses'}, built by "
        "`benchmarks/man.py` (all their interactions, the full item tables), *overlap* variant: each user's Arts "
        "and Office interactions are one user. The same users for every training seed.",
        f"- **Protocol:** leave-one-out per (user, domain), full ranking over the target domain's items, history not "
        f"filtered; test on every user ({test_users}) at the best validation epoch, validation NDCG@10 on **every** "
        "user. `man` trains one model on both domains (the recipe's joint stage, domains weighted equally), "
        f"validated every {MAN_EVAL_EVERY} epochs, patience {MAN_PATIENCE} validations, at most "
        f"{cap_of('man', smoke)} epochs; batch {MAN_BATCH} and lr {MAN_LR:g} as section `man` (the recipe's CPU "
        f"size: 256, 1e-3). SASRec is the `sasrec` recipe (hidden 64, 2 layers, batch 256, lr 1e-3), patience "
        f"{SASREC_PATIENCE}, at most {cap_of('sasrec-ce-single', smoke)} epochs per stage: per domain "
        "(`single-domain`, each stage early-stopped on its own domain) or on both domains (`joint`), with "
        "cross-entropy over all the domain's items (the platform's strongest baseline), and per domain at the "
        f"paper's protocol, *{PAPER_PROTOCOL_LABEL}* (§4.1.3: every model at MAN's size and trained with its loss). "
        "**capped** marks a run with a stage whose best validation epoch was the last one, at the cap.",
        f"- **Rule:** std is the sample standard deviation over the seeds; a paired difference is man − other on "
        f"the same seed, SE = sd(differences)/√n. A difference counts only when |mean| > {Z:.0f} SE and no stage of "
        f"the two models compared was capped. Total: {total_cpu:.1f} CPU-min for {len(results)} runs.",
        "",
        *seeded_run_table(results, seeds, summary, methods=METHODS, columns=COLUMNS, compared=COMPARED,
                           subject="man", headline=HEADLINE),
        *seeded_verdict_lines(summary, compared=COMPARED, columns=COLUMNS, subject="man"),
        "",
        f"**Verdict (NDCG@10, computed) against SASRec with cross-entropy:** {final}."
        + (f" Capped stages: {', '.join(capped)}." if capped else " No stage was capped."),
        "",
        f"Machine-readable: `{record_path(args, SECTION)}` (read by `benchmarks/claims.py`).",
    ])


# ----------------------------------------------------------------------------- the record
def row_record(method: str, seed: int, res: dict) -> dict:
    sets = res["overrides"]
    # patience and validation interval per stage: claims.py's caveat for a stage cut by its cap needs both
    per_stage = {"patience": sets.get("training.patience"), "eval_every": sets.get("training.eval_every", 1)}
    return seeded_row_record(method, seed, res, recipe=RECIPE[method], label=LABELS[method], dataset="ArtsOffice",
                             loss=LOSS[method], per_stage=per_stage)


def results_record(results: dict, args, machine: dict, summary: dict, smoke: bool) -> dict:
    """The same shape as ``syncrec-seeds``'s record: rows per (method, seed), the summary and the verdicts."""
    return seeded_record(
        results, [row_record(m, s, res) for (m, s), res in results.items()],
        seeded_summary_record(
            summary, args.seeds, subject="man", headline=HEADLINE,
            rule=f"claim only if |mean paired difference| > {Z:g} SE (SE = sd/sqrt(n)) and no stage of the two "
                 "models compared capped; a smoke run decides nothing"),
        args=args, machine=machine, title=TITLE, script="man_seeds.py", section=SECTION,
        protocol=protocol(args.seeds, smoke), domains=DOMAINS, smoke=smoke, metric=HEADLINE,
        extra={"users": SMOKE_USERS if smoke else USERS, "data_seed": DATA_SEED})


# ----------------------------------------------------------------------------- main
def parse(argv: list[str]) -> argparse.Namespace:
    return parse_pooled(argv, description=__doc__, methods=METHODS, section=SECTION, smoke_seeds=SMOKE_SEEDS,
                        smoke_help=f"check the command lines: {SMOKE_USERS} users, {SMOKE_CAP} epochs, "
                                   f"{SMOKE_SEEDS} seeds, temp work dir, doc and json; decides nothing")


def main(argv: list[str] | None = None) -> int:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    args.work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    results = gather_seeded_runs(run_all, args, METHODS)
    if results is None:
        return 1
    smoke = is_smoke(results, args)
    summary = summarise(results, args.seeds, smoke)
    write_section(args.out, SECTION, section(results, args.seeds, args, machine, summary, smoke))
    path = save_results(SECTION, results_record(results, args, machine, summary, smoke),
                        root=args.json_dir)
    log(f"wrote {args.out} (section {SECTION}) and {path}; NDCG@10 verdicts: "
        + "; ".join(f"vs {o} {summary['vs'][o]['verdicts']['average']} (average)" for o in COMPARED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
