#!/usr/bin/env python
"""One-off: the section records of ``benchmarks/results/`` for sections whose run folders are gone.

``python benchmarks/claims.py --extract [SECTION...]`` calls :func:`extract`: it reads each older
section's tables and bullet lines in docs/benchmarks.md and writes ``benchmarks/results/SECTION.json``
with ``"source": "extracted from docs/benchmarks.md section SECTION"``, the numbers exactly those of
the tables, checked against the section's own summary lines.  A record a benchmark script wrote
itself (``benchkit.save_results``) is kept.  Kept apart from ``claims.py`` (the rules and the table)
because it reads Markdown written by earlier versions of the scripts, which nothing else should.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from benchkit import BENCHMARKS_MD, REPO, RESULTS_DIR, save_results  # noqa: E402


def _sections(doc: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"<!-- ([\w.-]+):start -->\n(.*?)\n<!-- \1:end -->", doc, re.S)}


def _bullet(body: str, label: str) -> str:
    m = re.search(r"^- \*\*" + re.escape(label) + r":?\*\*:?\s*(.*)$", body, re.M)
    if not m:
        raise SystemExit(f"no '{label}' line")
    return m.group(1).strip()


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _tables(body: str) -> list[dict]:
    lines, out, heading, i = body.splitlines(), [], "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", lines[i + 1].strip()):
            k = i - 1
            while k >= 0 and not lines[k].strip():
                k -= 1
            rows, j = [], i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append(_cells(lines[j]))
                j += 1
            out.append({"heading": heading, "context": lines[k] if k >= 0 else "", "header": _cells(line), "rows": rows})
            i = j
            continue
        i += 1
    return out


def _num(cell: str) -> float | None:
    c = cell.replace("*", "").strip()
    return None if c in ("–", "-", "") else float(c)


def _stages(text: str, names: list[str] | None = None) -> list[dict]:
    """``"40 (38); 39 (34)"`` / ``"pretrain 23 (18), finetune 22 (17)"`` -> stages (epochs run, best epoch)."""
    found = re.findall(r"(?:([A-Za-z][\w:]*) )?(\d+) \((\d+)\)", text)
    out = []
    for i, (name, run, best) in enumerate(found):
        out.append({"name": name or (names[i] if names and i < len(names) else f"stage {i + 1}"),
                    "epochs_run": int(run), "best_epoch": int(best)})
    return out


def _machine(text: str) -> dict:
    m = {"text": text, "cpu": text.split(",")[0].strip(), "cuda": False if "CPU only" in text else None}
    for key, pattern, cast in (("cores", r"(\d+) cores", int), ("ram_gib", r"(\d+) GiB", int),
                               ("torch", r"torch ([0-9][^\s,;]*)", str), ("python", r"Python (\d+(?:\.\d+)+)", str),
                               ("threads", r"(\d+) (?:torch )?thread", int)):
        hit = re.search(pattern, text)
        if hit:
            m[key] = cast(hit.group(1))
    hit = re.search(r"\b(one|\d+)(?: training| run\(s\)| runs)? at a time", text, re.I)
    if hit:
        m["at_a_time"] = 1 if hit.group(1).lower() == "one" else int(hit.group(1))
    return m


def _test_users(dataset: str) -> dict[str, int]:
    """Test users per domain of a dataset spec (or bundled name), as mtrec's loader splits it (no training)."""
    from mtrec.data.load import load_dataset, resolve_spec
    from mtrec.data.model import TEST
    from mtrec.plugins import get_plugins

    formats = get_plugins().formats
    ds = load_dataset(resolve_spec(dataset if dataset == "amazon-mini" else REPO / dataset, formats), formats,
                      use_cache=False)
    test = ds.inter_role == TEST
    dom = ds.item_domain[ds.inter_item[test]]
    return {name: int((dom == i).sum()) for i, name in enumerate(ds.domains)}


def _source(name: str) -> str:
    return f"extracted from docs/benchmarks.md section {name}"


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"extraction check failed: {what}")


