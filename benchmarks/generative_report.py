"""The generative benchmark's statistics and its section of docs/benchmarks.md: mean ± std over seeds,
capped stages, paired comparisons with their verdicts, and the tables and notes rendered from the rows of
``benchmarks/results/generative.json``."""

from __future__ import annotations

import json
import math
import statistics

from generative_rows import ABLATION_NOTES, ABLATIONS, DOMAINS, METRICS, PAPER, PROFILES, RECIPES


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
