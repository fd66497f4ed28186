#!/usr/bin/env python
"""Each mix of ``examples/mixes`` beside the two recipes it borrows from.

Everything runs with ``--quick`` on the bundled ``amazon-mini`` (Scientific, Arts, Office), one
``mtrec run`` subprocess at a time, seed fixed, full ranking: the table compares how the parts
behave together at the same small budget, not the methods at their papers' scale.

Domain roles follow the mixes: the IDP mixes pre-train on Scientific and fine-tune on Arts and
Office, so ``idp`` runs with the same targets; every other run targets all three domains.  The
semantic-ID mixes load the identifier of the ``gmc`` run (``identifier.from_run``), so they differ
from ``gmc`` only in what they change.

    python benchmarks/mixes.py            # ~20-30 min on a 2-core CPU
    python benchmarks/mixes.py --resume   # reuse runs an earlier invocation finished
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchkit import BENCHMARKS_MD, REPO, log, machine_info, mtrec_run_command, run_cli, thread_env, write_section, WORK_ROOT

CACHE = WORK_ROOT / "mixes"
DOMAINS = ("Scientific", "Arts", "Office")
IDP_TARGETS = ["Arts", "Office"]

# recipe -> extra overrides (so that it plays the same domain roles as the mixes that borrow from it)
RECIPES: dict[str, dict] = {
    "gmc": {}, "idgenrec": {}, "syncrec": {}, "man": {},
    "idp": {"domains.targets": IDP_TARGETS},
}
# mix -> (the two recipes it borrows from, whether it loads gmc's semantic IDs)
MIXES: dict[str, tuple[tuple[str, str], bool]] = {
    "semantic-ids-prompt-recommender": (("gmc", "idgenrec"), True),
    "textual-ids-domain-lora": (("idgenrec", "gmc"), False),
    "ntg-on-gmc-unified": (("gmc", "syncrec"), True),
    "idp-init-syncrec": (("idp", "syncrec"), False),
    "idp-init-man": (("idp", "man"), False),
}


def run(label: str, args: list[str], overrides: dict, work: Path, threads: int) -> dict:
    run_dir = work / "runs" / label
    cmd = mtrec_run_command([*args, "--quick", "--name", f"bench-mix-{label}"], work / "registry.db",
                            run_dir / "metrics.json", {"training.threads": threads, **overrides})
    env = thread_env(threads)
    env["MTREC_HOME"] = str(work / "home")
    res = run_cli(label, cmd, run_dir, env)
    return {"label": label, "run_id": res["run_id"], "test": res["test"], "wall_s": res["wall_s"],
            "load": res["load"], "started": res["started"], "stages": [s["name"] for s in res["stages"]]}


def fmt(row: dict | None, domain: str, metric: str = "ndcg@10") -> str:
    if row is None:
        return "–"
    value = row["test"].get(domain, {}).get(metric)
    return "–" if value is None else f"{value:.4f}"


def table(results: dict[str, dict]) -> str:
    head = "| run | " + " | ".join(DOMAINS) + " | average | avg Recall@10 | wall (s) |"
    lines = [head, "|---|" + "---:|" * (len(DOMAINS) + 3)]
    for mix, ((a, b), _) in MIXES.items():
        for label, shown in ((mix, f"**{mix}**"), (a, f"↳ {a}"), (b, f"↳ {b}")):
            row = results.get(label)
            cells = [fmt(row, d) for d in DOMAINS] + [fmt(row, "average"), fmt(row, "average", "recall@10")]
            wall = f"{row['wall_s']:.0f}" if row else "–"
            lines.append(f"| {shown} | " + " | ".join(cells) + f" | {wall} |")
    return "\n".join(lines)


def targets_mean(row: dict | None) -> float | None:
    """Mean test NDCG@10 over the IDP mixes' targets (Arts, Office), from any run's per-domain rows."""
    values = [row["test"].get(d, {}).get("ndcg@10") for d in IDP_TARGETS] if row else []
    return sum(values) / len(values) if values and None not in values else None


def observations(results: dict[str, dict]) -> str:
    """What the IDP rows say, computed from the results (Arts + Office mean NDCG@10)."""
    parts = []
    for mix, model in (("idp-init-syncrec", "syncrec"), ("idp-init-man", "man")):
        a, b = targets_mean(results.get(mix)), targets_mean(results.get(model))
        if a is not None and b is not None:
            parts.append(f"`{mix}` {a:.4f} vs `{model}` alone {b:.4f}")
    idp = targets_mean(results.get("idp"))
    if not parts or idp is None:
        return ""
    return (f"- On Arts + Office (mean NDCG@10): {'; '.join(parts)}; `idp` (fine-tuned SASRec) {idp:.4f}.")


def section(results: dict[str, dict], machine: dict, threads: int) -> str:
    loads = [r["load"]["mean_1min"] for r in results.values()]
    load = f"{min(loads):.1f}–{max(loads):.1f}" if loads else "–"
    return f"""## Mixes

`python benchmarks/mixes.py`: each config of `examples/mixes/` (bold) beside the two recipes it
borrows from, all with `--quick` on the bundled `amazon-mini`, seed 2024, full ranking over each
domain's catalogue, test NDCG@10 per domain. `idp` and the two IDP mixes target Arts and Office
(pre-trained on Scientific), so their Scientific cell is empty; the semantic-ID mixes load the
`gmc` run's identifier through the registry (`identifier.from_run`).

{table(results)}

- **Machine:** {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}, {threads} torch thread(s)
  per run, runs one at a time (other jobs shared the CPU: mean 1-min load during the runs {load}).
  CPU only (no GPU was lent).
- Each run uses its own `--quick` profile (one to a few epochs, tiny models, capped training
  examples), so budgets are not equal: the wall column is the cost. For example the IDP mixes
  pre-train SASRec for up to 15 epochs where `idp --quick` stops at 3, and `syncrec --quick` trains
  2 epochs on 2,000 examples. The table shows that every mix trains end to end and where it lands
  beside its parents at this scale; it does not rank the methods. The generative models (gmc,
  idgenrec and the first three mixes) are essentially untrained at this budget (NDCG@10 ≈ 0.001,
  see the generative benchmark for longer runs).
{observations(results)}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=CACHE, help=f"runs and results [default: {CACHE}]")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run [default: 1]")
    parser.add_argument("--resume", action="store_true", help="keep the results of runs already finished")
    parser.add_argument("--only", nargs="*", help="run only these labels (recipes or mixes)")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results_path = args.work / "results.json"
    results: dict[str, dict] = json.loads(results_path.read_text()) if args.resume and results_path.is_file() else {}
    labels = list(RECIPES) + list(MIXES)
    for label in labels if not args.only else [x for x in labels if x in args.only]:
        if label in results:
            log(f"{label}: kept from an earlier invocation")
            continue
        if label in RECIPES:
            results[label] = run(label, ["--plugin", label], RECIPES[label], args.work, args.threads)
        else:
            overrides = {}
            if MIXES[label][1]:
                if "gmc" not in results:
                    raise SystemExit(f"{label} loads gmc's identifier: run gmc first")
                overrides["identifier.from_run"] = results["gmc"]["run_id"]
            config = REPO / "examples" / "mixes" / f"{label}.yaml"
            results[label] = run(label, ["--config", str(config)], overrides, args.work, args.threads)
        results_path.write_text(json.dumps(results, indent=2))
    write_section(BENCHMARKS_MD, "mixes", section(results, machine_info(), args.threads))
    log(f"wrote the mixes section of {BENCHMARKS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
