#!/usr/bin/env python
"""SASRec head to head: mtrec's built-in ``sasrec`` recipe against RecBole 1.2.1's SASRec.

Both sides train on the same data (Amazon "Industrial and Scientific" as preprocessed by LC-Rec,
``benchmarks/specs/scientific-lcrec.yaml``) under the same protocol: leave-one-out split, full
ranking over all items, history of at most 20 items, hidden 64, 2 layers, 2 heads, feed-forward
256, dropout 0.5/0.5, cross-entropy loss over all items, Adam(W) lr 1e-3 without weight decay,
batch 256, at most 200 epochs with early stopping on validation NDCG@10 (patience 10), test
Recall/NDCG@5/@10 of the best validation epoch.

RecBole runs in its own virtual environment (numpy<2, setuptools<81, torch 2.13.0 CPU,
``recbole==1.2.1`` without ``ray``), created on first use under
``~/.cache/mtrec-bench/recbole-venv`` (or ``--recbole-venv``).  The LC-Rec JSON is converted to
RecBole atomic files (``timestamp`` = position in the user's sequence) in a cache folder.

Each training runs alone, one after another, with the same thread count on both sides
(``--threads``, default 1: on a 2-core machine shared with other work, OpenMP with 2 threads
spends most of its time spinning).  The script prints a table and writes it into the
``<!-- recbole:start -->`` ... ``<!-- recbole:end -->`` section of ``--out``.

    python benchmarks/recbole_sasrec.py              # full benchmark (2-3 h on a shared 2-core CPU)
    python benchmarks/recbole_sasrec.py --resume     # finish an interrupted one (reruns missing runs only)
    python benchmarks/recbole_sasrec.py --epochs 2 --out /tmp/smoke.md   # smoke test
    python benchmarks/recbole_sasrec.py --only recbole --seeds 2024
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean

from benchkit import LoadSampler, log, machine_info, thread_env, write_section

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
SPEC = HERE / "specs" / "scientific-lcrec.yaml"
RECBOLE_RUNNER = HERE / "recbole" / "run_sasrec.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mtrec-bench"
DEFAULT_VENV = CACHE / "recbole-venv"
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
START, END = "<!-- recbole:start -->", "<!-- recbole:end -->"  # the section write_section replaces

RECBOLE_VERSION = "1.2.1"
RECBOLE_TORCH = "torch==2.13.0"  # the CPU wheel on this machine's disk; another version downloads gigabytes
# recbole==1.2.1 is installed with --no-deps (it pins ray, which is huge and only used by
# recbole.quick_start / hyper-parameter tuning); these are the rest of its requirements.  pandas is
# held below 2.2: RecBole 1.2.1 fills missing values with chained in-place calls that pandas 3's
# copy-on-write turns into no-ops.
RECBOLE_DEPS = [
    "numpy<2", "setuptools<81", "scipy", "pandas<2.2", "tqdm", "colorlog==4.7.2", "colorama==0.4.4",
    "scikit-learn", "pyyaml", "tensorboard", "thop", "tabulate", "plotly", "texttable", "psutil",
]

# Published SASRec on this data (GMC paper, Table 3, Scientific).
PUBLISHED = {"recall@5": 0.0753, "ndcg@5": 0.0488, "recall@10": 0.1017, "ndcg@10": 0.0573}

# The shared protocol, spelled out for each side.
PROTOCOL = dict(max_len=20, hidden=64, layers=2, heads=2, inner=256, dropout=0.5, attn_dropout=0.5,
                lr=1e-3, batch=256, epochs=200, patience=10)
METRICS = ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]


# ----------------------------------------------------------------------------- helpers
def lcrec_source() -> tuple[Path, str]:
    """The LC-Rec folder and domain named by the benchmark's dataset spec."""
    import yaml

    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    for src in spec.get("sources", []):
        if src.get("format") == "lcrec":
            return (SPEC.parent / src["path"]).resolve(), src["domain"]
    raise SystemExit(f"{SPEC}: no lcrec source")


