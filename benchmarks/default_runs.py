#!/usr/bin/env python
"""Wall time of every method's default and ``--quick`` run on the bundled dataset, as a user runs it.

Each ``mtrec run --plugin NAME [--quick]`` runs as its own subprocess, one at a time, with a fresh
``MTREC_HOME`` (cold caches: the dataset is processed and the shipped text embeddings loaded) and
torch's default thread count, exactly as after ``make demo``.  The table is what the plugins'
acceptance asks ("finishes on a 2-core CPU in at most a few minutes"); the metrics show what such
a budget trains, not what the methods reach (see the other sections for that).

    python benchmarks/default_runs.py                    # all recipes, default and --quick
    python benchmarks/default_runs.py --only gmc idp     # some recipes
    python benchmarks/default_runs.py --resume           # keep runs finished by an earlier call
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from benchkit import BENCHMARKS_MD, log, machine_info, mtrec_run_command, run_cli, write_section, WORK_ROOT

CACHE = WORK_ROOT / "default-runs"
RECIPES = ("sasrec", "gmc", "tiger", "idgenrec", "idp", "syncrec", "man")


def run(recipe: str, quick: bool, work: Path) -> dict:
    label = f"{recipe}{' --quick' if quick else ''}"
    run_dir = work / "runs" / label.replace(" ", "")
    home = run_dir / "home"
    shutil.rmtree(home, ignore_errors=True)  # cold caches, like a first run after installing
    cmd = mtrec_run_command(["--plugin", recipe, *(["--quick"] if quick else [])], run_dir / "registry.db",
                            run_dir / "metrics.json")
    env = dict(os.environ, MTREC_HOME=str(home), CUDA_VISIBLE_DEVICES="")
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(key, None)  # torch's own default, as a user gets it
    res = run_cli(label, cmd, run_dir, env)
    return {"recipe": recipe, "quick": quick, "wall_s": res["wall_s"], "run_s": res["seconds"],
            "ndcg10": res["test"]["average"].get("ndcg@10"), "load": res["load"], "started": res["started"],
            "stages": [(s["name"], round(s["seconds"], 1)) for s in res["stages"]]}


def section(results: dict[str, dict], machine: dict) -> str:
    absent = [r for r in RECIPES if r not in results]
    missing = f" (not run: {', '.join(absent)}; their READMEs give hand-timed default runs)" if absent else ""
    lines = ["| recipe | default: wall (s) | default: avg NDCG@10 | `--quick`: wall (s) | `--quick`: avg NDCG@10 | load |",
             "|---|---:|---:|---:|---:|---:|"]
    for recipe in RECIPES:
        full, quick = results.get(recipe), results.get(f"{recipe} --quick")
        if not full and not quick:
            continue
        cell = lambda r, k, f: f.format(r[k]) if r and r.get(k) is not None else "–"  # noqa: E731
        loads = [r["load"]["mean_1min"] for r in (full, quick) if r]
        lines.append(f"| `{recipe}` | {cell(full, 'wall_s', '{:.0f}')} | {cell(full, 'ndcg10', '{:.4f}')} | "
                     f"{cell(quick, 'wall_s', '{:.0f}')} | {cell(quick, 'ndcg10', '{:.4f}')} | "
                     f"{max(loads):.1f} |")
    return f"""## Default and `--quick` runs on the bundled data

`python benchmarks/default_runs.py`: `mtrec run --plugin NAME` and `mtrec run --plugin NAME --quick`
on `amazon-mini` (Scientific, Arts, Office; 4,300 test users, full ranking), each a subprocess with
cold caches and torch's default threads, one at a time. Wall time includes start-up, data
processing, every stage and the test.

{chr(10).join(lines)}

- **Machine:** {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']:.0f} GiB, torch {machine['torch']}, CPU
  only (no GPU was lent). "load" is the higher of the two runs' mean 1-minute load averages: on
  this 2-core machine any other job more than doubles these times (a default `gmc` run took 567 s
  instead of ~130 s beside one other training).
- A dash means the script did not run that configuration this time{missing}.
- The defaults are CPU-sized demonstrations (each plugin's README, "Two scales"); the `-paper`
  recipes carry the papers' scale and are meant for a GPU. The generative defaults (gmc, tiger,
  idgenrec) are essentially untrained at this budget (NDCG@10 ≈ 0.001).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=CACHE, help=f"runs and results [default: {CACHE}]")
    parser.add_argument("--only", nargs="*", choices=RECIPES, help="these recipes only")
    parser.add_argument("--resume", action="store_true", help="keep the results of runs already finished")
    parser.add_argument("--no-default", action="store_true", help="only the --quick runs")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results_path = args.work / "results.json"
    results: dict[str, dict] = json.loads(results_path.read_text()) if args.resume and results_path.is_file() else {}
    for recipe in args.only or RECIPES:
        for quick in (True,) if args.no_default else (True, False):
            label = f"{recipe}{' --quick' if quick else ''}"
            if label in results:
                log(f"{label}: kept from an earlier invocation")
                continue
            results[label] = run(recipe, quick, args.work)
            results_path.write_text(json.dumps(results, indent=2))
    write_section(BENCHMARKS_MD, "default-runs", section(results, machine_info()))
    log(f"wrote the default-runs section of {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
