"""MAN vs single-domain and shared (joint) SASRec on Arts + Office, users overlapping or not.

    python benchmarks/man.py [--users 1000] [--man-epochs 10] [--sasrec-epochs 40] [--ablations]

Data: datasets/ArtsOffice (URLLM's Amazon Arts + Office, every user in both domains), or a seeded
sample of its users (``--users``; 0 = all 9,577) written in the same file format, in two variants:

* ``overlap``: the files as they are (each user's Arts and Office interactions are one user);
* ``non-overlap``: the dataset-spec option ``split_users_by_domain: true`` (each user's Arts and
  Office sequences become two different users, so no user links the domains).

Runs, one at a time, each ``mtrec run ... --set training.threads=1`` with ``OMP_NUM_THREADS=1``:
``sasrec`` single-domain (Figure 3's "Single") and joint ("Shared") twice -- the platform's SASRec
(hidden 64, cross-entropy over the domain's items) and SASRec at the paper's protocol (every model
at MAN's embedding size 20 and trained with MAN's loss, binary cross-entropy against 16 sampled
negatives, §4.1.3) -- and ``man`` ("Cross"); with ``--ablations`` also Figure 3's backbone study on
MAN itself (its local module alone per domain, its global module alone), MAN without ISA / SFA / GPA
(Table 3), the rest of the paper's search of the regulariser λ (1e-7, 1e-3; the recipe has 1e-5),
and settings beyond the paper: SURGE's softmax objective (16 and 256 negatives), and D = 64. Protocol: per-domain
leave-one-out, full ranking over the domain's items (no history filtering), test metrics of the best
validation epoch (NDCG@10 on a seeded sample of validation users). Finished runs are kept in
``--work`` (``--resume`` reruns only what is missing; ``--only`` runs some rows, so two calls can
share the two cores). Writes the ``man`` section of docs/benchmarks.md (``--section man-all``: the
run on every user).

    python benchmarks/man.py --users 0 --variants overlap --section man-all --work benchmarks/.work/man-all ...
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchkit import BENCHMARKS_MD, REPO, LoadSampler, log, machine_info, thread_env, write_section, WORK_ROOT

SOURCE = REPO.parent / "shared" / "datasets" / "ArtsOffice"
SPLIT_FILES = ("train_F2.txt", "valid_F2.txt", "test_F2.txt")
OTHER_FILES = ("item_listA_F.csv", "item_listO_AA_F.csv", "Dualuser_dict.json")
METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10", "mrr")
# Figure 3's backbone study on MAN itself (the recipe's BACKBONE_STUDY): the local module alone, one
# model per domain; the global module alone on both domains.  ("Cross" is MAN.)
BACKBONE_STUDY = {"MAN Single (local module only)": ["encoder.params.variant=single", "transfer.name=single-domain"],
                  "MAN Shared (global module only)": ["encoder.params.variant=shared"]}
# Not the paper's settings: MAN with SURGE's softmax objective, and at the platform SASRec's size.
BEYOND_PAPER = {"man, loss=softmax": ["encoder.params.loss=softmax"],
                "man, loss=softmax, 256 neg.": ["encoder.params.loss=softmax", "encoder.params.train_negatives=256"],
                "man, D=64": ["encoder.params.hidden=64"]}
# §4.1.3: every model at the same embedding size (20 on Amazon), trained like MAN (Eq. 16-17: binary
# cross-entropy; MAN's recipe draws 16 negatives per target).
PAPER_PROTOCOL = ["encoder.params.hidden=20", "encoder.params.loss=bce", "encoder.params.negatives=16"]
PAPER_PROTOCOL_LABEL = "D=20, BCE 16 neg. (paper protocol)"
# §4.1.3: "Regularization coefficients are searched in [1e-7, 1e-5, 1e-3]" (λ of Eq. 18).  The recipe has
# 1e-5, so "MAN (Cross)" is the grid's middle value (results kept from before that default ran at 1e-6).
L2_SEARCH = {"man, λ=1e-7": ["encoder.params.l2=1e-7"], "man, λ=1e-3": ["encoder.params.l2=1e-3"]}
ABLATIONS = {"man w/o ISA": ["encoder.params.isa=false"], "man w/o SFA": ["encoder.params.sfa=false"],
             "man w/o GPA": ["encoder.params.gpa=false"]}


def subsample(users: int, seed: int, out: Path) -> Path:
    """A copy of ArtsOffice keeping a seeded sample of ``users`` users (all their lines), or a link to it."""
    if users <= 0:
        return SOURCE
    out.mkdir(parents=True, exist_ok=True)
    ids = sorted({line.split("\t", 1)[0] for f in SPLIT_FILES for line in (SOURCE / f).read_text().splitlines() if line})
    keep = set(np.random.default_rng(seed).choice(ids, size=min(users, len(ids)), replace=False).tolist())
    for f in SPLIT_FILES:
        lines = [line for line in (SOURCE / f).read_text().splitlines() if line and line.split("\t", 1)[0] in keep]
        (out / f).write_text("\n".join(lines) + "\n")
    for f in OTHER_FILES:
        shutil.copyfile(SOURCE / f, out / f)
    return out


def write_spec(path: Path, name: str, data: Path, split_users: bool) -> Path:
    lines = [f"name: {name}", "split: leave-one-out", f"split_users_by_domain: {str(split_users).lower()}",
             "sources:", "  - format: c2dsr", f"    path: {data}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def run(label: str, recipe: str, spec: Path, sets: list[str], work: Path, threads: int, resume: bool,
        skip: bool = False) -> dict | None:
    """One row: kept from an earlier call (``resume``), left out (``skip``: None unless kept), or run."""
    run_dir = work / label.replace(" ", "_").replace("/", "").replace(",", "").replace("=", "")
    kept = run_dir / "result.json"
    if resume and kept.exists():
        log(f"{label}: kept from an earlier run")
        return json.loads(kept.read_text())
    if skip:
        return None
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    metrics = run_dir / "metrics.json"
    exe = Path(sys.executable).parent / "mtrec"
    cmd = [str(exe), "run", "--plugin", recipe, "--dataset", str(spec), "--no-registry", "--no-progress",
           "--metrics-json", str(metrics), "--set", "device=cpu", "--set", f"training.threads={threads}"]
    for s in sets:
        cmd += ["--set", s]
    (run_dir / "command.txt").write_text(shlex.join(cmd) + "\n")
    log(f"{label}: {shlex.join(cmd[1:])}")
    with LoadSampler() as load, open(run_dir / "stdout.log", "w") as out:
        started = time.perf_counter()
        env = thread_env(threads) | {"MTREC_HOME": str(work / "home"), "MTREC_CACHE_DIR": str(work / "cache")}
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - started
    if rc != 0:
        tail = (run_dir / "stdout.log").read_text(errors="replace")[-2000:]
        raise SystemExit(f"{label} failed (exit {rc}):\n{tail}")
    res = json.loads(metrics.read_text())
    stages = res["stages"]
    log(f"{label}: done in {wall:.0f}s, test ndcg@10 {res['test']['average']['ndcg@10']:.4f}")
    result = {"label": label, "test": res["test"], "counts": res["counts"], "wall_s": wall, "load": load.summary(),
              "train_s_per_epoch": sum(s["seconds_per_epoch"] for s in stages) / len(stages),
              "epochs": "; ".join(f"{s['epochs_run']} ({s['best_epoch']})" for s in stages),
              "finished": dt.datetime.now().isoformat(timespec="minutes")}
    kept.write_text(json.dumps(result, indent=1))
    return result


def table(rows: list[dict], domains: list[str]) -> str:
    head = ["model"] + [f"{d} {m}" for d in domains for m in ("R@10", "N@10", "MRR")] + \
           ["avg N@10", "train s/epoch", "epochs (best)", "wall s"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        t = r["test"]
        cells = [r["label"]] + [f"{t[d][m]:.4f}" for d in domains for m in ("recall@10", "ndcg@10", "mrr")]
        cells += [f"{t['average']['ndcg@10']:.4f}", f"{r['train_s_per_epoch']:.1f}", r["epochs"], f"{r['wall_s']:.0f}"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1000, help="seeded user sample of ArtsOffice (0 = all users)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--man-epochs", type=int, default=10)
    ap.add_argument("--man-patience", type=int, default=3)
    ap.add_argument("--man-batch", type=int, default=128)
    ap.add_argument("--man-lr", type=float, default=2e-3)
    ap.add_argument("--man-eval-every", type=int, default=2)
    ap.add_argument("--sasrec-epochs", type=int, default=40)
    ap.add_argument("--sasrec-patience", type=int, default=5)
    ap.add_argument("--valid-users", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ablations", action="store_true",
                    help="also MAN Single/Shared (Figure 3), w/o ISA, SFA, GPA (Table 3), the paper's λ search (1e-7, 1e-3), loss=softmax (16 and 256 negatives) and D=64 (overlap variant)")
    ap.add_argument("--variants", default="overlap,non-overlap")
    ap.add_argument("--work", type=Path, default=WORK_ROOT / "man")
    ap.add_argument("--out", type=Path, default=BENCHMARKS_MD, help="the Markdown file whose `man` section is rewritten")
    ap.add_argument("--only", nargs="+", metavar="LABEL",
                    help="run only these rows (their labels, e.g. 'MAN (Cross)'); the report shows every finished "
                         "row of --work, so calls with disjoint --only can run side by side and a last --resume call "
                         "writes the whole table")
    ap.add_argument("--section", default="man",
                    help="the docs section to write (`man`: the 1,000-user table; `man-all`: every user)")
    ap.add_argument("--resume", action="store_true", help="keep runs an earlier call finished (same --work)")
    args = ap.parse_args()

    started = dt.datetime.now()
    args.work.mkdir(parents=True, exist_ok=True)
    common = [f"seed={args.seed}", f"evaluation.valid_max_users={args.valid_users}", "evaluation.protocol=full"]
    sasrec = common + [f"training.epochs={args.sasrec_epochs}", f"training.patience={args.sasrec_patience}"]
    man = common + [f"training.epochs={args.man_epochs}", f"training.patience={args.man_patience}",
                    f"training.batch_size={args.man_batch}", f"training.lr={args.man_lr}",
                    f"training.eval_every={args.man_eval_every}"]
    plans: dict[str, list[tuple[str, str, list[str]]]] = {}
    for variant in args.variants.split(","):
        plans[variant] = [("SASRec single-domain (Single)", "sasrec", sasrec),
                          ("SASRec joint (Shared)", "sasrec", sasrec + ["transfer.name=joint"]),
                          (f"SASRec single-domain, {PAPER_PROTOCOL_LABEL}", "sasrec", sasrec + PAPER_PROTOCOL),
                          (f"SASRec joint, {PAPER_PROTOCOL_LABEL}", "sasrec",
                           sasrec + PAPER_PROTOCOL + ["transfer.name=joint"]),
                          ("MAN (Cross)", "man", man)]
        if args.ablations and variant == "overlap":
            extras = {**BACKBONE_STUDY, **ABLATIONS, **L2_SEARCH, **BEYOND_PAPER}
            plans[variant] += [(label, "man", man + extra) for label, extra in extras.items()]
    known = [label for plan in plans.values() for label, _, _ in plan]
    unknown = set(args.only or ()) - set(known)
    if unknown:
        raise SystemExit(f"--only: no row {', '.join(sorted(unknown))}; rows: {'; '.join(dict.fromkeys(known))}")
    data = subsample(args.users, args.seed, args.work / f"ArtsOffice-{args.users}")
    results: dict[str, list[dict]] = {}
    for variant, plan in plans.items():
        name = f"artsoffice-{args.users or 'all'}-{variant}"
        spec = write_spec(args.work / f"{name}.yaml", name, data, variant == "non-overlap")
        results[variant] = [run(f"{variant} {label}", recipe, spec, sets, args.work, args.threads,
                                args.resume or (args.only is not None and label not in args.only),
                                skip=args.only is not None and label not in args.only)
                            for label, recipe, sets in plan]
        results[variant] = [r for r in results[variant] if r is not None]
        for r in results[variant]:
            r["label"] = r["label"].split(" ", 1)[1]
        write_report(args, started, results, data)
    write_report(args, started, results, data)


def reading(rows: list[dict]) -> list[str]:
    """What the overlap rows say about the objective, the size and MAN's cross-domain modules."""
    by = {r["label"]: r["test"]["average"]["ndcg@10"] for r in rows}
    pairs = [("SASRec single-domain (Single)", f"SASRec single-domain, {PAPER_PROTOCOL_LABEL}",
              "the platform's SASRec (D = 64, cross-entropy over every item of the domain) against the same model at "
              "the paper's size and objective"),
             ("MAN (Cross)", "MAN Single (local module only)", "MAN against its own local module alone (Figure 3)"),
             ("MAN (Cross)", "man, λ=1e-7", "MAN at the recipe's λ = 1e-5 against the paper's other λ values, 1e-7"),
             ("MAN (Cross)", "man, λ=1e-3", "and 1e-3"),
             ("MAN (Cross)", "man, loss=softmax", "MAN's BCE against SURGE's softmax over the same candidates"),
             ("MAN (Cross)", "man, loss=softmax, 256 neg.", "and against that softmax over 256 sampled candidates "
              "(closer to SASRec's cross-entropy over every item)"),
             ("MAN (Cross)", "man, D=64", "MAN at D = 20 against D = 64")]
    said = [f"{text}: {by[a]:.4f} vs {by[b]:.4f}" for a, b, text in pairs if a in by and b in by]
    if not said:
        return []
    users = min(rows[0]["counts"][d] for d in rows[0]["test"] if d != "average")
    return ["Reading (overlap, average NDCG@10): " + "; ".join(said) + f". One seed, {users:,} test users per domain: "
            f"a difference of one hit at rank 1 is {1 / users:.4f} in a domain's NDCG@10.", ""]


