#!/usr/bin/env python
"""One GPU check, for a lent CUDA machine (H100/H200), in under 8 minutes.  Run it through
``bash benchmarks/gpu_check.sh``, which first installs what that machine lacks (see the .sh).

1. the CUDA tests (``tests/test_cuda.py``: bf16 autocast, ``training.compile``, DDP over nccl);
2. the unified-stage epoch time of ``gmc-paper`` (the paper-scale recipe, two epochs);
3. beam-20 users/s of that model over test histories;
4. as much of ``sasrec``, ``gmc-paper`` and ``tiger-paper`` (their own defaults) as fits in the
   time left, each an ``mtrec run`` under ``timeout``.

Data: the bundled ``amazon-mini`` for everything.  The multi-domain benchmark of
``benchmarks/generative.py`` needs ``../shared/datasets``, which the device machine does not have.

Then it writes the section "GPU check" of docs/benchmarks.md (``--out``), and, when ``$OUT`` is set
(the device tool brings back what is written there), ``$OUT/gpu_check.md`` and ``$OUT/gpu_check.json``.

``--dry-run``: the same steps on the CPU at tiny sizes (``--quick`` profiles, capped training
examples, a few users), in under 2 minutes on a shared 2-core CPU; its report goes to a temporary
file unless ``--out`` names one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import BENCHMARKS_MD, REPO, WORK_ROOT, log, machine_info, write_section  # noqa: E402

SECTION = "gpu-check"
DATASET = "amazon-mini"
RECIPES = ["sasrec", "gmc-paper", "tiger-paper"]  # the cheapest first: it is the likeliest to finish
METRICS = ["recall@10", "ndcg@10"]

# --dry-run: tiny sizes on the CPU (the recipes' --quick profiles, fewer examples and users).
DRY = ["--quick", "--set", "training.epochs=1", "--set", "training.max_train_examples=300",
       "--set", "evaluation.valid_max_users=20", "--set", "training.threads=1"]
DRY_RQ = ["--set", "identifier.params.epochs=3"]


def mtrec_cmd(recipe: str, device: str, metrics: Path, extra: list[str], registry: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "mtrec", "run", "--plugin", recipe, "--dataset", DATASET,
           "--set", f"device={device}", "--no-progress", "--metrics-json", str(metrics)]
    cmd += ["--registry", f"sqlite:///{registry}"] if registry else ["--no-registry"]
    return cmd + extra


def run_timed(label: str, cmd: list[str], log_path: Path, env: dict, timeout_s: float) -> dict:
    """Run ``cmd`` under coreutils ``timeout``; return status, wall seconds and the last epoch line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full = ["timeout", "--kill-after=15", f"{max(int(timeout_s), 1)}", *cmd]
    log(f"{label}: {' '.join(cmd)} (timeout {timeout_s:.0f} s, log {log_path})")
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as out:
        rc = subprocess.run(full, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    text = log_path.read_text(encoding="utf-8", errors="replace")
    epochs = re.findall(r"stage \S+: epoch \d+/\d+.*", text)
    status = "finished" if rc == 0 else ("timed out" if rc in (124, 137) else f"failed (exit {rc})")
    if rc not in (0, 124, 137):
        log(f"{label}: {status}; log tail:\n{text[-2000:]}")
    return {"status": status, "rc": rc, "wall_s": wall, "timeout_s": timeout_s,
            "last_epoch": epochs[-1] if epochs else None, "log": str(log_path)}


# ----------------------------------------------------------------------------- steps


def cuda_tests(args, env: dict) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    res = run_timed("cuda tests", cmd, args.work / "cuda_tests.log", env, args.test_timeout)
    text = Path(res["log"]).read_text(encoding="utf-8", errors="replace").strip().splitlines()
    summary = next((l.strip("= ") for l in reversed(text) if re.search(r"\b(passed|failed|skipped|error)", l)), None)
    return {**res, "summary": summary or res["status"]}


def unified_epoch(args, env: dict) -> dict:
    metrics = args.work / "gmc-epoch" / "metrics.json"
    extra = (DRY + DRY_RQ) if args.dry_run else ["--set", "training.epochs=2", "--set", "transfer.params.lora_epochs=1"]
    cmd = mtrec_cmd("gmc-paper", args.device, metrics, extra, args.work / "registry.db")
    res = run_timed("gmc-paper unified epoch", cmd, args.work / "gmc-epoch" / "stdout.log", env, args.epoch_timeout)
    if res["status"] != "finished":
        return res
    data = json.loads(metrics.read_text(encoding="utf-8"))
    unified = next(s for s in data["stages"] if s["name"] == "unified")
    return {**res, "run_id": data["run_id"], "epochs_run": unified["epochs_run"],
            "seconds_per_epoch": unified["seconds_per_epoch"], "stage_seconds": unified["seconds"],
            "losses": [h["loss"] for h in unified["history"] if "loss" in h], "peak_gpu_mb": unified.get("peak_gpu_mb"),
            "test": data["test"].get("average", {}), "overrides": extra}


def throughput(args, run_id: str) -> dict:
    from generative import beam_throughput

    t0 = time.perf_counter()
    out = beam_throughput(args.work, run_id, args.device, 20, args.throughput_users, 1 if args.dry_run else 8)
    return {**out, "wall_s": time.perf_counter() - t0}


def full_runs(args, env: dict, deadline: float) -> list[dict]:
    rows = []
    for i, recipe in enumerate(RECIPES):
        left = deadline - time.monotonic()
        share = left / (len(RECIPES) - i)
        if share < 20:
            rows.append({"recipe": recipe, "status": "not started (no time left)"})
            continue
        metrics = args.work / "runs" / recipe / "metrics.json"
        metrics.unlink(missing_ok=True)
        extra = (DRY + (DRY_RQ if recipe != "sasrec" else [])) if args.dry_run else []
        res = run_timed(recipe, mtrec_cmd(recipe, args.device, metrics, extra, None),
                        args.work / "runs" / recipe / "stdout.log", env, share)
        row = {"recipe": recipe, "overrides": extra, **res}
        if res["status"] == "finished":
            data = json.loads(metrics.read_text(encoding="utf-8"))
            row["test"] = data["test"].get("average", {})
            row["stages"] = [{k: s[k] for k in ("name", "epochs_run", "best_epoch", "seconds", "seconds_per_epoch")}
                             for s in data["stages"]]
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- report


def fmt(x, digits: int = 4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def report(res: dict) -> str:
    m, a = res["machine"], res["args"]
    mode = "**dry run** (CPU, tiny sizes: checks the script, not the GPU)" if a["dry_run"] else "full"
    e, tp = res.get("epoch") or {}, res.get("throughput") or {}
    lines = [
        f"## GPU check ({res['started'][:10]}, {'dry run' if a['dry_run'] else a['device']})",
        "",
        f"- **Mode:** {mode}. **Command:** `bash benchmarks/gpu_check.sh {' '.join(a['argv'])}`.",
        f"- **Machine:** {m.get('gpu') or 'no GPU'}; {m['cpu']}, {m['cores']} cores; torch {m['torch']}, "
        f"Python {m['python']}. **When:** {res['started'][:16].replace('T', ' ')}, {res.get('wall_s', 0):.0f} s in all.",
        f"- **Data:** the bundled `{DATASET}` for every step (Scientific, Arts, Office; full ranking per domain). "
        "The multi-domain benchmark of `benchmarks/generative.py` needs `../shared/datasets`, which the device "
        "machine does not have, so these numbers are not comparable with that section's.",
        "",
        "| check | result |",
        "|---|---|",
        f"| CUDA tests (`tests/test_cuda.py`) | {res.get('tests', {}).get('summary', '–')} |",
    ]
    if "seconds_per_epoch" in e:
        lines.append(f"| unified-stage epoch (gmc-paper) | {e['seconds_per_epoch']:.2f} s/epoch over {e['epochs_run']} "
                     f"epoch(s); loss {' → '.join(f'{v:.3f}' for v in e['losses'])}; peak GPU "
                     f"{fmt(e.get('peak_gpu_mb'), 0)} MiB |")
    else:
        lines.append(f"| unified-stage epoch (gmc-paper) | {e.get('status', 'not run')} |")
    if tp.get("users_per_s"):
        lines.append(f"| beam-20 throughput (gmc-paper model, test histories) | {tp['users_per_s']:.1f} users/s "
                     f"({tp['users']} users in {tp['seconds']:.2f} s, {tp['device']}) |")
    else:
        lines.append(f"| beam-20 throughput (gmc-paper model, test histories) | {tp.get('error', 'not run')} |")
    lines += ["", "Full runs (recipe defaults" + (", dry run: `--quick` and tiny overrides" if a["dry_run"] else "")
              + "), one after another, each under `timeout` with an equal share of the time left:", "",
              "| recipe | status | wall s | stages (epochs run, s/epoch) | " + " | ".join(f"test avg {x}" for x in METRICS)
              + " | last epoch line |",
              "|---|---|---:|---|" + "---:|" * len(METRICS) + "---|"]
    for r in res.get("runs", []):
        stages = ", ".join(f"{s['name']} {s['epochs_run']} ({s['seconds_per_epoch']:.2f})" for s in r.get("stages", []))
        test = r.get("test", {})
        lines.append(f"| {r['recipe']} | {r['status']} | {fmt(r.get('wall_s'), 0)} | {stages or '–'} | "
                     + " | ".join(fmt(test.get(x)) for x in METRICS) + f" | {r.get('last_epoch') or '–'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes; report to a temp file unless --out")
    p.add_argument("--out", type=Path, help=f"markdown file whose `{SECTION}` section to write "
                   f"[{BENCHMARKS_MD.relative_to(REPO)}; dry run: a temp file]")
    p.add_argument("--budget", type=float, help="seconds for the whole check [440; dry run 100]")
    p.add_argument("--work", type=Path, help=f"work folder [{WORK_ROOT / 'gpu_check'}; dry run: a temp folder]")
    args = p.parse_args(argv)
    started = dt.datetime.now()
    t0 = time.monotonic()
    args.device = "cpu" if args.dry_run else "cuda"
    args.budget = args.budget or (100.0 if args.dry_run else 440.0)
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-")) if args.dry_run else None
    args.work = (args.work or (tmp if args.dry_run else WORK_ROOT / "gpu_check")).resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out = args.out or (tmp / "benchmarks.md" if args.dry_run else BENCHMARKS_MD)
    args.test_timeout = 60 if args.dry_run else 150
    args.epoch_timeout = 60 if args.dry_run else 150
    args.throughput_users = 16 if args.dry_run else 1024
    deadline = t0 + args.budget

    env = dict(os.environ, MTREC_HOME=str(args.work / "home"), MTREC_CACHE_DIR=str(args.work / "cache"))
    env.pop("MTREC_REGISTRY_URL", None)
    if args.dry_run:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    os.environ.update(MTREC_HOME=env["MTREC_HOME"], MTREC_CACHE_DIR=env["MTREC_CACHE_DIR"])

    import torch

    if args.dry_run:
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --dry-run, or on the GPU machine")
    machine = machine_info()
    machine["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    res: dict = {"started": started.isoformat(timespec="seconds"), "machine": machine,
                 "args": {"dry_run": args.dry_run, "device": args.device, "budget": args.budget, "argv": argv}}

    def save() -> None:
        res["wall_s"] = time.monotonic() - t0
        text = report(res)
        write_section(args.out, SECTION, text)
        (args.work / "gpu_check.json").write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")
        if os.environ.get("OUT"):
            out = Path(os.environ["OUT"])
            out.mkdir(parents=True, exist_ok=True)
            (out / "gpu_check.md").write_text(text, encoding="utf-8")
            (out / "gpu_check.json").write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")

    res["tests"] = cuda_tests(args, env)
    log(f"cuda tests: {res['tests']['summary']}")
    save()
    res["epoch"] = unified_epoch(args, env)
    log(f"gmc-paper unified epoch: {res['epoch'].get('seconds_per_epoch', res['epoch']['status'])}")
    save()
    if res["epoch"].get("run_id"):
        try:
            res["throughput"] = throughput(args, res["epoch"]["run_id"])
            log(f"beam-20: {res['throughput']['users_per_s']:.1f} users/s")
        except Exception as exc:  # report it, and go on with the runs
            res["throughput"] = {"error": f"failed: {type(exc).__name__}: {exc}"[:300]}
            log(res["throughput"]["error"])
        save()
    res["runs"] = full_runs(args, env, deadline)
    save()
    log(f"wrote the `{SECTION}` section of {args.out}" + (f" and {os.environ['OUT']}/gpu_check.md" if os.environ.get("OUT") else ""))
    print(f"REPORT {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