def extract_syncrec(body: str) -> dict:
    import syncrec as bench  # the section's own script: its domain abbreviations and run keys

    budget = re.search(r"SyNCRec-sample at most (\d+) epochs, patience (\d+); ArtsOffice at most (\d+) epochs, "
                       r"patience (\d+)", body)
    _check(budget is not None, "syncrec budgets")
    _check("BPR with one uniform negative" in body, "syncrec SASRec loss")
    caps = {"syncrec-sample": (int(budget.group(1)), int(budget.group(2))),
            "artsoffice": (int(budget.group(3)), int(budget.group(4)))}
    users = {"syncrec-sample": _test_users("benchmarks/specs/syncrec-sample.yaml"),
             "artsoffice": _test_users("benchmarks/specs/artsoffice-loo.yaml")}
    variants = {"SyNCRec-sample, sampled": ("syncrec-sample", "sampled"), "SyNCRec-sample, full": ("syncrec-sample", "full"),
                "ArtsOffice": ("artsoffice", "full")}
    rows: dict[tuple, dict] = {}
    cost = None
    for t in _tables(body):
        if t["header"][0] == "run":
            cost = t
            continue
        if t["header"][0] != "model" or t["header"][1] == "metric":
            continue  # the change (%) tables are derived
        dataset, protocol = next(v for k, v in variants.items() if t["heading"].startswith(k))
        for cells in t["rows"]:
            model = cells[0]
            row = rows.setdefault((dataset, protocol, model), {
                "key": re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-"), "label": model,
                "setting": f"{dataset}/{protocol}", "recipe": "sasrec" if model.startswith("sasrec") else "syncrec",
                "loss": "bpr", "seed": 2024, "test": {}, "counts": {}})
            for head, cell in zip(t["header"][1:], cells[1:]):
                domain, metric = head.split(" ", 1)
                old = row["test"].setdefault(domain, {}).get(metric)
                _check(old is None or old == _num(cell), f"{model} {head} differs between tables")
                row["test"][domain][metric] = _num(cell)
    _check(cost is not None, "syncrec cost table")
    for (dataset, protocol, model), row in rows.items():
        full = {bench.SHORT[d]: d for d in users[dataset]}
        row["counts"] = {short: users[dataset][name] for short, name in full.items() if short in row["test"]}
        row["domains"] = {short: full[short] for short in row["counts"]}
        key = bench.run_key(dataset, protocol, model)
        hit = [c for c in cost["rows"] if c[0] == key]
        if not hit:
            row["stages"] = []
            continue
        c = dict(zip(cost["header"], hit[0]))
        order = [f"single:{d}" for d in users[dataset]] if model == "sasrec-single" else [
            "joint" if model == "sasrec-joint" else "stage 1"]
        row["stages"] = [{**s, "epoch_cap": caps[dataset][0], "patience": caps[dataset][1]}
                         for s in _stages(c["epochs run (best)"], order)]
        mean, peak = c["load mean/max"].split("/")
        row.update({"wall_s": float(c["total wall s"]), "train_s_per_epoch": float(c["train s/epoch"]),
                    "peak_rss_mb": float(c["peak RSS MB"]), "load": {"mean_1min": float(mean), "max_1min": float(peak)},
                    "run": key})
    s_cap, s_pat = caps["syncrec-sample"]
    a_cap, a_pat = caps["artsoffice"]
    base = (f"syncrec vs SASRec per domain (one block, one head, BPR with one uniform negative), both hidden 32, "
            f"history 20, batch 128")
    return {
        "source": _source("syncrec"),
        "machine": _machine(_bullet(body, "Machine")), "when": _bullet(body, "Date"), "load_text": _bullet(body, "Load"),
        "command": _bullet(body, "Command").strip("`"), "seeds": [2024],
        "counts_source": "test users per domain computed with mtrec's loader from the section's dataset specs "
                         "(the section does not print them); stage names follow the dataset's domain order",
        "settings": {
            "syncrec-sample/full": {"label": "SyNCRec-sample, full ranking", "protocol":
                f"SyNCRec-sample: the 500-user Amazon sample of the SyNCRec code (5 domains), leave-one-out per (user, "
                f"domain), full ranking over the domain's items; {base}; at most {s_cap} epochs, patience {s_pat}"},
            "syncrec-sample/sampled": {"label": "SyNCRec-sample, sampled protocol", "protocol":
                "the same, scored against 99 unseen items of the target's domain (the paper's protocol); the section "
                "finds every model there at the level of a random ranking"},
            "artsoffice/full": {"label": "ArtsOffice, full ranking", "protocol":
                f"ArtsOffice (9,577 users, Arts + Office), full ranking; at most {a_cap} epochs, patience {a_pat}"},
        },
        "rows": list(rows.values()),
    }


