#!/usr/bin/env python
"""One GPU check, for a lent CUDA machine (H100/H200), in under 8 minutes.  Run it through
``bash benchmarks/gpu_check.sh``, which first installs what that machine lacks (see the .sh).

1. the CUDA tests (``tests/test_cuda.py``: bf16 autocast, ``training.compile``, DDP over nccl);
2. the unified-stage epoch time of ``gmc-paper`` (the paper-scale recipe, two epochs);
3. beam-20 users/s of that model over test histories;
4. as much of ``sasrec``, ``gmc-paper`` and ``tiger-paper`` (their own defaults; ``--run`` names
   others, with overrides) as fits in the time left, all at once (the GPU is far from busy with
   one), each an ``mtrec run`` under ``timeout``.

Data (``--dataset``), for every step: what ``benchmarks/gpu_check_prepare.py`` put, with its item
embeddings, in the git-ignored ``.gpu/``: ``multidomain`` (the default when there), the multi-domain
benchmark of ``benchmarks/generative.py`` (Scientific, Arts, Office and Microlens: the same samples as
its section, so gmc-paper and tiger-paper test GMC's headline claim there at the paper's scale), or
``scientific`` (``datasets/Scientific/lcrec``, all 8,317 users); else the bundled ``amazon-mini``.

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
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import BENCHMARKS_MD, REPO, WORK_ROOT, log, machine_info, write_section  # noqa: E402

SECTION = "gpu-check"
CARRIED = Path(os.environ.get("GPU_CHECK_CARRY") or REPO / ".gpu")  # written by gpu_check_prepare.py
CARRIED_SPECS = {"multidomain": CARRIED / "multidomain" / "dataset.yaml",
                 "scientific": CARRIED / "scientific" / "dataset.yaml"}  # the default: the first one there
DATASET = "amazon-mini"  # when nothing was carried
RECIPES = ["sasrec", "gmc-paper", "tiger-paper"]  # the default --run set
METRICS = ["recall@10", "ndcg@10"]

# --dry-run: tiny sizes on the CPU (the recipes' --quick profiles, fewer examples and users).
DRY = ["--quick", "--set", "training.epochs=1", "--set", "training.max_train_examples=300",
       "--set", "evaluation.valid_max_users=20", "--set", "training.threads=1"]
DRY_RQ = ["--set", "identifier.params.epochs=3"]


def mtrec_cmd(recipe: str, args, metrics: Path, extra: list[str], registry: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "mtrec", "run", "--plugin", recipe, "--dataset", str(args.dataset),
           "--set", f"device={args.device}", "--no-progress", "--metrics-json", str(metrics)]
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


def resolve_dataset(name: str | None) -> tuple[str, str]:
    """``--dataset`` -> what ``mtrec run --dataset`` gets, and the report's words for it."""
    if name is None:
        name = next((k for k, spec in CARRIED_SPECS.items() if spec.is_file()), DATASET)
    spec = CARRIED_SPECS.get(name)
    if spec is None:
        return name, f"`{name}`"
    if not spec.is_file():
        raise ValueError(f"--dataset {name}: {spec} is missing; run `python benchmarks/gpu_check_prepare.py` first")
    if name == "scientific":
        return str(spec), ("Scientific (`datasets/Scientific/lcrec`, 8,317 users, 4,344 items; carried in `.gpu/`, "
                           "item embeddings computed before the call)")
    meta = json.loads((spec.parent / "embeddings.json").read_text(encoding="utf-8"))
    return str(spec), (f"the multi-domain benchmark of `benchmarks/generative.py` (Scientific {meta['scientific_users']:,} "
                       f"users, Arts and Office the bundled 1,400, Microlens {meta['microlens_users']:,}; data seed "
                       f"{meta['data_seed']}; carried in `.gpu/`; item embeddings computed before the call, float16 "
                       f"for the {meta['carried_rows']:,} of {meta['n_items']:,} items mtrec does not ship)")


# ----------------------------------------------------------------------------- steps


def cuda_tests(args, env: dict) -> dict:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    res = run_timed("cuda tests", cmd, args.work / "cuda_tests.log", env, args.test_timeout)
    text = Path(res["log"]).read_text(encoding="utf-8", errors="replace").strip().splitlines()
    summary = next((l.strip("= ") for l in reversed(text) if re.search(r"\b(passed|failed|skipped|error)", l)), None)
    return {**res, "summary": summary or res["status"]}


