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
a run an earlier invocation started and did not finish (a benchmark killed with its session).  A gmc
row whose config differs from a finished row's of its seed only in keys its per-domain stages read
(``transfer.params.mode``, ``transfer.params.lora_*``: unified-then-lora's ``per_domain_params``) runs
after it and takes its identifier and unified stage (``transfer.from_run``, the same computation), so
it trains only its per-domain stages; its note says so.

The rows and profiles are defined in ``generative_rows.py``, the statistics and the section in
``generative_report.py``; this script builds the data and runs the rows.

    python benchmarks/generative.py                          # gmc, tiger, sasrec and the ablations x 3 seeds
    python benchmarks/generative.py --only gmc tiger --resume
    python benchmarks/generative.py --profile paper --device cuda --jobs 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from benchkit import (
    BENCHMARKS_MD, REPO, log, machine_info, mtrec_run_command, run_cli, save_results, thread_env,
    unfinished_run,
    write_section,
    WORK_ROOT,
)
from generative_report import section
from generative_rows import METRICS, PROFILES, RECIPES, SEEDS, plugin_of, same_unified_stage

SHARED = REPO.parent / "shared" / "datasets"
CACHE = WORK_ROOT / "generative"
SECTION = "generative"


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


def run_recipe(recipe: str, seed: int, args, spec: Path, done: dict[str, dict] | None = None) -> dict:
    cmd, overrides, run_dir = run_plan(recipe, seed, args, spec)
    env = thread_env(args.threads) if args.device == "cpu" else dict(os.environ)
    env["MTREC_HOME"] = str(args.work / "home")
    # with --resume, a run an earlier invocation started and did not finish (killed with its session)
    # goes on from its last checkpoint, if it was started with the config this row has now
    earlier = (unfinished_run(args.work / "home", f"bench-{recipe}-{seed}", {"seed": seed, "device": args.device,
                                                                            **overrides})
               if args.resume else None)
    if earlier is not None:
        cmd = mtrec_run_command(["--resume", earlier], run_dir / "registry.db", run_dir / "metrics.json")
    elif (source := unified_source(recipe, seed, args, done or {})) is not None:
        # a gmc row whose unified stage another finished row trained takes it (transfer.from_run)
        # and trains only its per-domain stages
        cmd += ["--set", f"transfer.from_run={source['run_id']}"]
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "note.md").write_text(
            f"its RQ-VAE and unified stage are those of `{source['recipe']}` seed {seed} (run {source['run_id']}: the "
            "same config up to the per-domain stages" + ("; see that row's note" if source.get("note") else "")
            + "), taken with `transfer.from_run`.\n", encoding="utf-8")
        log(f"{recipe} seed {seed}: takes the unified stage of {source['recipe']} seed {seed}")
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
    followers = unified_followers(todo, args)
    firsts = [job for job in todo if not any(job in jobs for jobs in followers.values())]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in as_completed([pool.submit(one, r, s) for r, s in firsts]):
            future.result()
    log(f"wrote {args.out} (section {SECTION})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