def extract_idp(body: str) -> dict:
    _check("BPR with one uniform negative" in body, "idp loss")
    load_line = _bullet(body, "Load")
    loads = re.findall(r"([\w-]+): ([\d.]+) → ([\d.]+) \(mean ([\d.]+)\)", load_line)
    budget = re.search(r"at most (\d+) epochs per stage.*?patience (\d+)", body)
    _check(budget is not None, "idp budget")
    cap, patience = int(budget.group(1)), int(budget.group(2))
    table = next(t for t in _tables(body) if t["header"][:2] == ["run", "target"])
    _check(len(table["rows"]) == len(loads), "idp: one Load entry per table row, in order")
    users = {"Scientific": _test_users("amazon-mini")["Scientific"],
             "Microlens": _test_users("benchmarks/specs/idp-scientific-microlens.yaml")["Microlens"]}
    rows = []
    for (key, start, end, mean), cells in zip(loads, table["rows"]):
        c = dict(zip(table["header"], cells))
        label, target = c["run"], c["target"]
        sampled = "sampled 99" in label
        long = re.search(r"(\d+) epochs, patience (\d+)", label)
        row_cap, row_pat = (int(long.group(1)), int(long.group(2))) if long else (cap, patience)
        setting = ("amazon-mini" if target == "Scientific" else "scientific-microlens") + ("/sampled" if sampled else "/full")
        rows.append({
            "key": key, "label": label, "setting": setting, "recipe": "sasrec" if label.startswith("SASRec") else "idp",
            "loss": "bpr", "seed": 2024,
            "test": {target: {m: _num(c[h]) for m, h in (("recall@5", "Recall@5"), ("ndcg@5", "NDCG@5"),
                                                           ("recall@10", "Recall@10"), ("ndcg@10", "NDCG@10"),
                                                           ("mrr", "MRR"))}},
            "counts": {target: users[target]},
            "stages": [{**s, "epoch_cap": row_cap, "patience": row_pat} for s in _stages(c["epochs run (best)"])],
            "vs_sasrec": c["vs SASRec"], "wall_s": _num(c["wall s"]),
            "load": {"start": float(start), "end": float(end), "mean_1min": float(mean)}})
    by_key = {r["key"]: r for r in rows}
    summary = re.findall(r"([\w-]+) vs ([\w-]+) on (\w+): NDCG@10 ([\d.]+) vs ([\d.]+)", body)
    _check(len(summary) >= 3, "idp summary")
    for a, b, target, va, vb in summary:  # the section's own summary names the rows: the keys line up
        _check(by_key[a]["test"][target]["ndcg@10"] == float(va) and by_key[b]["test"][target]["ndcg@10"] == float(vb),
               f"idp summary {a} vs {b}")
    prot = (f"leave-one-out per user and domain; SASRec and IDP both 64-d, 2 layers, BPR with one uniform negative, "
            f"at most {cap} epochs per stage, patience {patience} (the 100-epoch SASRec: patience 10)")
    return {
        "source": _source("idp"), "machine": _machine(_bullet(body, "Machine")), "when": _bullet(body, "Date"),
        "load_text": load_line, "command": _bullet(body, "Command").strip("`"), "seeds": [2024],
        "counts_source": "test users computed with mtrec's loader from amazon-mini and "
                         "benchmarks/specs/idp-scientific-microlens.yaml (the section names the user counts of the data)",
        "settings": {
            "amazon-mini/full": {"label": "amazon-mini, Scientific as the new domain", "protocol":
                f"amazon-mini: pre-train on Arts + Office, new domain Scientific (1,500 users), full ranking over its "
                f"items; {prot}"},
            "amazon-mini/sampled": {"label": "amazon-mini, sampled", "protocol":
                "amazon-mini → Scientific as above, scored against the target + 99 sampled negatives (the paper's "
                "protocol)"},
            "scientific-microlens/full": {"label": "Scientific → MicroLens", "protocol":
                "pre-train on Scientific (LC-Rec), new domain MicroLens (13,210 users), full ranking"},
        },
        "rows": rows,
    }


