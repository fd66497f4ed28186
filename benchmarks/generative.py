#!/usr/bin/env python
"""GMC, TIGER and SASRec on one multi-domain benchmark built from the shared datasets.

Domains (one dataset, four domains, full ranking over each domain's catalogue):

* **Scientific** -- ``datasets/Scientific/lcrec``, all 8,317 users: GMC's exact data, so its
  numbers sit beside the paper's Table 3;
* **Arts**, **Office** -- the ArtsOffice sample bundled as ``amazon-mini/artsoffice`` (1,400 users
  drawn from ``datasets/ArtsOffice``; their item embeddings ship with mtrec, which saves the
  ~15k-text encoding on CPU);
* **Microlens** -- a seeded sample of ``--microlens-users`` users of ``datasets/Microlens`` (a
  non-Amazon platform: micro-video titles).

Each recipe runs as its own ``mtrec run`` subprocess, one after another, with ``--threads`` torch
threads (default 1).  Profiles:

* ``cpu`` (default): what a shared 2-core CPU finishes in about an hour -- the recipes' methods
  unchanged, but a tiny T5 (d_model 32, 1+1 layers), three epochs, validation on a user sample;
  the generative models are therefore far from trained, and their numbers far *below* what the
  recipes reach at paper scale.  Every override is printed in the report.
* ``paper``: the ``gmc-paper`` / ``tiger-paper`` recipes (GMC §5.1.4: ~4.5M-parameter T5, 200
  epochs, batch 1024) and ``sasrec`` with its defaults, for a GPU.

After each run the script measures beam-search throughput of the finished generative model
(users/second, beam 20, the test histories of every domain) and rewrites its section of
docs/benchmarks.md, so an interrupted benchmark still reports what finished (``--resume`` reuses
finished runs).

    python benchmarks/generative.py                       # cpu profile, ~1-2 h on a shared 2-core CPU
    python benchmarks/generative.py --only sasrec gmc     # a subset
    python benchmarks/generative.py --profile paper --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from benchkit import (
    BENCHMARKS_MD, REPO, log, machine_info, mtrec_run_command, run_cli, thread_env, write_section, WORK_ROOT,
)

SHARED = REPO.parent / "shared" / "datasets"
CACHE = WORK_ROOT / "generative"
SECTION = "generative"
DOMAINS = ["Scientific", "Arts", "Office", "Microlens"]
METRICS = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]

# GMC paper, Table 3 (Scientific): R@5, N@5, R@10, N@10.
PAPER = {
    "GMC (paper)": {"recall@5": 0.0780, "ndcg@5": 0.0527, "recall@10": 0.1091, "ndcg@10": 0.0652},
    "TIGER (paper)": {"recall@5": 0.0617, "ndcg@5": 0.0421, "recall@10": 0.0871, "ndcg@10": 0.0534},
    "SASRec (paper)": {"recall@5": 0.0753, "ndcg@5": 0.0488, "recall@10": 0.1017, "ndcg@10": 0.0573},
}

T5_SMALL = {"encoder.params.d_model": 64, "encoder.params.d_ff": 256, "encoder.params.num_layers": 2,
            "encoder.params.num_decoder_layers": 2, "encoder.params.num_heads": 4, "encoder.params.d_kv": 16}
# The cpu profile: a T5 of the --quick size and three epochs.  On a 2-core CPU shared with other
# work, one epoch of the 2+2-layer d_model-64 T5 over the benchmark's ~45k training examples took
# ~25 minutes (a 100-token history per example); this profile keeps the whole benchmark near an hour.
T5_TINY = {"encoder.params.d_model": 32, "encoder.params.d_ff": 64, "encoder.params.num_layers": 1,
           "encoder.params.num_decoder_layers": 1, "encoder.params.num_heads": 2, "encoder.params.d_kv": 16}
CPU_COMMON = {"evaluation.valid_max_users": 100, "training.patience": 2}
PROFILES: dict[str, dict[str, dict]] = {
    "cpu": {
        "sasrec": {**CPU_COMMON, "training.epochs": 30},
        "gmc": {**CPU_COMMON, **T5_TINY, "training.epochs": 3, "training.batch_size": 256,
                "transfer.params.lora_epochs": 1, "identifier.params.epochs": 20},
        "tiger": {**CPU_COMMON, **T5_TINY, "training.epochs": 3, "training.batch_size": 256,
                  "identifier.params.epochs": 20},
    },
    "paper": {"sasrec": {}, "gmc": {}, "tiger": {}},
    # A minutes-long check that the script works end to end (also fills the text-embedding cache).
    "smoke": {
        "sasrec": {"training.epochs": 1, "evaluation.valid_max_users": 50},
        "gmc": {**T5_SMALL, "training.epochs": 1, "transfer.params.lora_epochs": 1, "identifier.params.epochs": 2,
                "training.max_train_examples": 2000, "evaluation.valid_max_users": 50},
        "tiger": {**T5_SMALL, "training.epochs": 1, "identifier.params.epochs": 2,
                  "training.max_train_examples": 2000, "evaluation.valid_max_users": 50},
    },
}


# ----------------------------------------------------------------------------- data
def build_data(work: Path, microlens_users: int, seed: int) -> Path:
    """Write the Microlens sample and the spec; return the spec path (idempotent)."""
    import mtrec.bundled

    scientific = SHARED / "Scientific" / "lcrec"
    microlens_src = SHARED / "Microlens"
    for path in (scientific, microlens_src):
        if not path.is_dir():
            raise SystemExit(f"{path} is missing: run with the shared datasets beside the repository")
    artsoffice = Path(mtrec.bundled.__file__).parent / "amazon-mini" / "artsoffice"
    microlens = work / f"microlens-{microlens_users}-{seed}"
    if not (microlens / "Microlens.item.json").is_file():
        inter = json.loads((microlens_src / "Microlens.inter.json").read_text(encoding="utf-8"))
        items = json.loads((microlens_src / "Microlens.item.json").read_text(encoding="utf-8"))
        users = sorted(inter, key=int)
        chosen = sorted(random.Random(f"{seed}-microlens").sample(users, min(microlens_users, len(users))), key=int)
        used = sorted({i for u in chosen for i in inter[u]})
        new_id = {old: new for new, old in enumerate(used)}
        tmp = microlens.with_name(microlens.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "Microlens.inter.json").write_text(
            json.dumps({str(n): [new_id[i] for i in inter[u]] for n, u in enumerate(chosen)}), encoding="utf-8")
        (tmp / "Microlens.item.json").write_text(
            json.dumps({str(new_id[i]): items[str(i)] for i in used}), encoding="utf-8")
        tmp.rename(microlens)
    spec = work / f"multidomain-{microlens_users}-{seed}.yaml"
    spec.write_text(
        "# Written by benchmarks/generative.py\n"
        f"name: multidomain-bench\nkcore: 0\nsplit: leave-one-out\ntext_fields: [title, brand, categories]\n"
        "sources:\n"
        f"  - {{format: lcrec, path: {scientific}, domain: Scientific}}\n"
        f"  - {{format: c2dsr, path: {artsoffice}, domains: {{Arts: Arts, Office: Office}}}}\n"
        f"  - {{format: lcrec, path: {microlens}, domain: Microlens}}\n",
        encoding="utf-8",
    )
    return spec


# ----------------------------------------------------------------------------- runs
def run_recipe(recipe: str, args, spec: Path, work: Path) -> dict:
    overrides = dict(PROFILES[args.profile][recipe])
    if args.threads:
        overrides["training.threads"] = args.threads
    # the paper profile runs the paper-scale recipes; the others override the CPU-sized ones
    recipe_name = f"{recipe}-paper" if args.profile == "paper" and recipe != "sasrec" else recipe
    run_dir = work / "runs" / recipe
    cmd = mtrec_run_command(["--plugin", recipe_name, "--dataset", str(spec), "--name", f"bench-{recipe}"],
                            work / "registry.db", run_dir / "metrics.json",
                            {"seed": args.seed, "device": args.device, **overrides})
    env = thread_env(args.threads) if args.device == "cpu" else dict(os.environ)
    env["MTREC_HOME"] = str(work / "home")
    res = run_cli(recipe, cmd, run_dir, env)
    return {"recipe": recipe, "overrides": overrides, "test": res["test"], "counts": res["counts"],
            "stages": res["stages"], "run_id": res["run_id"], "wall_s": res["wall_s"], "load": res["load"],
            "started": res["started"], "finished": res["finished"], "identifier": identifier_stats(work, res["run_id"])}


def identifier_stats(work: Path, run_id: str) -> dict:
    path = work / "home" / "runs" / run_id / "identifier" / "semantic_id.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data.get("stats", {})


def beam_throughput(work: Path, run_id: str, device: str, beam: int, max_users: int, threads: int) -> dict:
    """Users/second of the finished run's decoder over test histories (every domain, its own model)."""
    import torch

    from mtrec.inference import load_run
    from mtrec.plugins import get_plugins
    from mtrec.registry import open_registry

    torch.set_num_threads(threads)
    os.environ["MTREC_HOME"] = str(work / "home")
    registry = open_registry(f"sqlite:///{work / 'registry.db'}", runs_root=work / "home" / "runs")
    run, models = load_run(registry, run_id, get_plugins(), device=device)
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