def unified_epoch(args, env: dict) -> dict:
    metrics = args.work / "gmc-epoch" / "metrics.json"
    # two epochs time the stage; validation on 1,000 users keeps the run short (it selects nothing here)
    extra = (DRY + DRY_RQ) if args.dry_run else ["--set", "training.epochs=2", "--set", "transfer.params.lora_epochs=1",
                                                  "--set", "evaluation.valid_max_users=1000"]
    cmd = mtrec_cmd("gmc-paper", args, metrics, extra, args.work / "registry.db")
    res = run_timed("gmc-paper unified epoch", cmd, args.work / "gmc-epoch" / "stdout.log", env, args.epoch_timeout)
    if res["status"] != "finished":
        return res
    data = json.loads(metrics.read_text(encoding="utf-8"))
    unified = next(s for s in data["stages"] if s["name"] == "unified")
    # Each epoch's wall seconds, validation included, from its log line: the first holds CUDA's
    # start-up, so the mean alone overstates an epoch.
    text = Path(res["log"]).read_text(encoding="utf-8", errors="replace")
    each = [int(x) for x in re.findall(r"stage unified: epoch \d+/\d+ .*?  (\d+) s(?: \(training \d+ s\))?$",
                                       text, re.M)]
    return {**res, "run_id": data["run_id"], "epochs_run": unified["epochs_run"], "epoch_wall_s": each,
            "seconds_per_epoch": unified["seconds_per_epoch"], "stage_seconds": unified["seconds"],
            "losses": [h["loss"] for h in unified["history"] if "loss" in h], "peak_gpu_mb": unified.get("peak_gpu_mb"),
            "test": data["test"].get("average", {}), "overrides": extra}


def throughput(args, run_id: str) -> dict:
    from generative import beam_throughput

    t0 = time.perf_counter()
    out = beam_throughput(args.work, run_id, args.device, 20, args.throughput_users, 1 if args.dry_run else 8)
    return {**out, "wall_s": time.perf_counter() - t0}


def parse_run(text: str) -> tuple[str, list[str]]:
    """``--run 'gmc-paper encoder.params.history=items'`` -> the recipe and its ``--set`` arguments."""
    if not text.split():
        raise ValueError("--run '': name a recipe")
    recipe, *sets = text.split()
    bad = [x for x in sets if "=" not in x]
    if bad:
        raise ValueError(f"--run {text!r}: {bad[0]!r} is not key=value")
    return recipe, [arg for x in sets for arg in ("--set", x)]