def extract_generative_budget(body: str) -> dict:
    from mtrec.builtins.recipes import SASREC

    table = next(t for t in _tables(body) if t["header"][0] == "recipe")
    users = _test_users("amazon-mini")
    stage_lines = re.findall(r"^- `(\w+)` stage `([^`]+)` \((\d+) s, (\d+) epochs?\):.*\(best [\d.]+ at epoch (\d+)\)",
                             body, re.M)
    command = _bullet(body, "Command")
    epochs = int(re.search(r"training\.epochs=(\d+)", command).group(1))
    patience = int(re.search(r"training\.patience=(\d+)", command).group(1))
    sas = SASREC.config["training"]
    started = dict(re.findall(r"(\w+) (\d{4}-\d\d-\d\d \d\d:\d\d)", _bullet(body, "Started")))
    rows = []
    for cells in table["rows"]:
        c = dict(zip(table["header"], cells))
        recipe = c["recipe"].strip("`")
        test: dict[str, dict] = {}
        for head, cell in c.items():
            hit = re.fullmatch(r"(\w+) ([RN])@(\d+)", head)
            if hit:
                metric = ("recall@" if hit.group(2) == "R" else "ndcg@") + hit.group(3)
                test.setdefault(hit.group(1), {})[metric] = _num(cell)
        stages = []
        for rc, name, secs, run, best in stage_lines:
            if rc != recipe:
                continue
            if recipe == "sasrec":
                cap, pat = sas["epochs"], sas["patience"]
            elif name.startswith("lora:"):
                cap, pat = None, None  # the LoRA stages' cap is not in the section
            else:
                cap, pat = epochs, patience
            stages.append({"name": name, "epochs_run": int(run), "best_epoch": int(best), "epoch_cap": cap,
                           "patience": pat, "seconds": float(secs)})
        rows.append({"key": recipe, "label": recipe, "setting": "amazon-mini", "recipe": recipe,
                     "loss": SASREC.config["encoder"]["params"]["loss"] if recipe == "sasrec" else None,
                     "seed": 2024, "test": test, "counts": {d: users[d] for d in test if d in users},
                     "stages": stages, "wall_s": _num(c["wall s"]), "load": {"mean_1min": _num(c["load"])},
                     "started": started.get(recipe)})
    return {
        "source": _source("generative-budget"), "machine": _machine(_bullet(body, "Machine")),
        "when": "started " + _bullet(body, "Started").split(". **Load")[0], "command": command.split(" — ")[0].strip("`"),
        "seeds": [2024],
        "counts_source": "test users computed with mtrec's loader from amazon-mini; sasrec's epoch cap and patience "
                         "are its recipe's defaults (core/builtins/recipes.py; the section ran the default config); "
                         "seed: mtrec's default (2024)",
        "settings": {"amazon-mini": {"label": "amazon-mini", "protocol":
            f"amazon-mini (Scientific 1,500, Arts 1,400, Office 1,400 users), leave-one-out, full ranking over each "
            f"domain's items; sasrec: its defaults (cross-entropy over the domain's items, at most {sas['epochs']} "
            f"epochs, patience {sas['patience']})"}},
        "rows": rows,
    }


def extract_man(body: str, name: str) -> dict:
    settings_line = _bullet(body, "Settings")
    sas = re.search(r"SASRec = .*?at most (\d+) epochs, patience (\d+)", settings_line)
    man = re.search(r"at most (\d+) epochs validated every (\d+) \(patience (\d+) validations\)", settings_line)
    _check(sas is not None and man is not None, f"{name} budgets")
    sas_cap, sas_pat = int(sas.group(1)), int(sas.group(2))
    man_cap, every, man_pat = int(man.group(1)), int(man.group(2)), int(man.group(3))
    load = re.search(r"mean ([\d.]+), max ([\d.]+)", _bullet(body, "Load"))
    rows, settings = [], {}
    for t in _tables(body):
        hit = re.match(r"\*\*(overlap|non-overlap)\*\* \(test users: Arts (\d+), Office (\d+)\)", t["context"])
        if not hit:
            continue
        setting, counts = hit.group(1), {"Arts": int(hit.group(2)), "Office": int(hit.group(3))}
        settings[setting] = {"label": setting, "counts": counts}
        for cells in t["rows"]:
            c = dict(zip(t["header"], cells))
            label = c["model"]
            is_sasrec = label.startswith("SASRec")
            key = re.sub(r"[^a-z0-9]+", "-", label.lower().replace("=", "")).strip("-")
            names = ([f"single:{d}" for d in counts] if "single" in label.lower() else
                     ["joint" if "joint" in label else "stage 1"])
            stages = _stages(c["epochs (best)"], names)
            for s in stages:
                s.update({"epoch_cap": sas_cap, "patience": sas_pat} if is_sasrec else
                         {"epoch_cap": man_cap, "patience": man_pat, "eval_every": every})
            test = {d: {"recall@10": _num(c[f"{d} R@10"]), "ndcg@10": _num(c[f"{d} N@10"]), "mrr": _num(c[f"{d} MRR"])}
                    for d in ("Arts", "Office")}
            test["average"] = {"ndcg@10": _num(c["avg N@10"])}
            rows.append({"key": key, "label": label, "setting": setting, "recipe": "sasrec" if is_sasrec else "man",
                         "loss": ("bce" if "BCE" in label else "ce") if is_sasrec else "bce", "seed": 2024,
                         "test": test, "counts": dict(counts), "stages": stages,
                         "train_s_per_epoch": _num(c["train s/epoch"]), "wall_s": _num(c["wall s"])})
    users = "1,000 sampled users" if "--users 1000" in body else "all 9,577 users"
    for setting in settings:
        settings[setting]["protocol"] = (
            f"ArtsOffice, {users} ({setting}), leave-one-out per (user, domain), full ranking over the domain's "
            f"items; SASRec (64-d, cross-entropy over the domain's items; and at the paper's D = 20 with BCE) at most "
            f"{sas_cap} epochs, patience {sas_pat}; MAN (D = 20, BCE) at most {man_cap} epochs validated every {every} "
            f"(patience {man_pat} validations)")
    return {
        "source": _source(name), "machine": _machine(_bullet(body, "Machine")), "when": _bullet(body, "Date"),
        "load": {"mean_1min": float(load.group(1)), "max_1min": float(load.group(2))}, "load_text": _bullet(body, "Load"),
        "command": _bullet(body, "Command").strip("`"), "seeds": [2024],
        "counts_source": "test users as printed above each table; single-domain stage names follow the columns' "
                         "domain order",
        "settings": settings, "rows": rows,
    }