def identical_note(results: dict[str, list[dict]]) -> list[str]:
    """Why ``overlap`` and ``non-overlap`` can give the same rows -- said only when they do."""
    if "non-overlap" not in results:
        return ["Only the *overlap* variant ran at this size. Every model here reads each user's history within the "
                "target domain only, so splitting the users (*non-overlap*) trains on the same sequences; at 1,000 "
                "users every row of the two variants came out identical (section above).", ""]
    if "overlap" not in results:
        return []
    other = {r["label"]: r["test"] for r in results["non-overlap"]}
    same = [r["label"] for r in results["overlap"] if other.get(r["label"]) == r["test"]]
    if not same:
        return []
    return ["Rows identical in both variants: " + ", ".join(same) + ". Every model here reads each user's history "
            "**within the target domain only** (SASRec's default `view: single`, MAN's local and global encoders), so "
            "splitting the users changes only user ids, not one training sequence. MAN's cross-domain transfer goes "
            "through shared parameters (the global item table and encoder, the group prototypes, `MLP_g`), which is "
            "why the paper claims it needs no overlapping users; a model reading the merged history (`history_cross`) "
            "would see the difference.", ""]


def write_report(args, started: dt.datetime, results: dict[str, list[dict]], data: Path) -> None:
    info = machine_info()
    finished = dt.datetime.now()
    runs = [r for rs in results.values() for r in rs if "finished" in r]
    if runs:  # --resume: the span of the runs themselves, not of this call
        started = min(dt.datetime.fromisoformat(r["finished"]) - dt.timedelta(seconds=r["wall_s"]) for r in runs)
        finished = max(dt.datetime.fromisoformat(r["finished"]) for r in runs)
    scope = "all users" if args.users <= 0 else f"{args.users:,} users"
    lines = [f"## MAN vs single-domain and shared SASRec (Arts + Office, {scope})", ""]
    lines.append(f"- **Machine:** {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.0f} GiB RAM, torch {info['torch']}, "
                 f"Python {info['python']}, CPU only, {args.threads} thread per training (`OMP_NUM_THREADS`), "
                 "one training at a time per call (other calls and jobs may run beside it: see Load). "
                 "No GPU was lent to this session: there are no GPU rows.")
    lines.append(f"- **Date:** {started:%Y-%m-%d %H:%M} – {finished:%H:%M} (local time).")
    lines.append("- **Command:** `python benchmarks/man.py" + "".join(
        f" --{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("work", "ablations", "variants", "resume", "out", "section", "only"))
        + (" --ablations" if args.ablations else "") + (f" --variants {args.variants}" if args.variants != "overlap,non-overlap" else "")
        + (f" --section {args.section}" if args.section != "man" else "") + "`")
    loads = [r["load"] for rs in results.values() for r in rs]
    if loads:
        lines.append(f"- **Load:** 1-minute load average over the runs: mean {np.mean([l['mean_1min'] for l in loads]):.1f}, "
                     f"max {max(l['max_1min'] for l in loads):.1f} on {info['cores']} cores (other jobs, other "
                     "benchmarks or other agents' work, shared the machine); timings are noisy and comparable only within this table.")
    who = "all 9,577 users" if args.users <= 0 else f"a seeded sample (seed {args.seed}) of {args.users} of its 9,577 users, all their interactions and the full item tables"
    lines.append(f"- **Data:** `datasets/ArtsOffice` ({who}). *overlap*: the files as they are (every user has both "
                 "domains); *non-overlap*: dataset spec `split_users_by_domain: true`, so each user's Arts and Office "
                 "sequences are two users and nothing links the domains but the items' shared catalogue ids.")
    lines.append("- **Protocol:** leave-one-out per (user, domain); **full ranking** over every item of the target "
                 "domain, history items not removed; test metrics of the best epoch by validation NDCG@10 "
                 f"(validation on a seeded sample of {args.valid_users} users per domain; the test uses every user).")
    lines.append(f"- **Settings:** SASRec = the `sasrec` recipe (hidden 64, 2 layers, CE over the domain's items, "
                 f"batch 256), at most {args.sasrec_epochs} epochs, patience {args.sasrec_patience}; *single-domain* = one "
                 "model per domain, *joint* = one model on both domains (Figure 3's Single / Shared); "
                 f"*{PAPER_PROTOCOL_LABEL}*: the same SASRec at the paper's protocol (§4.1.3: every model at MAN's "
                 "embedding size, 20 on Amazon, and trained with MAN's objective, Eq. 16–17: binary cross-entropy, here "
                 "against 16 uniform negatives from the target's domain as MAN's recipe draws). MAN = the `man` "
                 "recipe (the paper's Amazon settings D = 20 and MLPs [20, 10]; 16 training negatives, λ = 1e-5; a "
                 "SASRec backbone: SASRec is the paper's Micro-Video backbone and SURGE its Amazon one (§4.2), which "
                 "mtrec does not implement, so mtrec uses SASRec for both) "
                 f"except batch {args.man_batch} and lr {args.man_lr} instead of 20 and 1e-3 "
                 f"(CPU time: fewer, larger steps), at most {args.man_epochs} epochs validated every {args.man_eval_every} "
                 f"(patience {args.man_patience} validations), reduced for this shared CPU: MAN trains one example per "
                 "target and scores each with its candidate-dependent attention, where SASRec takes every position "
                 "of a sequence in one pass (the train s/epoch column).")
    lines.append("")
    for variant, rows in results.items():
        if not rows:
            continue
        domains = [d for d in rows[0]["test"] if d != "average"]
        counts = ", ".join(f"{d} {rows[0]['counts'][d]}" for d in domains)
        lines += [f"**{variant}** (test users: {counts}). R = Recall, N = NDCG, MRR over the full ranking.", "",
                  table(rows, domains), ""]
        man = next((r for r in rows if r["label"] == "MAN (Cross)"), None)
        if man is not None and any(r["label"].startswith("SASRec") for r in rows):
            verdict = []
            for d in domains:
                best = max((r for r in rows if r["label"].startswith("SASRec")), key=lambda r: r["test"][d]["ndcg@10"])
                won = man["test"][d]["ndcg@10"] > best["test"][d]["ndcg@10"]
                verdict.append(f"{d}: MAN NDCG@10 {man['test'][d]['ndcg@10']:.4f} vs the best SASRec row here "
                               f"{best['test'][d]['ndcg@10']:.4f} ({'MAN ahead' if won else 'MAN behind'})")
            lines += ["Outcome: " + "; ".join(verdict) + ".", ""]
            paper = [r for r in rows if r["label"].endswith(PAPER_PROTOCOL_LABEL)]
            if paper:
                beats = [d for d in domains if all(man["test"][d]["ndcg@10"] > r["test"][d]["ndcg@10"] for r in paper)]
                lines += [f"At the paper's protocol (same size and loss): MAN ahead of both SASRec rows on "
                          f"{', '.join(beats) if beats else 'no domain'} (NDCG@10).", ""]
    lines += identical_note(results)
    lines += reading(results.get("overlap", []))
    lines.append("Paper numbers (Table 2) use other data (Amazon Video Games + Toys, Micro Video) and the sampled "
                 "protocol with AUC/GAUC/MRR/NDCG, so they are not comparable with these rows.")
    write_section(args.out, args.section, "\n".join(lines))
    log(f"wrote the {args.section} section of {args.out}")


if __name__ == "__main__":
    main()