def recbole_atomic(data_root: Path) -> tuple[Path, str, dict]:
    """Write ``<data_root>/<Domain>/<Domain>.inter`` from the LC-Rec JSON (position as timestamp)."""
    folder, domain = lcrec_source()
    src = folder / f"{domain}.inter.json"
    sequences = json.loads(src.read_text(encoding="utf-8"))
    target = data_root / domain / f"{domain}.inter"
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user, items in sequences.items():
        lines += [f"{user}\t{item}\t{pos}" for pos, item in enumerate(items)]
    text = "\n".join(lines) + "\n"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    # mtrec's training windows: each user's training part (all but the last two items) cut into
    # windows of max_len targets from its end (mtrec.data.views.next_item_windows).
    windows = sum(-(-(len(s) - 3) // PROTOCOL["max_len"]) for s in sequences.values() if len(s) > 3)
    stats = {"users": len(sequences), "mtrec_windows": windows,
             "train_targets": sum(max(len(s) - 3, 0) for s in sequences.values()), "items": len({i for s in sequences.values() for i in s}),
             "interactions": sum(len(s) for s in sequences.values()), "source": str(src)}
    return data_root, domain, stats


# ----------------------------------------------------------------------------- RecBole venv
def recbole_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def recbole_ready(venv: Path) -> bool:
    py = recbole_python(venv)
    if not py.exists():
        return False
    probe = ("import recbole, torch, numpy; from recbole.config import Config; "
             f"assert recbole.__version__ == {RECBOLE_VERSION!r}, recbole.__version__; "
             "assert int(numpy.__version__.split('.')[0]) < 2; import pandas; "
             "assert tuple(map(int, pandas.__version__.split('.')[:2])) < (2, 2)")
    return subprocess.run([str(py), "-c", probe], capture_output=True).returncode == 0


def ensure_recbole(venv: Path) -> None:
    if recbole_ready(venv):
        return
    log(f"installing RecBole {RECBOLE_VERSION} into {venv} (one time)")
    if not recbole_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(recbole_python(venv)), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["numpy<2", "setuptools<81", RECBOLE_TORCH], check=True)
    subprocess.run(pip + ["--no-deps", f"recbole=={RECBOLE_VERSION}"], check=True)
    subprocess.run(pip + RECBOLE_DEPS + [RECBOLE_TORCH], check=True)
    if not recbole_ready(venv):
        raise SystemExit(f"RecBole install in {venv} does not import; see the pip output above")


def recbole_config(data_path: Path, domain: str, seed: int, epochs: int, checkpoint_dir: Path) -> dict:
    p = PROTOCOL
    return {
        "model": "SASRec",
        "dataset": domain,
        "data_path": str(data_path),
        "checkpoint_dir": str(checkpoint_dir),
        "gpu_id": "",
        "show_progress": False,
        "log_wandb": False,
        "seed": seed,
        "reproducibility": True,
        # data
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "MAX_ITEM_LIST_LENGTH": p["max_len"],
        # model
        "hidden_size": p["hidden"],
        "inner_size": p["inner"],
        "n_layers": p["layers"],
        "n_heads": p["heads"],
        "hidden_dropout_prob": p["dropout"],
        "attn_dropout_prob": p["attn_dropout"],
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "loss_type": "CE",
        # training
        "train_neg_sample_args": None,
        "learner": "adam",
        "learning_rate": p["lr"],
        "weight_decay": 0.0,
        "train_batch_size": p["batch"],
        "epochs": epochs,
        "stopping_step": p["patience"],
        "eval_step": 1,
        # evaluation
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "NDCG"],
        "topk": [5, 10],
        "valid_metric": "NDCG@10",
        "eval_batch_size": 4096,
    }