def full_runs(args, env: dict, deadline: float) -> list[dict]:
    """Every ``--run`` at once, each until it finishes or the deadline: a model of a few million
    parameters leaves the GPU mostly idle, so one after another would waste most of the time."""
    left = deadline - time.monotonic()
    if left < 20:
        return [{"recipe": r, "status": "not started (no time left)"} for r in args.runs]
    run_env = dict(env)
    if not args.dry_run:  # 16 cores there: a few torch threads each for the host-side work
        run_env.update(OMP_NUM_THREADS=str(args.run_threads), MKL_NUM_THREADS=str(args.run_threads))
    jobs = {}
    for i, label in enumerate(args.runs):
        recipe, sets = parse_run(label)
        folder = args.work / "runs" / (recipe if len(sets) == 0 else f"{i}-{recipe}")
        metrics = folder / "metrics.json"
        metrics.unlink(missing_ok=True)
        extra = (DRY + (DRY_RQ if recipe != "sasrec" else [])) if args.dry_run else \
            ["--set", f"training.threads={args.run_threads}"]
        jobs[label] = (recipe, folder, metrics, extra + sets)
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {label: pool.submit(run_timed, label, mtrec_cmd(recipe, args, metrics, extra, None),
                                      folder / "stdout.log", run_env, left)
                   for label, (recipe, folder, metrics, extra) in jobs.items()}
    rows = []
    for label, (recipe, folder, metrics, extra) in jobs.items():
        res = futures[label].result()
        row = {"recipe": label, "overrides": extra, **res}
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
        f"- **Mode:** {mode}. **Command:** `bash benchmarks/gpu_check.sh {shlex.join(a['argv'])}`.",
        f"- **Machine:** {m.get('gpu') or 'no GPU'}; {m['cpu']}, {m['cores']} cores; torch {m['torch']}, "
        f"Python {m['python']}. **When:** {res['started'][:16].replace('T', ' ')}, {res.get('wall_s', 0):.0f} s in all.",
        f"- **Data:** {res['data']} for every step, full ranking per domain.",
        "",
        "| check | result |",
        "|---|---|",
        f"| CUDA tests (`tests/test_cuda.py`) | {res.get('tests', {}).get('summary', '–')} |",
    ]
    if "seconds_per_epoch" in e:
        each = ", ".join(str(x) for x in e.get("epoch_wall_s") or [])
        lines.append(f"| unified-stage epoch (gmc-paper) | {e['seconds_per_epoch']:.2f} s/epoch over {e['epochs_run']} "
                     f"epoch(s) (each epoch's wall s with its validation: {each or '–'}); loss {' → '.join(f'{v:.3f}' for v in e['losses'])}; peak GPU "
                     f"{fmt(e.get('peak_gpu_mb'), 0)} MiB |")
    else:
        lines.append(f"| unified-stage epoch (gmc-paper) | {e.get('status', 'not run')} |")
    if tp.get("users_per_s"):
        lines.append(f"| beam-20 throughput (gmc-paper model, test histories) | {tp['users_per_s']:.1f} users/s "
                     f"({tp['users']} users in {tp['seconds']:.2f} s, {tp['device']}) |")
    else:
        lines.append(f"| beam-20 throughput (gmc-paper model, test histories) | {tp.get('error', 'not run')} |")
    lines += ["", "Full runs (recipe defaults" + (", dry run: `--quick` and tiny overrides" if a["dry_run"]
              else f", `training.threads={a.get('run_threads')}`")
              + f"), all {len(a.get('runs') or RECIPES)} at once, each under `timeout` with the time left; a run that timed out shows "
              "its last epoch line (best validation so far):", "",
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
    p.add_argument("--dataset", help="multidomain or scientific (carried in .gpu/ by gpu_check_prepare.py), or a "
                   f"bundled name or dataset spec [the first of multidomain, scientific that is carried, else {DATASET}]")
    p.add_argument("--run-threads", type=int, default=4, help="torch threads of each full run on the GPU [4]")
    p.add_argument("--run", dest="runs", action="append", metavar="'RECIPE [KEY=VALUE ...]'",
                   help="a full run: a recipe and its --set overrides, e.g. 'gmc-paper encoder.params.history=items'; "
                   f"repeat for more, all run at once [{', '.join(RECIPES)}]")
    args = p.parse_args(argv)
    args.runs = args.runs or list(RECIPES)
    if len(set(args.runs)) < len(args.runs):
        p.error("--run: the same run twice (each writes its own row and folder)")
    try:
        for label in args.runs:
            parse_run(label)  # a malformed --run stops here, before minutes of GPU time
        args.dataset, data = resolve_dataset(args.dataset)
    except ValueError as exc:
        p.error(str(exc))
    started = dt.datetime.now()
    t0 = time.monotonic()
    args.device = "cpu" if args.dry_run else "cuda"
    args.budget = args.budget or (100.0 if args.dry_run else 440.0)
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-")) if args.dry_run else None
    args.work = (args.work or (tmp if args.dry_run else WORK_ROOT / "gpu_check")).resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out = args.out or (tmp / "benchmarks.md" if args.dry_run else BENCHMARKS_MD)
    args.test_timeout = 60 if args.dry_run else 120
    args.epoch_timeout = 60 if args.dry_run else 120
    args.throughput_users = 16 if args.dry_run else 1024
    deadline = t0 + args.budget

    env = dict(os.environ, MTREC_HOME=str(args.work / "home"), MTREC_CACHE_DIR=str(args.work / "cache"))
    env.pop("MTREC_REGISTRY_URL", None)
    if (CARRIED / "cache").is_dir():  # the item embeddings computed where the text model is
        shutil.copytree(CARRIED / "cache", env["MTREC_CACHE_DIR"], dirs_exist_ok=True)
    if args.dry_run:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    os.environ.update(MTREC_HOME=env["MTREC_HOME"], MTREC_CACHE_DIR=env["MTREC_CACHE_DIR"])
    if args.dataset == str(CARRIED_SPECS["multidomain"]):  # float32 from the carried float16 and shipped rows
        from gpu_check_prepare import unpack_embeddings

        try:
            log(f"item embeddings: {unpack_embeddings(CARRIED_SPECS['multidomain'])}")
        except ValueError as exc:  # a stale .gpu/: prepare it again
            p.error(f"{exc}; run `python benchmarks/gpu_check_prepare.py` again")

    import torch

    if args.dry_run:
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --dry-run, or on the GPU machine")
    machine = machine_info()
    machine["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    res: dict = {"started": started.isoformat(timespec="seconds"), "machine": machine, "data": data,
                 "args": {"dry_run": args.dry_run, "device": args.device, "budget": args.budget, "argv": argv,
                          "dataset": args.dataset, "run_threads": args.run_threads, "runs": args.runs}}

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
            with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:  # every step's log, for the record
                for path in sorted(args.work.rglob("*.log")):
                    tar.add(path, arcname=str(path.relative_to(args.work)))

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