# ----------------------------------------------------------------------------- report
def fmt(x, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def quality_table(rows: list[dict]) -> str:
    head = ["method", "domain", "users"] + [m.replace("recall", "R").replace("ndcg", "N") for m in METRICS]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    for r in rows:
        for domain in DOMAINS + ["average"]:
            if domain not in r["test"]:
                continue
            label = domain if domain != "average" else "**average** (user-weighted)"
            users = r["counts"].get(domain, sum(r["counts"].values()) if domain == "average" else None)
            out.append("| " + " | ".join([r["recipe"], label, str(users)] + [fmt(r["test"][domain][m]) for m in METRICS]) + " |")
    for name, values in PAPER.items():
        out.append("| " + " | ".join([name, "Scientific", "8317"] + [fmt(values[m]) for m in METRICS]) + " |")
    return "\n".join(out)


def stage_table(rows: list[dict]) -> str:
    out = ["| method | stage | epochs (best) | wall s | s/epoch |", "|---|---|---:|---:|---:|"]
    for r in rows:
        ident = r.get("identifier") or {}
        if "embed_seconds" in ident:
            out.append(f"| {r['recipe']} | text embedding (MiniLM) | – | {ident['embed_seconds']:.1f} | – |")
        if "fit_seconds" in ident:
            out.append(f"| {r['recipe']} | RQ-VAE | – | {ident['fit_seconds']:.1f} | – |")
        for s in r["stages"]:
            out.append(f"| {r['recipe']} | {s['name']} | {s['epochs_run']} ({s['best_epoch']}) | {s['seconds']:.1f} "
                       f"| {s['seconds_per_epoch']:.1f} |")
        staged = sum(s["seconds"] for s in r["stages"]) + ident.get("fit_seconds", 0) + ident.get("embed_seconds", 0)
        out.append(f"| {r['recipe']} | test evaluation + loading + saving (rest of the run) | – | "
                   f"{max(r['wall_s'] - staged, 0):.1f} | – |")
        out.append(f"| {r['recipe']} | **whole run** | – | **{r['wall_s']:.0f}** | – |")
    return "\n".join(out)


def notes(rows: list[dict], args) -> str:
    """What the table says, computed from it (no number typed by hand)."""
    by = {r["recipe"]: r for r in rows}
    lines = ["### Reading the numbers", ""]
    for r in rows:
        for s in r["stages"]:
            if s["name"] in ("unified", "single:Scientific") and s["history"]:
                losses = " → ".join(f"{h['loss']:.2f}" for h in s["history"])
                valid = " → ".join(f"{h.get('ndcg@10', 0):.4f}" for h in s["history"])
                lines.append(f"- `{r['recipe']}` stage `{s['name']}`: training loss {losses}; validation NDCG@10 "
                             f"({args_valid_users(r)} users per domain) {valid}.")
    if "gmc" in by:
        order = sorted(by, key=lambda k: by[k]["test"]["average"]["ndcg@10"], reverse=True)
        lines.append("- Average NDCG@10, best first: " + ", ".join(
            f"{k} {by[k]['test']['average']['ndcg@10']:.4f}" for k in order) + ".")
        if args.profile == "cpu":
            lines.append(
                "- Profile `cpu` gives the generative recommenders a few epochs of a 1+1-layer T5 with d_model 32: "
                "their training loss is still falling steeply when training stops, and they have not learned to "
                "rank yet. This measures the pipeline and its cost on a CPU, not GMC's or TIGER's quality; "
                "the paper's comparison (GMC above TIGER and SASRec, NDCG@10 0.0652 on Scientific) needs "
                "`--profile paper` (the `gmc-paper`/`tiger-paper` scale) on a GPU, which was not available "
                "to the session that ran this.")
    return "\n".join(lines)


def args_valid_users(row: dict) -> str:
    return str(row["overrides"].get("evaluation.valid_max_users", "all"))


def section(rows: list[dict], args, machine: dict, pending: list[str]) -> str:
    when = ", ".join(f"{r['recipe']} {r['started'][:16].replace('T', ' ')}–{r['finished'][11:16]}" for r in rows)
    loads = "; ".join(f"{r['recipe']} mean {r['load']['mean_1min']:.1f} (max {r['load']['max_1min']:.1f})" for r in rows)
    overrides = "\n".join(f"  - `{r['recipe']}`: " + (", ".join(f"`{k}={v}`" for k, v in r["overrides"].items()) or "none")
                          for r in rows)
    throughput = [r for r in rows if r.get("throughput")]
    tp = "\n".join(
        f"| {r['recipe']} | {r['throughput']['beam']} | {r['throughput']['device']} ({r['throughput']['threads']} thread(s)) "
        f"| {r['throughput']['users']} | {r['throughput']['seconds']:.1f} | {fmt(r['throughput']['users_per_s'], 1)} |"
        for r in throughput)
    ident_lines = []
    for r in rows:
        s = r.get("identifier") or {}
        if s:
            usage = ", ".join(f"L{l} {s[f'usage/L{l}']:.0%}" for l in range(1, 5) if f"usage/L{l}" in s)
            ident_lines.append(f"- `{r['recipe']}` semantic IDs: codebook usage {usage}; "
                               f"items sharing all 4 codes with another item {s.get('collision_rate', 0):.2%} "
                               "(resolved by the extra level)")
    embed_file = args.work / "embedding.json"
    embed_line = ""
    if embed_file.is_file():
        e = json.loads(embed_file.read_text())
        embed_line = (f"- **Text embedding (MiniLM, cold):** {e['seconds']:.0f} s for the benchmark's item texts, "
                      f"measured by the first run that encoded them ({e['recipe']}, profile {e['profile']}, "
                      f"{e['when'][:16].replace('T', ' ')}, load mean {e['load']['mean_1min']:.1f}); later runs read "
                      "the cache (their embedding rows below show ~0 s).\n")
    pend = f"\n\n**Not finished in this invocation: {', '.join(pending)}** (see the notes below)." if pending else ""
    cpu = f"{machine['cpu']}, {machine['cores']} cores" + (", CUDA" if args.device != "cpu" else ", CPU only")
    return f"""## GMC, TIGER and SASRec on the multi-domain benchmark

- **Machine:** {cpu}, torch {machine['torch']}, Python {machine['python']}; {args.threads} torch thread(s) per run, runs one at a time.
- **When:** {when or '–'}. **Load** (1-minute average while running; the machine was shared with other work): {loads or '–'}.
- **Command:** `python benchmarks/generative.py {' '.join(args.argv)}` (profile `{args.profile}`, seed {args.seed}).
- **Data:** Scientific (`datasets/Scientific/lcrec`, all users: GMC's data), Arts and Office (the 1,400-user ArtsOffice sample bundled as `amazon-mini/artsoffice`), Microlens ({args.microlens_users} users sampled from `datasets/Microlens`, seed {args.seed}); leave-one-out per user and domain; full ranking over each domain's whole catalogue, history items not removed.
{embed_line}- **Overrides of the recipes' defaults** (profile `{args.profile}`):
{overrides or '  - none'}{pend}

### Quality (test split; model selection on validation NDCG@10 only)

{quality_table(rows)}

### Wall time per stage

{stage_table(rows)}

{chr(10).join(ident_lines)}

### Beam-search throughput (test histories, trained models, beam {args.beam})

| method | beam | device | users | seconds | users/s |
|---|---:|---|---:|---:|---:|
{tp or '| – | – | – | – | – | – |'}

{notes(rows, args)}
"""


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=["sasrec", "gmc", "tiger"], default=["sasrec", "gmc", "tiger"])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run [1]")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--microlens-users", type=int, default=2000)
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--throughput-users", type=int, default=1024)
    parser.add_argument("--work", type=Path, default=CACHE, help=f"work folder [{CACHE}]")
    parser.add_argument("--resume", action="store_true", help="reuse runs an earlier invocation finished")
    parser.add_argument("--out", type=Path, default=BENCHMARKS_MD)
    args = parser.parse_args(argv)
    args.argv = argv
    args.work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    spec = build_data(args.work, args.microlens_users, args.seed)
    results_path = args.work / f"results-{args.profile}.json"
    done = json.loads(results_path.read_text()) if (args.resume and results_path.is_file()) else {}
    rows: list[dict] = [done[r] for r in args.only if r in done]
    pending = [r for r in args.only if r not in done]
    write_section(args.out, SECTION, section(rows, args, machine, pending))
    for recipe in list(pending):
        row = run_recipe(recipe, args, spec, args.work)
        if recipe in ("gmc", "tiger"):
            log(f"{recipe}: measuring beam-{args.beam} throughput")
            row["throughput"] = beam_throughput(args.work, row["run_id"], args.device, args.beam,
                                                args.throughput_users, args.threads)
        log(f"{recipe}: average " + ", ".join(f"{m} {row['test']['average'][m]:.4f}" for m in METRICS))
        done[recipe] = row
        results_path.write_text(json.dumps(done, indent=2))
        embed = (row.get("identifier") or {}).get("embed_seconds", 0)
        if embed > 5:  # this run encoded the texts (later runs read the cache)
            (args.work / "embedding.json").write_text(json.dumps({
                "seconds": embed, "when": row["started"],
                "profile": args.profile, "recipe": recipe, "load": row["load"]}))
        rows = [done[r] for r in args.only if r in done]
        pending.remove(recipe)
        write_section(args.out, SECTION, section(rows, args, machine, pending))
    log(f"wrote {args.out} (section {SECTION})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