def extract_idgenrec(body: str) -> dict:
    from mtrec_textual_id.alternate import AlternateParams

    when_line = _bullet(body, "When")
    when, load_part = when_line.split(" **Load**", 1)
    loads = dict((k, (float(m), float(x))) for k, m, x in re.findall(r"([\w-]+) mean (\d+(?:\.\d+)?) / max (\d+(?:\.\d+)?)", load_part))
    rec_epochs = int(re.search(r"transfer\.params\.recommender_epochs=(\d+)", body).group(1))
    patience = int(re.search(r"training\.patience=(\d+)", body).group(1))
    gen_epochs = AlternateParams.model_fields["generator_epochs"].default
    quality = next(t for t in _tables(body) if t["header"][:3] == ["run", "domain", "users"])
    walls = next(t for t in _tables(body) if t["header"][:2] == ["run", "stages"])
    rows: dict[str, dict] = {}
    for cells in quality["rows"]:
        c = dict(zip(quality["header"], cells))
        row = rows.setdefault(c["run"], {"key": c["run"], "label": c["run"], "setting": "", "recipe": "idgenrec",
                                         "seed": 2024, "test": {}, "counts": {}})
        row["test"][c["domain"]] = {m.lower(): _num(c[m]) for m in ("Recall@5", "NDCG@5", "Recall@10", "NDCG@10")}
        row["counts"][c["domain"]] = int(c["users"])
    for cells in walls["rows"]:
        c = dict(zip(walls["header"], cells))
        row = rows[c["run"]]
        row["stages"] = [{"name": n, "seconds": float(s), "epochs_run": int(e), "best_epoch": None,
                          "epoch_cap": rec_epochs if n.startswith("recommender") else gen_epochs,
                          "patience": patience}
                         for n, s, e in re.findall(r"([\w]+:\d+) ([\d.]+)s \((\d+) ep\)", c["stages"])]
        row["wall_s"] = _num(c["total wall s"])
        if c["run"] in loads:
            row["load"] = {"mean_1min": loads[c["run"]][0], "max_1min": loads[c["run"]][1]}
    return {
        "source": _source("idgenrec"), "machine": _machine(_bullet(body, "Machine")), "when": when.rstrip(". "),
        "load_text": load_part.strip(), "command": _bullet(body, "Command").split("` (")[0].strip("`"), "seeds": [2024],
        "counts_source": "test users as printed in the quality table; the section records no best epochs; the "
                         f"generator stages' cap is the plugin's default generator_epochs ({gen_epochs})",
        "settings": {"": {"label": "multi-domain benchmark", "protocol":
            "the multi-domain benchmark (Scientific 8,317, Arts 1,400, Office 1,400, Microlens 2,000 test users), "
            "leave-one-out, full ranking by trie-constrained beam search (beam 20); reduced CPU profile: T5 d_model "
            f"64, 2 rounds x {rec_epochs} recommender epochs, 4,000 training examples, patience {patience}; average "
            "NDCG@10 over 13,117 test users"}},
        "rows": list(rows.values()),
    }


