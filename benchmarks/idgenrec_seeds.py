#!/usr/bin/env python
"""IDGenRec's Table 5 (alternate vs rec-only vs ID-only) to early stopping, with seeds, on one domain.

Table 5 of the paper is measured on single datasets (Sports, Beauty), so this section runs on one: the
Scientific domain of the bundled ``amazon-mini`` (1,500 users; ``domains.targets`` and ``domains.sources``
both ``[Scientific]``).  Each seed runs:

* ``alternate``: the ``idgenrec`` recipe, the paper's schedule (3 rounds; the generator 1 epoch a round
  from round 2, the recommender 10 epochs a round, §3.4.3) except that the **last** round's recommender
  may train up to ``LAST_ROUND_CAP`` epochs and stops on patience ``PATIENCE``: every compared model is
  trained to early stopping.  Rounds before the last are *intermediate* stages (their length is the
  schedule's; they are never flagged capped);
* ``rec-only``: the same rounds and epochs, the warm-started generator's IDs throughout;
* ``id-only``: the recommender never trains; as many generator epochs as ``alternate`` has (2);
* ``sasrec-ce``: the ``sasrec`` recipe on the same domain (cross-entropy over all its items): the
  platform's strongest baseline, beside the table (Table 5 compares training strategies, not baselines).

Validation NDCG@10 on every validation user selects epochs; test on every user.  The section reports each
run, mean ± std and the paired differences by seed, with ``benchkit.seed_verdict`` (beyond 2 SE, no stage
of either side capped).

    python benchmarks/idgenrec_seeds.py                 # seeds 2024 2025 2026, 2 runs at a time, 1 thread each
    python benchmarks/idgenrec_seeds.py --resume        # keep finished runs, run the rest
    python benchmarks/idgenrec_seeds.py --render-only   # rewrite the section and json from finished runs
    python benchmarks/idgenrec_seeds.py --smoke         # tiny sizes, 2 seeds: temp work dir, doc and json

Writes the ``idgenrec-seeds`` section of docs/benchmarks.md and ``benchmarks/results/idgenrec-seeds.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import (Z, capped_stages, gather_seeded_runs, log, machine_info, mean_std,  # noqa: E402
                      paired_difference, parse_pooled, pm, record_path, run_in_pool, run_seeded, save_results,
                      script_command, seed_verdict, seeded_header_lines, seeded_record, seeded_row_record,
                      seeded_run_table, seeded_summary_record, seeded_verdict_lines, thread_env, write_section)

SECTION = "idgenrec-seeds"
TITLE = "IDGenRec's Table 5 to early stopping, with seeds (amazon-mini Scientific)"
DOMAIN = "Scientific"
COLUMNS = (DOMAIN,)
HEADLINE = "ndcg@10"
METRICS = ("ndcg@10", "recall@10", "mrr")
ROUNDS, ROUND_EPOCHS, GENERATOR_EPOCHS = 3, 10, 1  # §3.4.3: "1×3 epochs for the ID generator and 10×3 epochs"
# The recommender learns slowly at the paper's lr 1e-3 (validation NDCG@10 0.0013 after 2 epochs on this
# domain): the last round gets room to converge, and patience 5 so that one noisy validation does not end it.
LAST_ROUND_CAP, PATIENCE = 40, 5
SASREC_CAP, SASREC_PATIENCE = 200, 10  # the sasrec recipe's own patience, a cap it never reached here
GENTLE = "alternate-glr-1e-5"  # alternate with a 10x smaller generator lr: fewer IDs rewritten each round
GENTLE_LR, GENTLE_LR_TEXT = 1e-5, "1e-5"
METHODS = ("alternate", "rec-only", "id-only", "sasrec-ce", GENTLE)
RECIPE = {"alternate": "idgenrec", "rec-only": "idgenrec", "id-only": "idgenrec", "sasrec-ce": "sasrec",
          GENTLE: "idgenrec"}
LABELS = {
    "alternate": "IDGenRec, alternate training (the paper's method)",
    "rec-only": "IDGenRec, recommender only (the warm-started generator's IDs)",
    "id-only": "IDGenRec, ID generator only (the recommender never trains)",
    "sasrec-ce": "SASRec, cross-entropy over all items (the platform's strongest baseline)",
    GENTLE: f"IDGenRec, alternate training with the generator's lr {GENTLE_LR_TEXT} (the recipe's: 1e-4)",
}
SHORT = {"alternate": "alternate", "rec-only": "rec-only", "id-only": "id-only", "sasrec-ce": "SASRec (CE)",
         GENTLE: f"alternate (generator lr {GENTLE_LR_TEXT})"}
# alternate − each of these, seed by seed
COMPARED = {
    "rec-only": "Table 5: alternate training against the recommender alone",
    "id-only": "Table 5: alternate training against the generator alone",
    "sasrec-ce": "the strongest baseline, SASRec with cross-entropy over all items (context: not Table 5's claim)",
}
# (a, b) -> what a − b asks, beside alternate − each of COMPARED
EXTRA = {
    ("rec-only", "id-only"): "Table 5: the recommender alone above the generator alone",
    (GENTLE, "rec-only"): f"alternate training with a gentler generator (lr {GENTLE_LR_TEXT}) against the recommender "
                          "alone (context: not the recipe's setting, chosen after the runs above)",
}
SMOKE_SEEDS = 2
SMOKE_SETS = {  # a minute or two per run: checks the command lines, decides nothing
    "training.max_train_examples": 400, "transfer.params.recommender_epochs": 1,
    "transfer.params.last_round_epochs": 1, "transfer.params.generator_max_examples": 40,
    "evaluation.valid_max_users": 50, "identifier.params.warm_max_items": 300, "identifier.params.warm_epochs": 1,
    "identifier.params.max_pieces": 600, "identifier.params.max_text_tokens": 12, "identifier.params.groups": 4,
    "identifier.params.max_penalty": 2, "identifier.params.length_ranges": [[1, 4], [4, 6]],
}
SMOKE_SASREC = {"training.epochs": 1, "evaluation.valid_max_users": 50}
SMOKE_VERDICT = "undecided (smoke run: not a measurement)"


# ----------------------------------------------------------------------------- what each method runs
def method_sets() -> dict[str, dict]:
    """The ``--set`` overrides of each method over its recipe."""
    one_domain = {"domains.targets": [DOMAIN], "domains.sources": [DOMAIN]}
    idgenrec = {**one_domain, "transfer.params.rounds": ROUNDS, "transfer.params.recommender_epochs": ROUND_EPOCHS,
                "transfer.params.last_round_epochs": LAST_ROUND_CAP,
                "transfer.params.generator_epochs": GENERATOR_EPOCHS, "training.patience": PATIENCE,
                # a generator epoch over every training example, as the paper's (the CPU recipe samples 500:
                # ~4 s; all ~9,000 of this domain cost about a minute)
                "transfer.params.generator_max_examples": None}
    return {
        "alternate": {**idgenrec, "transfer.params.schedule": "alternate"},
        "rec-only": {**idgenrec, "transfer.params.schedule": "rec-only"},
        # alternate trains the generator in rounds 2..R: ID-only gets as many generator epochs
        "id-only": {**idgenrec, "transfer.params.schedule": "id-only", "transfer.params.rounds": ROUNDS - 1},
        "sasrec-ce": {**one_domain, "training.epochs": SASREC_CAP, "training.patience": SASREC_PATIENCE},
        GENTLE: {**idgenrec, "transfer.params.schedule": "alternate", "transfer.params.generator_lr": GENTLE_LR},
    }


def overrides_for(method: str, seed: int, args) -> dict:
    sets: dict = {"seed": seed, "training.threads": args.threads, **method_sets()[method]}
    if args.smoke:
        sets.update(SMOKE_SASREC if RECIPE[method] == "sasrec" else SMOKE_SETS)
    return sets


def run_one(method: str, seed: int, args) -> dict:
    env = thread_env(args.threads) | {"MTREC_HOME": str(args.work / "home"),
                                      "MTREC_CACHE_DIR": str(args.work / "cache")}
    return run_seeded(method, seed, recipe=RECIPE[method], dataset="amazon-mini",
                      sets=overrides_for(method, seed, args), args=args, env=env, section=SECTION,
                      columns=COLUMNS, headline=HEADLINE)


def run_all(todo: list[tuple[str, int]], args) -> dict:
    return run_in_pool(todo, args.jobs, lambda m, s: run_one(m, s, args)) if todo else {}


def is_smoke(results: dict, args) -> bool:
    return bool(args.smoke) or any("training.max_train_examples" in r["overrides"] for r in results.values())


# ----------------------------------------------------------------------------- statistics
def difference(results: dict, seeds: list[int], a: str, b: str, smoke: bool) -> dict:
    """``a − b`` on the headline metric, paired by seed: the difference, the capped stages of both sides and
    the verdict."""
    diffs = {d: paired_difference([results[(a, s)]["test"][d][HEADLINE] for s in seeds],
                                  [results[(b, s)]["test"][d][HEADLINE] for s in seeds]) for d in COLUMNS}
    capped = capped_stages(results, (a, b))
    verdicts = {d: SMOKE_VERDICT if smoke else seed_verdict(x, capped, SHORT[a], SHORT[b]) for d, x in diffs.items()}
    return {"paired": diffs, "capped": capped, "verdicts": verdicts}


def summarise(results: dict, seeds: list[int], smoke: bool = False) -> dict:
    methods = {m: {d: {k: mean_std([results[(m, s)]["test"][d][k] for s in seeds]) for k in METRICS}
                   for d in COLUMNS} for m in METHODS}
    return {"methods": methods, "capped": capped_stages(results, METHODS),
            "vs": {other: difference(results, seeds, "alternate", other, smoke) for other in COMPARED},
            "extra": {f"{a} - {b}": difference(results, seeds, a, b, smoke) for a, b in EXTRA}}


# ----------------------------------------------------------------------------- the doc
def sets_text(method: str, sets: dict) -> str:
    shown = ", ".join(f"`{k}={v if isinstance(v, str) else json.dumps(v)}`" for k, v in sets.items()
                      if k not in ("seed", "training.threads"))
    return f"  - `{method}` (`--plugin {RECIPE[method]}`): {shown}"


def protocol(seeds: list[int]) -> str:
    """One sentence for the claims table (the record's ``protocol``)."""
    return (f"amazon-mini's Scientific domain alone (1,500 users; Table 5 is single-domain), leave-one-out, full "
            f"ranking by trie-constrained beam search (beam 20); the idgenrec recipe with the paper's schedule "
            f"({ROUNDS} rounds of {GENERATOR_EPOCHS} generator + {ROUND_EPOCHS} recommender epochs), the last "
            f"round's recommender to early stopping (at most {LAST_ROUND_CAP} epochs, patience {PATIENCE}); "
            f"validation on every user; {len(seeds)} seeds, paired")


def table5_lines(summary: dict) -> list[str]:
    """Table 5's layout: the three strategies side by side, with the gentler generator and SASRec beside them."""
    head = (f"| metric (test, mean ± std) | ID-only | Rec-only | Alternate | Alternate, generator lr {GENTLE_LR_TEXT} | "
            "SASRec (CE) |")
    rows = [head, "|---|---:|---:|---:|---:|---:|"]
    for metric in METRICS:
        cells = [pm(*summary["methods"][m][DOMAIN][metric])
                 for m in ("id-only", "rec-only", "alternate", GENTLE, "sasrec-ce")]
        rows.append(f"| {metric.replace('ndcg', 'NDCG').replace('recall', 'Recall').replace('mrr', 'MRR')} | "
                    + " | ".join(cells) + " |")
    return rows


def extra_lines(summary: dict) -> list[str]:
    """a − b for each pair of EXTRA: the paired difference, per seed, and its verdict."""
    out = []
    for (a, b), role in EXTRA.items():
        x = summary["extra"][f"{a} - {b}"]
        step = x["paired"][DOMAIN]
        bound = f"{Z:.0f} SE = {Z * step['se']:.4f}" if step["se"] is not None else "no SE"
        out += ["", f"{a} − {b} ({role}), NDCG@10:",
                f"- {DOMAIN}: mean paired difference {step['mean']:+.4f} (per seed "
                + ", ".join(f"{v:+.4f}" for v in step["diffs"]) + f"; {bound}) → **{x['verdicts'][DOMAIN]}**"]
    return out


def section(results: dict, seeds: list[int], args, machine: dict, summary: dict, smoke: bool) -> str:
    sets = {m: results[(m, seeds[0])]["overrides"] for m in METHODS}
    users = results[("alternate", seeds[0])]["counts"][DOMAIN]
    total_cpu = sum(r["cpu_s"] for r in results.values()) / 60
    return "\n".join([
        f"## {TITLE}" + (" — SMOKE (tiny sizes; decides nothing)" if smoke else ""),
        "",
        *seeded_header_lines(results, args, machine),
        f"- **Command:** `{script_command('idgenrec_seeds.py', args, SECTION)}`; each run is "
        "`mtrec run --plugin idgenrec|sasrec --dataset amazon-mini --set seed=S --set training.threads=1 …` with:",
        *(sets_text(m, s) for m, s in sets.items()),
        f"- **Data and protocol:** the Scientific domain of the bundled `amazon-mini` alone ({users:,} test users): "
        "Table 5 is measured on single datasets. Leave-one-out, full ranking over the domain's items (for IDGenRec: "
        "trie-constrained beam search, beam 20; items outside the beam count as misses), history not filtered; "
        "validation NDCG@10 on **every** user selects epochs, the test scores every user once. The schedule is "
        f"the paper's (§3.4.3: {ROUNDS} rounds; the generator {GENERATOR_EPOCHS} epoch a round from round 2, as the "
        f"plugin README explains; the recommender {ROUND_EPOCHS} epochs a round), except that the last round's "
        f"recommender may train up to {LAST_ROUND_CAP} epochs and stops after {PATIENCE} validations without a new "
        "best, so that both strategies end at early stopping. Rounds before the last are *intermediate* (their "
        "length is the schedule's, and the next round continues them); a run is **capped** when its last round's "
        "best epoch is its cap.",
        f"- **Rule:** std is the sample standard deviation over the seeds; a paired difference is a − b on the same "
        f"seed, SE = sd(differences)/√n. A difference counts only when |mean| > {Z:.0f} SE and no stage of the two "
        f"runs compared was capped. Total: {total_cpu:.1f} CPU-min for {len(results)} runs.",
        "",
        *table5_lines(summary),
        "",
        *seeded_run_table(results, seeds, summary, methods=METHODS, columns=COLUMNS, compared=COMPARED,
                           subject="alternate", headline=HEADLINE),
        *seeded_verdict_lines(summary, compared=COMPARED, columns=COLUMNS, subject="alternate"),
        "",
        *extra_lines(summary),
        "",
        f"**Verdict (NDCG@10, computed):** alternate vs rec-only: {summary['vs']['rec-only']['verdicts'][DOMAIN]}; "
        f"rec-only vs id-only: {summary['extra']['rec-only - id-only']['verdicts'][DOMAIN]}; alternate with the "
        f"gentler generator vs rec-only: {summary['extra'][f'{GENTLE} - rec-only']['verdicts'][DOMAIN]}; alternate "
        "vs SASRec (CE): "
        f"{summary['vs']['sasrec-ce']['verdicts'][DOMAIN]}."
        + (f" Capped stages: {', '.join(summary['capped'])}." if summary["capped"] else " No stage was capped."),
        "",
        f"Machine-readable: `{record_path(args, SECTION)}` (read by `benchmarks/claims.py`).",
    ])


# ----------------------------------------------------------------------------- the record
def row_record(method: str, seed: int, res: dict) -> dict:
    return seeded_row_record(method, seed, res, recipe=RECIPE[method], label=LABELS[method], dataset="amazon-mini",
                             loss="ce", per_stage={"patience": res["overrides"].get("training.patience"),
                                                   "eval_every": 1})


def results_record(results: dict, args, machine: dict, summary: dict, smoke: bool) -> dict:
    record = seeded_summary_record(
        summary, args.seeds, subject="alternate", headline=HEADLINE,
        rule=f"claim only if |mean paired difference| > {Z:g} SE (SE = sd/sqrt(n)) and no stage of the two runs "
             "compared capped (intermediate rounds never are); a smoke run decides nothing")
    for name, step in summary["extra"].items():
        record["paired"][name] = {d: {"metric": HEADLINE, **x} for d, x in step["paired"].items()}
        record["verdicts"][name] = step["verdicts"]
        record["capped_by_comparison"][name] = step["capped"]
    return seeded_record(results, [row_record(m, s, res) for (m, s), res in results.items()], record, args=args,
                         machine=machine, title=TITLE, script="idgenrec_seeds.py", section=SECTION,
                         protocol=protocol(args.seeds), domains=COLUMNS, smoke=smoke, metric=HEADLINE)


# ----------------------------------------------------------------------------- main
def parse(argv: list[str]) -> argparse.Namespace:
    return parse_pooled(argv, description=__doc__, methods=METHODS, section=SECTION, smoke_seeds=SMOKE_SEEDS,
                        smoke_help=f"check the command lines: tiny sizes, {SMOKE_SEEDS} seeds, temp work dir, doc "
                                   "and json; decides nothing")


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
    log(f"wrote {args.out} (section {SECTION}) and {path}; NDCG@10: alternate vs rec-only "
        f"{summary['vs']['rec-only']['verdicts'][DOMAIN]}; rec-only vs id-only "
        f"{summary['extra']['rec-only - id-only']['verdicts'][DOMAIN]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