def run_recbole(args, seed: int, work: Path, data_path: Path, domain: str) -> dict:
    run_dir = work / f"recbole-seed{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    cfg = recbole_config(data_path, domain, seed, args.epochs or PROTOCOL["epochs"], run_dir / "saved")
    (run_dir / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    env = thread_env(args.threads)
    env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # RecBole reloads its best checkpoint with torch.load
    cmd = [str(recbole_python(args.recbole_venv)), str(RECBOLE_RUNNER),
           "--config", str(run_dir / "config.json"), "--out", str(run_dir / "result.json")]
    log(f"RecBole seed {seed}: log in {run_dir / 'stdout.log'}")
    with LoadSampler() as load, open(run_dir / "stdout.log", "w", encoding="utf-8") as out:
        started = time.perf_counter()
        rc = subprocess.run(cmd, cwd=run_dir, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - started
    if rc != 0:
        tail = (run_dir / "stdout.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"RecBole seed {seed} failed (exit {rc}):\n{tail}")
    res = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    test = {m: res["test"][m] for m in METRICS}  # RecBole's keys: recall@5, ndcg@10, ...
    return {"side": "RecBole", "seed": seed, "test": test, "train_s_per_epoch": res["seconds_per_epoch"],
            "valid_s_per_epoch": mean(res["valid_seconds"]) if res["valid_seconds"] else None,
            "epochs_run": res["epochs_run"], "best_epoch": res["best_epoch"], "wall_s": wall,
            "load": load.summary(), "torch": res["torch_version"], "threads": res["torch_threads"],
            "train_examples": res["n_train_examples"], "log": str(run_dir / "stdout.log")}


# ----------------------------------------------------------------------------- mtrec
def mtrec_command(seed: int, epochs: int, metrics_json: Path) -> list[str]:
    p = PROTOCOL
    exe = Path(sys.executable).parent / "mtrec"
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "mtrec"]
    sets = {
        "seed": seed, "device": "cpu",
        "data.max_len": p["max_len"],
        "encoder.params.hidden": p["hidden"], "encoder.params.layers": p["layers"],
        "encoder.params.heads": p["heads"], "encoder.params.inner": p["inner"],
        "encoder.params.dropout": p["dropout"], "encoder.params.attn_dropout": p["attn_dropout"],
        "encoder.params.loss": "ce",
        "training.lr": p["lr"], "training.weight_decay": 0.0, "training.batch_size": p["batch"],
        "training.epochs": epochs, "training.patience": p["patience"],
        "training.select_metric": "ndcg@10", "training.eval_every": 1,
        "evaluation.protocol": "full", "evaluation.ks": "[5,10]", "evaluation.filter_history": "false",
    }
    cmd = base + ["run", "--plugin", "sasrec", "--dataset", str(SPEC.relative_to(REPO)), "--no-registry",
                  "--no-progress", "--metrics-json", str(metrics_json)]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def run_mtrec(args, seed: int, work: Path) -> dict:
    run_dir = work / f"mtrec-seed{seed}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    metrics = run_dir / "metrics.json"
    cmd = mtrec_command(seed, args.epochs or PROTOCOL["epochs"], metrics)
    (run_dir / "command.txt").write_text(shlex.join(cmd) + "\n", encoding="utf-8")
    log(f"mtrec seed {seed}: log in {run_dir / 'stdout.log'}")
    with LoadSampler() as load, open(run_dir / "stdout.log", "w", encoding="utf-8") as out:
        started = time.perf_counter()
        rc = subprocess.run(cmd, cwd=REPO, env=thread_env(args.threads), stdout=out,
                            stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - started
    if rc != 0:
        tail = (run_dir / "stdout.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"mtrec seed {seed} failed (exit {rc}):\n{tail}")
    res = json.loads(metrics.read_text(encoding="utf-8"))
    domain = next(k for k in res["test"] if k != "average")
    stage = res["stages"][0]
    return {"side": "mtrec", "seed": seed, "test": {m: res["test"][domain][m] for m in METRICS},
            "train_s_per_epoch": stage["seconds_per_epoch"],
            "valid_s_per_epoch": (stage["seconds"] - stage["seconds_per_epoch"] * stage["epochs_run"])
            / max(stage["epochs_run"], 1),
            "epochs_run": stage["epochs_run"], "best_epoch": stage["best_epoch"], "wall_s": wall,
            "load": load.summary(), "log": str(run_dir / "stdout.log")}


# ----------------------------------------------------------------------------- report
def fmt(x, digits=4) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def table(rows: list[dict]) -> str:
    head = ["run", "Recall@5", "NDCG@5", "Recall@10", "NDCG@10", "train s/epoch", "epochs (best)",
            "total wall s"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for side in ("mtrec", "RecBole"):
        mine = [r for r in rows if r["side"] == side]
        if not mine:
            continue
        for r in mine:
            out.append("| " + " | ".join(
                [f"{side} seed {r['seed']}"] + [fmt(r["test"][m]) for m in METRICS]
                + [fmt(r["train_s_per_epoch"], 2), f"{r['epochs_run']} ({r['best_epoch']})", fmt(r["wall_s"], 0)]
            ) + " |")
        if len(mine) > 1:
            out.append("| " + " | ".join(
                [f"**{side} mean**"] + [f"**{fmt(mean(r['test'][m] for r in mine))}**" for m in METRICS]
                + [fmt(mean(r["train_s_per_epoch"] for r in mine), 2),
                   fmt(mean(r["epochs_run"] for r in mine), 1), fmt(mean(r["wall_s"] for r in mine), 0)]
            ) + " |")
    out.append("| " + " | ".join(["SASRec, published (GMC Table 3)"] + [fmt(PUBLISHED[m]) for m in METRICS]
                                 + ["–", "–", "–"]) + " |")
    return "\n".join(out)


def section(rows, machine, stats, args, command, started, finished, load_all, recbole_torch,
            pending=()) -> str:
    p = PROTOCOL
    loads = "; ".join(
        f"{r['side']} seed {r['seed']}: {r['load']['start'][0]:.1f} → {r['load']['end'][0]:.1f} "
        f"(mean {r['load']['mean_1min']:.1f}, max {r['load']['max_1min']:.1f})" for r in rows)
    starts = [dt.datetime.fromisoformat(r["started"]) for r in rows if r.get("started")] or [started]
    ends = [dt.datetime.fromisoformat(r["finished"]) for r in rows if r.get("finished")] or [finished]
    first, last = min(starts), max(ends)
    span = f"{first:%Y-%m-%d %H:%M} – {last:%H:%M}" if first.date() == last.date() else f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M}"
    invocations = sorted({r.get("invocation", "") for r in rows})
    resumed_note = ""
    if len(invocations) > 1:
        resumed_note = (f" (the runs came from {len(invocations)} invocations, started "
                        f"{', '.join(i[11:16] or '?' for i in invocations)}: an interrupted benchmark was finished "
                        "with `--resume`, which reruns only the missing runs, from scratch, with the same settings)")
    ram = f"{machine['ram_gib']:.0f} GiB RAM" if machine["ram_gib"] else "RAM unknown"
    torch_line = f"torch {machine['torch']} (mtrec)"
    if recbole_torch:
        torch_line += f", torch {recbole_torch} (RecBole venv)"
    cap = (f"\n\n**Smoke run: training capped at {args.epochs} epochs — not a comparison.**"
           if args.epochs else "")
    if pending:
        cap += f"\n\n**In progress: still to run {', '.join(pending)}.**"
    mt = [r for r in rows if r["side"] == "mtrec"]
    rb = [r for r in rows if r["side"] == "RecBole"]
    steps = lambda n: -(-n // p["batch"])  # noqa: E731
    per_epoch_note = (
        f"both predict each of the {stats['train_targets']} training targets once per epoch, but mtrec feeds "
        f"each user's sequence once and takes the loss at every position ({stats['mtrec_windows']} windows, "
        f"{steps(stats['mtrec_windows'])} optimizer steps of {p['batch']} sequences), while RecBole makes one "
        f"example per target ({stats['train_targets']} prefixes, {steps(stats['train_targets'])} steps of "
        f"{p['batch']} prefixes, each a full forward pass)")
    valid_note = ""
    if mt or rb:
        parts = [f"{side} {fmt(mean(r['valid_s_per_epoch'] for r in rs), 2)} s"
                 for side, rs in (("mtrec", mt), ("RecBole", rb)) if rs and all(r["valid_s_per_epoch"] is not None for r in rs)]
        if parts:
            valid_note = f" Full-ranking validation per epoch (not in train s/epoch): {', '.join(parts)}."
    return f"""## SASRec: mtrec vs RecBole {RECBOLE_VERSION} (Scientific, LC-Rec data)

- **Machine:** {machine['cpu']}, {machine['cores']} cores, {ram}, {torch_line}, Python {machine['python']}, CPU only, {args.threads} thread(s) per training (`OMP_NUM_THREADS`), trainings run one at a time.
- **Date:** {span} (local time).
- **Command:** `{command}`{resumed_note}
- **Load:** the machine was shared with other work (test suites, other trainings). 1-minute load average at the first run's start {load_all['start'][0]:.2f}, at the last run's end {load_all['end'][0]:.2f}; per run (start → end, mean/max while running): {loads}. Timings are therefore noisy; compare them only within this table.
- **Data:** `{SPEC.relative_to(REPO)}` ({stats['users']} users, {stats['items']} items, {stats['interactions']} interactions); for RecBole converted to an atomic `.inter` file whose `timestamp` is the position in the user's sequence.{cap}

**Protocol (both sides).** Leave-one-out per user (last item test, second-to-last validation, the rest training; RecBole `eval_args: {{split: {{LS: valid_and_test}}, order: TO, group_by: user, mode: full}}`), full ranking over all items without removing history items, no k-core filtering, history of at most {p['max_len']} items. SASRec with hidden {p['hidden']}, {p['layers']} layers, {p['heads']} heads, feed-forward {p['inner']}, GELU, dropout {p['dropout']} (hidden) / {p['attn_dropout']} (attention), cross-entropy over all items (RecBole `loss_type: CE`, `train_neg_sample_args: ~`), Adam lr {p['lr']:g} without weight decay, batch {p['batch']}, at most {p['epochs']} epochs, early stopping on validation NDCG@10 with patience {p['patience']}; the test metrics are those of the best validation epoch. Two seeds per side (`seed`, RecBole `reproducibility: True`). "train s/epoch" is the mean wall time of the training pass of an epoch (validation excluded: mtrec's `seconds_per_epoch`, RecBole's `epoch N training [time: …]` log lines); "total wall s" is the whole process (loading, every epoch's validation, test). "epochs (best)" is epochs run and the restored best epoch (1-based).

{table(rows)}

Notes. An epoch is not the same unit of work on the two sides: {per_epoch_note}. So per-epoch times and epoch counts are not directly comparable; the total wall time is the end-to-end figure. Early stopping differs by one epoch: mtrec stops after {p['patience']} epochs without a strictly better validation NDCG@10, RecBole after {p['patience'] + 1} (its counter must exceed `stopping_step`, and it counts ties as improvements).{valid_note} The published numbers come from a different implementation and hardware and are given for reference only."""


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[2024, 2025])
    ap.add_argument("--only", choices=["mtrec", "recbole"], help="run one side only")
    ap.add_argument("--recbole-venv", type=Path, default=DEFAULT_VENV,
                    help=f"virtual environment for RecBole (created if missing) [default: {DEFAULT_VENV}]")
    ap.add_argument("--epochs", type=int, default=None,
                    help=f"cap on training epochs (smoke test) [default: the protocol's {PROTOCOL['epochs']}]")
    ap.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads per training [default: 1]")
    ap.add_argument("--work", type=Path, default=CACHE / "work",
                    help=f"folder for converted data, logs and per-run results [default: {CACHE / 'work'}]")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the finished runs (same side, seed, --epochs and --threads) that an interrupted "
                         "invocation left in the work folder's results.json, and run only the missing ones")
    ap.add_argument("--out", default=str(DEFAULT_OUT),
                    help="markdown file whose recbole section gets the results ('-' to skip) "
                         "[default: docs/benchmarks.md]")
    args = ap.parse_args(argv)
    args.recbole_venv = args.recbole_venv.expanduser().resolve()
    given = sys.argv[1:] if argv is None else list(argv)
    shown = [a for a in given if a != "--resume"]  # the runs themselves are the same with or without it
    command = "python benchmarks/recbole_sasrec.py" + (" " + shlex.join(shown) if shown else "")

    started = dt.datetime.now()
    load_start = os.getloadavg()
    work = args.work.expanduser().resolve()
    work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    out_path = Path(args.out) if Path(args.out).is_absolute() else Path.cwd() / args.out
    log(f"machine: {machine['cpu']}, {machine['cores']} cores; load {load_start[0]:.2f}; work folder {work}")

    rows: list[dict] = []
    recbole_torch = None
    sides = ["mtrec", "recbole"] if args.only is None else [args.only]
    data_path, domain, stats = recbole_atomic(work / "recbole-data")
    if "recbole" in sides:
        ensure_recbole(args.recbole_venv)
    # Seed by seed, alternating sides, so an interrupted benchmark still has both sides of a seed.
    plan = [(seed, side) for seed in args.seeds for side in sides]
    done: dict[tuple[int, str], dict] = {}
    if args.resume and (work / "results.json").exists():
        for r in json.loads((work / "results.json").read_text(encoding="utf-8")):
            if r.get("epochs_cap") == args.epochs and r.get("threads_env", 1) == args.threads:
                done[(r["seed"], r["side"].lower())] = r
    for i, (seed, side) in enumerate(plan, 1):
        if (seed, side) in done:
            r = done[(seed, side)]
            log(f"{r['side']} seed {seed}: reusing the finished run of {r.get('started', 'an earlier invocation')}")
        else:
            run_started = dt.datetime.now()
            r = run_mtrec(args, seed, work) if side == "mtrec" else run_recbole(args, seed, work, data_path, domain)
            r.update(started=f"{run_started:%Y-%m-%d %H:%M:%S}", finished=f"{dt.datetime.now():%Y-%m-%d %H:%M:%S}",
                     epochs_cap=args.epochs, threads_env=args.threads, invocation=f"{started:%Y-%m-%d %H:%M:%S}")
        rows.append(r)
        recbole_torch = r.get("torch", recbole_torch)
        log(f"{r['side']} seed {seed}: " + ", ".join(f"{m} {r['test'][m]:.4f}" for m in METRICS)
            + f"; {r['train_s_per_epoch']:.2f} s/epoch, {r['epochs_run']} epochs (best {r['best_epoch']}), "
              f"{r['wall_s']:.0f} s wall")
        saved = list(rows)
        if args.resume:  # keep finished runs of the earlier invocation that this one did not plan
            planned = {(se, sd) for se, sd in plan}
            saved += [row for key, row in done.items() if key not in planned]
        (work / "results.json").write_text(json.dumps(saved, indent=2), encoding="utf-8")
        load_all = {"start": rows[0]["load"]["start"], "end": rows[-1]["load"]["end"]}
        pending = [f"{'mtrec' if sd == 'mtrec' else 'RecBole'} seed {se}" for se, sd in plan[i:]]
        body = section(rows, machine, stats, args, command, started, dt.datetime.now(), load_all, recbole_torch,
                       pending=pending)
        (work / "section.md").write_text(body + "\n", encoding="utf-8")
        if args.out != "-":
            write_section(out_path, "recbole", body)

    print()
    print(table(rows))
    if args.out != "-":
        log(f"wrote the results into {out_path} (between {START} and {END})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