def extract_scientific(body: str) -> dict:
    from mtrec.builtins.recipes import SASREC
    from mtrec_semantic_id.recipes import GMC

    table = next(t for t in _tables(body) if t["header"][0] == "recipe")
    by_recipe = {c[0].strip("`"): dict(zip(table["header"], c)) for c in table["rows"]}
    work = REPO / "benchmarks" / ".work" / "scientific"
    rows = []
    for recipe in ("gmc", "tiger", "sasrec"):
        result = json.loads((work / f"{recipe}-2024" / "result.json").read_text(encoding="utf-8"))
        c = by_recipe[recipe]
        for metric, head in (("recall@5", "R@5"), ("ndcg@5", "N@5"), ("recall@10", "R@10"), ("ndcg@10", "N@10")):
            _check(f"{result['test']['Scientific'][metric]:.4f}" == c[head], f"scientific {recipe} {metric}")
        sets = result["overrides"]
        stages = []
        for s in result["stages"]:
            if recipe == "sasrec":
                cap, pat = SASREC.config["training"]["epochs"], SASREC.config["training"]["patience"]
            elif s["name"].startswith("lora:"):
                cap, pat = GMC.config["transfer"]["params"]["lora_epochs"], int(sets["training.patience"])
            else:
                cap, pat = int(sets["training.epochs"]), int(sets["training.patience"])
            stages.append({"name": s["name"], "epochs_run": s["epochs_run"], "best_epoch": s["best_epoch"],
                           "epoch_cap": cap, "patience": pat, "seconds": s["seconds"]})
        _check("; ".join(f"{s['name']} {s['epochs_run']} ({s['best_epoch']})" for s in stages)
               == c["training stages: epochs (best)"], f"scientific {recipe} stages")
        rows.append({"key": recipe, "label": recipe, "setting": "", "recipe": recipe,
                     "loss": SASREC.config["encoder"]["params"]["loss"] if recipe == "sasrec" else None,
                     "seed": int(sets["seed"]), "test": result["test"], "counts": result["counts"], "stages": stages,
                     "overrides": sets, "cpu_s": result["cpu_s"], "wall_s": result["wall_s"], "load": result["load"],
                     "started": result["started"], "finished": result["finished"], "run_id": result["run_id"]})
    return {
        "source": _source("scientific") + " (full-precision values from benchmarks/.work/scientific/RECIPE-2024/"
                  "result.json, which the section's table rounds; checked equal to 4 decimals)",
        "machine": _machine(_bullet(body, "Machine")), "when": _bullet(body, "When"),
        "command": _bullet(body, "Command").strip("`"), "seeds": [2024],
        "settings": {"": {"label": "Scientific alone", "protocol":
            "Scientific (LC-Rec, 8,317 users) alone, leave-one-out, full ranking over the whole catalogue; gmc and "
            "tiger at most 40 epochs, patience 4 (plateau lr schedule), sasrec its defaults"}},
        "rows": rows,
    }


EXTRACTORS = {
    "syncrec": extract_syncrec, "idp": extract_idp, "generative-budget": extract_generative_budget,
    "man": lambda body: extract_man(body, "man"), "man-all": lambda body: extract_man(body, "man-all"),
    "idgenrec": extract_idgenrec, "scientific": extract_scientific,
}


def extract(doc_path: Path = BENCHMARKS_MD, root: Path = RESULTS_DIR, only: list[str] | None = None) -> list[Path]:
    sections = _sections(doc_path.read_text(encoding="utf-8"))
    written = []
    for name, fn in EXTRACTORS.items():
        if only and name not in only:
            continue
        path = Path(root) / f"{name}.json"
        if path.exists() and not json.loads(path.read_text(encoding="utf-8")).get("source", "").startswith("extracted"):
            print(f"{path}: written by its benchmark script, kept")
            continue
        heading = next(line[3:] for line in sections[name].splitlines() if line.startswith("## "))
        payload = {"heading": heading, **fn(sections[name])}
        written.append(save_results(name, payload, root=root))
        print(f"{written[-1]}: {len(payload['rows'])} rows")
    return written
