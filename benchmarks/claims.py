#!/usr/bin/env python
"""The claims table: each paper's headline claim beside the numbers measured here, with a verdict.

    python benchmarks/claims.py            # render the ``claims`` block at the top of docs/benchmarks.md, print it
    python benchmarks/claims.py --print    # print the block only, write nothing
    python benchmarks/claims.py --extract  # one-off: write benchmarks/results/SECTION.json for the sections whose
                                           # run folders are gone, from their tables in docs/benchmarks.md

Nothing is trained: the table is computed from the committed section records in ``benchmarks/results/``
(written by ``benchkit.save_results``; ``--extract`` wrote those of the older sections from the tables
of docs/benchmarks.md).  The rules, applied by code (nothing below is a typed verdict):

* a comparison counts only when both sides trained to early stopping: a run with a stage whose best
  epoch is its last, at the stage's epoch cap, is **capped** and decides nothing (so is a stage that ran
  its whole cap when its best epoch was not recorded); an *intermediate* stage (a round of a longer
  schedule that a later stage continues: IDGenRec's alternate rounds before the last) is never capped;
* a difference counts only beyond **two standard errors**: with several seeds, of the mean per-seed
  difference (paired by seed); with one seed, ``sqrt(se_a^2 + se_b^2)`` where each ``se`` is the
  per-user bound ``sqrt(N (1 - N) / n)`` of that NDCG over its ``n`` test users;
* the **strongest baseline**, SASRec with cross-entropy over all items, must be beaten for a claim to
  hold; losing beyond two standard errors to any SASRec the claim names refutes it;
* verdicts: *held* (every required comparison with the strongest baseline beyond 2 SE in the claim's
  direction, none reversed), *not held* (a counted comparison reversed beyond 2 SE), *not decided*
  (anything else: within 2 SE, capped, strongest baseline missing, runs not finished), *not measurable
  on this machine* (every setting of the claim marked so by its section record).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from benchkit import BENCHMARKS_MD, RESULTS_DIR  # noqa: E402

BLOCK = "claims"
HELD, NOT_HELD, NOT_DECIDED, NOT_MEASURABLE = "held", "not held", "not decided", "not measurable on this machine"
Z = 2.0  # standard errors a difference must exceed


# ============================================================================ statistics and rules
def se_bound(value: float, n: int) -> float:
    """Upper bound of the standard error of a mean of per-user values in [0, 1] whose mean is ``value``."""
    return math.sqrt(max(value * (1.0 - value), 0.0) / n)


def stage_capped(stage: dict) -> bool | None:
    """True: best epoch = last epoch = epoch cap (the budget stopped it).  None: it ran its whole cap and
    its best epoch is unknown.  An ``intermediate`` stage (a round a later stage continues) never is; otherwise
    a ``capped`` flag recorded by the trainer wins."""
    if stage.get("intermediate"):
        return False
    if stage.get("capped") is not None:
        return bool(stage["capped"])
    cap, run, best = stage.get("epoch_cap"), stage.get("epochs_run"), stage.get("best_epoch")
    if run is None or cap is None:
        return None
    if run < cap:
        return False
    if best is None:
        return None
    return best >= run


def row_capped(row: dict) -> bool | None:
    flags = [stage_capped(s) for s in row.get("stages") or []]
    if not flags:
        return None
    if any(f is True for f in flags):
        return True
    if any(f is None for f in flags):
        return None
    return False


def _stage(s: dict) -> str:
    name = str(s.get("name", "?"))
    return name if name.startswith("stage") else f"stage {name}"


def capped_reason(row: dict, name: str, show_seed: bool = False) -> str | None:
    """Why ``row`` decides nothing, or None when it trained to early stopping."""
    for s in row.get("stages") or []:
        flag = stage_capped(s)
        seed = f" seed {row['seed']}" if show_seed and row.get("seed") is not None else ""
        if flag is True:
            return f"{name}{seed} capped: {_stage(s)} best epoch {s.get('best_epoch')} = cap {s.get('epoch_cap')}"
        if flag is None:
            return (f"{name}{seed} not shown to early-stop: {_stage(s)} ran its whole {s.get('epoch_cap')}-epoch cap, "
                    "best epoch not recorded")
    if not row.get("stages"):
        return f"{name}: no training stages recorded"
    return None


def cap_caveat(row: dict, name: str) -> list[str]:
    """Stages stopped by their cap before patience ran out, though not capped by the rule (best < cap); an
    intermediate stage's length is its schedule's, which no caveat needs."""
    out = []
    for s in row.get("stages") or []:
        if s.get("intermediate"):
            continue
        cap, run, best, patience = s.get("epoch_cap"), s.get("epochs_run"), s.get("best_epoch"), s.get("patience")
        every = s.get("eval_every") or 1
        if (stage_capped(s) is False and cap and run is not None and best is not None and patience and run >= cap
                and cap > patience * every):  # a stage shorter than its patience can never stop early: no caveat
            if run - best < patience * every:
                out.append(f"{name} ({_stage(s)}) stopped by its {cap}-epoch cap {run - best} epoch(s) after its best, "
                           f"before patience {patience}{' validations' if every > 1 else ''} ran out")
    return out


def metric_of(row: dict, domain: str, metric: str) -> float | None:
    return (row.get("test") or {}).get(domain, {}).get(metric)


def users_of(row: dict, domain: str) -> int | None:
    counts = row.get("counts") or {}
    if domain in counts:
        return int(counts[domain])
    if domain == "average" and counts:
        return int(sum(v for k, v in counts.items() if k != "average"))
    return None


def row_loss(row: dict) -> str:
    """The training loss of a row: recorded, else its ``encoder.params.loss`` override, else the ``sasrec``
    recipe's default (cross-entropy over all items)."""
    return row.get("loss") or (row.get("overrides") or {}).get("encoder.params.loss") or "ce"


def is_strongest(row: dict) -> bool:
    """A SASRec baseline is the strongest only with cross-entropy over all items; any other baseline is one of
    the claim's own arms."""
    return row.get("recipe") != "sasrec" or row_loss(row) == "ce"


@dataclass
class Comparison:
    method: str
    baseline: str
    role: str
    domain: str
    metric: str
    a: float
    b: float
    a_std: float | None
    b_std: float | None
    diff: float
    se: float
    seeds: int
    how: str
    capped: list[str]
    strongest: bool
    caveats: list[str] = field(default_factory=list)

    @property
    def counted(self) -> bool:
        return not self.capped

    @property
    def outcome(self) -> str:
        if not self.counted:
            return "capped"
        if self.diff > Z * self.se:
            return "held"
        if self.diff < -Z * self.se:
            return "reversed"
        return "within"

    @property
    def z(self) -> float:
        if self.se > 0:
            return self.diff / self.se
        return 0.0 if self.diff == 0 else math.copysign(math.inf, self.diff)


def compare(a_rows: list[dict], b_rows: list[dict], domain: str, metric: str = "ndcg@10", *, method: str = "a",
            baseline: str = "b", role: str = "", strongest: bool | None = None) -> Comparison:
    """``a`` minus ``b`` on ``domain``: paired by seed over the seeds both sides have when there are two or
    more, else the per-user standard-error bound of each side -- on the one seed both have, when they
    share one (a row with one seed beside a baseline with more is compared on that seed, not against
    the baseline's mean over other seeds)."""
    if not a_rows or not b_rows:
        raise ValueError("compare needs rows on both sides")
    a_by, b_by = {r.get("seed"): r for r in a_rows}, {r.get("seed"): r for r in b_rows}
    common = [s for s in a_by if s in b_by and s is not None]
    a_vals = [metric_of(r, domain, metric) for r in a_rows]
    b_vals = [metric_of(r, domain, metric) for r in b_rows]
    if any(v is None for v in a_vals + b_vals):
        raise ValueError(f"{metric} on {domain} missing for {method} or {baseline}")
    std = lambda vals: statistics.stdev(vals) if len(vals) > 1 else None  # noqa: E731
    if len(common) >= 2:
        diffs = [metric_of(a_by[s], domain, metric) - metric_of(b_by[s], domain, metric) for s in common]
        diff = statistics.mean(diffs)
        se = statistics.stdev(diffs) / math.sqrt(len(diffs))
        a_used = [metric_of(a_by[s], domain, metric) for s in common]
        b_used = [metric_of(b_by[s], domain, metric) for s in common]
        a, b = statistics.mean(a_used), statistics.mean(b_used)
        a_std, b_std, seeds = std(a_used), std(b_used), len(common)
        how = f"paired by seed over {seeds} seeds"
        used = [a_by[s] for s in common] + [b_by[s] for s in common]
    else:
        shared = len(common) == 1 and (len(a_rows) > 1 or len(b_rows) > 1)
        if shared:
            a_rows, b_rows = [a_by[common[0]]], [b_by[common[0]]]
            a_vals, b_vals = [metric_of(a_rows[0], domain, metric)], [metric_of(b_rows[0], domain, metric)]
        a, b = statistics.mean(a_vals), statistics.mean(b_vals)
        n_a, n_b = users_of(a_rows[0], domain), users_of(b_rows[0], domain)
        if not n_a or not n_b:
            raise ValueError(f"test users on {domain} missing for {method} or {baseline}")
        se = math.sqrt(se_bound(a, n_a) ** 2 + se_bound(b, n_b) ** 2)
        diff, a_std, b_std, seeds = a - b, std(a_vals), std(b_vals), 1
        users = f"n = {n_a}" if n_a == n_b else f"n = {n_a} and {n_b}"
        how = (f"seed {common[0]}, the one both sides have, per-user bound, {users}" if shared
               else f"one seed, per-user bound, {users}" if len(a_rows) == len(b_rows) == 1
               else f"seeds not paired, per-user bound, {users}")
        used = a_rows + b_rows
    capped = [c for c in (capped_reason(r, method if any(r is x for x in a_rows) else baseline, seeds > 1)
                          for r in used) if c]
    caveats = [c for r in used for c in cap_caveat(r, method if any(r is x for x in a_rows) else baseline)]
    if strongest is None:
        strongest = all(is_strongest(r) for r in b_rows)
    return Comparison(method, baseline, role, domain, metric, a, b, a_std, b_std, diff, se, seeds, how,
                      sorted(set(capped)), strongest, list(dict.fromkeys(caveats)))


def _z_range(comps: list[Comparison]) -> str:
    zs = sorted(c.z for c in comps)
    lo, hi = f"{zs[0]:+.1f}", f"{zs[-1]:+.1f}"
    return f"z = {lo}" if lo == hi else f"z from {lo} to {hi}"


def summarise(comps: list[Comparison]) -> str:
    """What a group of comparisons shows: capped, ahead, within or behind (beyond 2 SE)."""
    parts = []
    capped = sorted({x for c in comps for x in c.capped})
    if capped:
        anyway = all(abs(c.z) <= Z for c in comps if not c.counted)
        parts.append("decides nothing: " + "; ".join(capped) + (" (differences within 2 SE anyway)" if anyway else ""))
    for outcome, word in (("held", "ahead beyond 2 SE"), ("within", "within 2 SE"), ("reversed", "behind beyond 2 SE")):
        group = [c for c in comps if c.counted and c.outcome == outcome]
        if group:
            parts.append(f"{word} ({_z_range(group)})")
    return "; ".join(parts)


def judge_setting(comparisons: list[Comparison], roles: list[str], *, pending: str | None = None,
                  not_measurable: str | None = None) -> tuple[str, str, bool]:
    """(outcome, reason, blocks): ``blocks`` is True when the setting keeps the claim from holding
    elsewhere (its strongest-baseline comparisons counted but stayed within 2 SE, or runs are pending)."""
    if not_measurable:
        return NOT_MEASURABLE, not_measurable, False
    if pending:
        return NOT_DECIDED, pending, True
    counted = [c for c in comparisons if c.counted]
    reversed_ = [c for c in counted if c.outcome == "reversed"]
    if reversed_:
        parts = []
        for method in dict.fromkeys(c.method for c in reversed_):
            mine = [c for c in reversed_ if c.method == method]
            parts.append(f"{method} behind {', '.join(dict.fromkeys(c.baseline for c in mine))} on "
                         f"{', '.join(dict.fromkeys(c.domain for c in mine))} beyond 2 SE ({_z_range(mine)})")
        caveats = list(dict.fromkeys(x for c in reversed_ for x in c.caveats))
        return NOT_HELD, "; ".join(parts + [f"caveat: {x}" for x in caveats]), False
    problems, capped, blocks = [], [], False
    for role in roles:
        mine = [c for c in comparisons if c.role == role]
        strong = [c for c in mine if c.strongest]
        if not mine:
            problems.append(f"no comparison with {role}")
        elif not strong:
            problems.append(f"no {role} with cross-entropy over all items (the strongest baseline) here; vs "
                            f"{', '.join(dict.fromkeys(c.baseline for c in mine))}: {summarise(mine)}")
        elif any(not c.counted for c in strong):
            capped += strong
        elif any(c.outcome != "held" for c in strong):
            problems.append(f"vs {role}: {summarise(strong)}")
            blocks = True
    if capped:
        problems.insert(0, summarise(capped))
    if not problems:
        strong = [c for c in comparisons if c.strongest]
        caveats = list(dict.fromkeys(x for c in strong for x in c.caveats))
        return HELD, "; ".join([f"ahead of every strongest baseline beyond 2 SE ({_z_range(strong)})"]
                               + [f"caveat: {x}" for x in caveats]), False
    return NOT_DECIDED, "; ".join(dict.fromkeys(problems)), blocks


@dataclass
class SettingResult:
    label: str
    section: str
    decides: bool
    outcome: str
    reason: str
    blocks: bool
    comparisons: list[Comparison]
    note: str = ""
    rows_used: list[tuple[str, dict]] = field(default_factory=list)


def judge_claim(results: list[SettingResult]) -> tuple[str, str]:
    deciding = [r for r in results if r.decides]
    if not deciding:
        return NOT_DECIDED, "nothing measured"
    if all(r.outcome == NOT_MEASURABLE for r in deciding):
        return NOT_MEASURABLE, "; ".join(f"{r.label}: {r.reason}" for r in deciding)
    not_held = [r for r in deciding if r.outcome == NOT_HELD]
    if not_held:
        return NOT_HELD, "; ".join(f"{r.label}: {r.reason}" for r in not_held)
    held = [r for r in deciding if r.outcome == HELD]
    if held and not any(r.blocks for r in deciding):
        return HELD, "; ".join(f"{r.label}: {r.reason}" for r in held)
    return NOT_DECIDED, "; ".join(f"{r.label}: {r.reason}" for r in deciding if r.outcome != HELD)


# ============================================================================ the claims
@dataclass
class Pair:
    method: str  # row key in the setting
    baseline: str
    role: str
    a_name: str
    b_name: str
    baseline_section: str | None = None  # the baseline row lives in another section's record
    baseline_setting: str | None = None


@dataclass
class SettingSpec:
    section: str
    setting: str
    label: str
    pairs: list[Pair]
    domains: list[str] | None = None  # None: every domain of the method row but "average"
    metric: str = "ndcg@10"
    decides: bool = True
    note: str = ""
    protocol: str = ""  # used when the section's record states no protocol
    # A seeded section that replaces older ones once it has run: while its record is absent the setting is left
    # out (the claim is judged as before it existed); once it exists, the deciding settings of these sections
    # become context carrying ``superseded_note``.
    supersedes: tuple[str, ...] = ()
    superseded_note: str = ""
    optional: bool = False  # left out while its section has no record (a superseding setting always is)


@dataclass
class ClaimSpec:
    paper: str
    claim: str
    tested: str
    roles: list[str]
    settings: list[SettingSpec]

    def active(self, records: dict[str, dict]) -> list[SettingSpec]:
        """The settings as ``records`` stand: an optional setting without its record is left out; a recorded
        setting that ``supersedes`` sections turns their deciding settings into context."""
        present = [s for s in self.settings if not ((s.optional or s.supersedes) and s.section not in records)]
        notes = {old: s.superseded_note for s in present for old in s.supersedes}
        return [replace(s, decides=False, note=notes[s.section]) if s.section in notes and s.decides else s
                for s in present]


SINGLE, SHARED = "single-domain SASRec", "shared SASRec"
SYN = [Pair("syncrec", "sasrec-single", SINGLE, "syncrec", "SASRec per domain (BPR)")]
# benchmarks/syncrec_seeds.py: the same baseline with SyNCRec's BPR and with cross-entropy (the strongest)
SYN_SEEDS = SYN + [Pair("syncrec", "sasrec-ce", SINGLE, "syncrec", "SASRec per domain (CE)")]
# The older one-seed settings of section syncrec: SASRec with BPR only and ArtsOffice capped, so they can
# refute but never hold the claim; the seeded section decides, they stay beside it.
SYN_CONTEXT = "context only: one seed, SASRec with BPR only (no strongest baseline); section syncrec-seeds decides"
MAN_PAIRS = [
    Pair("man-cross", "sasrec-single-domain-single", SINGLE, "MAN", "SASRec single (CE)"),
    Pair("man-cross", "sasrec-joint-shared", SHARED, "MAN", "SASRec shared (CE)"),
    Pair("man-cross", "sasrec-single-domain-d20-bce-16-neg-paper-protocol", SINGLE, "MAN", "SASRec single (D=20, BCE)"),
    Pair("man-cross", "sasrec-joint-d20-bce-16-neg-paper-protocol", SHARED, "MAN", "SASRec shared (D=20, BCE)"),
]
# benchmarks/man_seeds.py: MAN against SASRec with cross-entropy per domain and on both domains (the claim's
# Single and Shared, each the strongest baseline of its role), seeds paired; SASRec at the paper's D = 20 and
# BCE beside them as context (it decides nothing: the claim is judged against the strongest baselines).
MAN_SEEDS_PAIRS = [Pair("man", "sasrec-ce-single", SINGLE, "MAN", "SASRec single (CE)"),
                   Pair("man", "sasrec-ce-joint", SHARED, "MAN", "SASRec joint (CE)")]
MAN_SEEDS_PAPER = [Pair("man", "sasrec-bce-single", SINGLE, "MAN", "SASRec single (D=20, BCE)")]
MAN_CONTEXT = "context only: one seed; section man-seeds decides"
IDP_ROLE = "SASRec on the new domain alone"
# Section idp's one-seed settings: 30-epoch caps (IDP's fine-tuning capped on MicroLens) and SASRec with BPR only
IDP_CONTEXT = ("context only: one seed, stages capped at 30 epochs, SASRec with BPR only (no strongest baseline); "
               "section idp-default decides")
IDGENREC_PAIRS = [Pair("alternate", "rec-only", "rec-only", "alternate", "rec-only"),
                  Pair("rec-only", "id-only", "id-only", "rec-only", "id-only")]
IDGENREC_CONTEXT = "context only: one seed, a reduced profile, no stage shown to early-stop; section idgenrec-seeds decides"
SHARED_OFF_ROLE, UNIFIED_OFF_ROLE = "w/o sharable codebook", "w/o unified recommender"
# GMC's Table 4 variants (1) and (2), each run by benchmarks/generative.py as gmc plus one switch
GMC_ABLATION_PAIRS = [Pair("gmc", "gmc-shared-off", SHARED_OFF_ROLE, "gmc", "gmc w/o sharable codebook"),
                      Pair("gmc", "gmc-unified-off", UNIFIED_OFF_ROLE, "gmc", "gmc w/o unified recommender")]
GMC_PAIRS = [Pair("gmc", "tiger", "TIGER", "gmc", "tiger"), Pair("tiger", "sasrec", "SASRec", "tiger", "sasrec"),
             Pair("gmc", "sasrec", "SASRec", "gmc", "sasrec")]

CLAIMS: list[ClaimSpec] = [
    ClaimSpec(
        paper="SyNCRec",
        claim="“Our model outperformed the SDSR approach for all domains” (§5.4, Table 4: gain over CGRec trained on "
              "single-domain sequences in all ten domains, HR@5 / NDCG@5 / MRR, 99 sampled negatives)",
        tested="syncrec vs SASRec trained on each domain alone (with SyNCRec's BPR and with cross-entropy over all "
               "items), in every domain, seeds paired",
        roles=[SINGLE],
        settings=[
            SettingSpec("syncrec-seeds", "", "amazon-mini (Scientific, Arts, Office), every model to early stopping",
                        SYN_SEEDS, domains=["Scientific", "Arts", "Office"],
                        protocol="amazon-mini (Scientific, Arts, Office), leave-one-out, full ranking; the syncrec "
                                 "recipe's defaults against SASRec per domain with SyNCRec's width, history, batch and "
                                 "lr, with BPR and with cross-entropy, every model early-stopped, seeds paired"),
            SettingSpec("syncrec", "syncrec-sample/full", "SyNCRec-sample, full ranking", SYN, decides=False,
                        note=SYN_CONTEXT),
            SettingSpec("syncrec", "syncrec-sample/sampled", "SyNCRec-sample, 99 sampled negatives", SYN,
                        metric="ndcg@5", decides=False, note=SYN_CONTEXT),
            SettingSpec("syncrec", "artsoffice/full", "ArtsOffice, full ranking", SYN, decides=False,
                        note=SYN_CONTEXT),
        ]),
    ClaimSpec(
        paper="IDP",
        claim="“Compared to pure ID-based models (i.e., SASRec, GRU4Rec, BERT4Rec), our IDP … significantly "
              "outperforms them on all four datasets” (§3.4 (1), Table 2; cross-platform: §3.5.3, Table 5)",
        tested="IDP (fine-tuned encoder + generated ID embeddings) vs SASRec trained on the new domain alone, on each "
               "new domain",
        roles=[IDP_ROLE],
        settings=[
            SettingSpec("idp", "amazon-mini/full", "amazon-mini → Scientific, full ranking", [
                Pair("mini-idp", "mini-sasrec", IDP_ROLE, "IDP", "SASRec (BPR, 30 ep.)"),
                Pair("mini-idp", "mini-sasrec-long", IDP_ROLE, "IDP", "SASRec (BPR, 100 ep.)"),
                Pair("mini-idp", "sasrec", IDP_ROLE, "IDP", "SASRec (CE, section generative-budget)",
                     baseline_section="generative-budget", baseline_setting="amazon-mini"),
            ], domains=["Scientific"]),
            SettingSpec("idp", "amazon-mini/sampled", "amazon-mini → Scientific, 99 sampled negatives", [
                Pair("mini-idp-sampled", "mini-sasrec-sampled", IDP_ROLE, "IDP", "SASRec (BPR)")],
                domains=["Scientific"]),
            SettingSpec("idp-default", "", "amazon-mini → Scientific, default recipes to early stopping", [
                Pair("idp", "sasrec", IDP_ROLE, "IDP", "SASRec (BPR, same budget)"),
                Pair("idp", "sasrec-ce", IDP_ROLE, "IDP", "SASRec (CE, same budget)")], domains=["Scientific"],
                supersedes=("idp",), superseded_note=IDP_CONTEXT,
                protocol="amazon-mini → Scientific, full ranking, the idp recipe's defaults (at most 200 epochs, "
                         "patience 20, validation on every user) against SASRec with IDP's encoder, with BPR and with "
                         "cross-entropy, at the same budget, seeds paired"),
            SettingSpec("idp", "scientific-microlens/full", "Scientific → MicroLens, full ranking", [
                Pair("ml-idp", "ml-sasrec", IDP_ROLE, "IDP", "SASRec (BPR)")], domains=["Microlens"]),
            SettingSpec("idp", "amazon-mini/full", "IDP_ID+t (text-enhanced; not the claim's model)", [
                Pair("mini-idt", "mini-sasrec-long", IDP_ROLE, "IDP_ID+t", "SASRec (BPR, 100 ep.)"),
                Pair("mini-idt", "sasrec", IDP_ROLE, "IDP_ID+t", "SASRec (CE, section generative-budget)",
                     baseline_section="generative-budget", baseline_setting="amazon-mini"),
            ], domains=["Scientific"], decides=False,
                note="context only: §3.4 (1) compares IDP (ID only) with SASRec; IDP_ID+t is compared with the "
                     "text-enhanced models"),
        ]),
    ClaimSpec(
        paper="MAN",
        claim="“Our model MAN significantly outperforms all baselines under all metrics” (§4.2, Table 2: single-domain "
              "models incl. SASRec trained per domain, and cross-domain models); with each backbone, Cross beats "
              "Single and Shared (§4.4, Figure 3, AUC)",
        tested="MAN vs SASRec per domain (Single) and SASRec on both domains (Shared), in both domains",
        roles=[SINGLE, SHARED],
        settings=[
            SettingSpec("man-seeds", "", "Arts + Office, 1,000 users, every model to early stopping", MAN_SEEDS_PAIRS,
                        domains=["Arts", "Office"], supersedes=("man", "man-all"), superseded_note=MAN_CONTEXT,
                        protocol="ArtsOffice, section man's 1,000 users, leave-one-out, full ranking; the man recipe "
                                 "against SASRec per domain and on both domains with cross-entropy, every model "
                                 "early-stopped, validation on every user, seeds paired"),
            SettingSpec("man-seeds", "", "the same runs against SASRec at the paper's D = 20 and BCE", MAN_SEEDS_PAPER,
                        domains=["Arts", "Office"], decides=False, optional=True,
                        note="context only: a weaker baseline; the claim is judged against SASRec with cross-entropy"),
            SettingSpec("man", "overlap", "Arts + Office, 1,000 users", MAN_PAIRS, domains=["Arts", "Office"]),
            SettingSpec("man-all", "overlap", "Arts + Office, all 9,577 users", MAN_PAIRS, domains=["Arts", "Office"]),
        ]),
    ClaimSpec(
        paper="IDGenRec",
        claim="“alternate training significantly boosts the model’s performance … training only the ID generator does "
              "not yield good results” (§3.4.3, Table 5: ID-only < Rec-only < Alternate on Sports and Beauty)",
        tested="alternate > rec-only > id-only on test NDCG@10 (paired by seed where there are seeds)",
        roles=["rec-only", "id-only"],
        settings=[
            SettingSpec("idgenrec-seeds", "", "amazon-mini Scientific (one domain, as Table 5), to early stopping",
                        IDGENREC_PAIRS, domains=["Scientific"], supersedes=("idgenrec",),
                        superseded_note=IDGENREC_CONTEXT,
                        protocol="amazon-mini's Scientific domain alone, full ranking by beam search; the paper's "
                                 "schedule (3 rounds of 1 generator + 10 recommender epochs), the last round's "
                                 "recommender to early stopping, seeds paired"),
            SettingSpec("idgenrec-seeds", "", "the same runs against SASRec with cross-entropy",
                        [Pair("alternate", "sasrec-ce", "SASRec (CE)", "alternate", "SASRec (CE)")],
                        domains=["Scientific"], decides=False, optional=True,
                        note="context only: Table 5 compares training strategies; the strongest baseline beside them"),
            SettingSpec("idgenrec-seeds", "", "the same protocol, alternate with the generator's lr 1e-5",
                        [Pair("alternate-glr-1e-5", "rec-only", "rec-only", "alternate (generator lr 1e-5)", "rec-only"),
                         Pair("alternate-glr-1e-5", "id-only", "id-only", "alternate (generator lr 1e-5)", "id-only")],
                        domains=["Scientific"], decides=False, optional=True,
                        note="context only: not the recipe's generator lr (1e-4); tried after the recipe's runs"),
            SettingSpec("idgenrec", "", "multi-domain benchmark, reduced CPU profile", IDGENREC_PAIRS,
                        domains=["average"]),
        ]),
    ClaimSpec(
        paper="GMC",
        claim="“GMC achieves the best performance in almost all cases” (§5.2, Table 3; user-weighted AVERAGE NDCG@10: "
              "GMC 0.0850 > TIGER 0.0782 > SASRec 0.0659)",
        tested="gmc > tiger > sasrec on the user-weighted average NDCG@10 of the multi-domain benchmark, paired by seed",
        roles=["TIGER", "SASRec"],
        settings=[
            SettingSpec("generative", "", "multi-domain benchmark (Scientific, Arts, Office, Microlens)", GMC_PAIRS,
                        domains=["average"]),
            SettingSpec("generative", "", "the same benchmark, gmc's per-domain stages as full fine-tuning trained "
                        "like tiger's models (a CPU deviation)",
                        [Pair("gmc-full-finetune-long", "tiger-patience-8", "TIGER",
                              "gmc, long full fine-tuning per domain", "tiger, patience 8")],
                        domains=["average"], decides=False, optional=True,
                        note="context only: not the paper's per-domain LoRA, which cannot move the unified model on "
                             "this CPU (docs/benchmarks.md, \"What a per-domain stage can recover\")"),
            SettingSpec("generative", "", "the same benchmark with the papers' T5 (4+4 layers, d_ff 1024) on both "
                        "sides, lr 1e-3, patience 8",
                        [Pair("gmc-t5-paper-size", "tiger-t5-paper-size", "TIGER", "gmc, the papers' T5",
                              "tiger, the papers' T5"),
                         Pair("gmc-t5-paper-size-full-finetune", "tiger-t5-paper-size", "TIGER",
                              "gmc, the papers' T5, long full fine-tuning per domain", "tiger, the papers' T5"),
                         Pair("gmc-t5-paper-size", "sasrec", "SASRec", "gmc, the papers' T5", "sasrec")],
                        domains=["average"], decides=False, optional=True,
                        note="context only until its three seeds have run: the CPU recipes' T5 is 2+2 layers; "
                             "the T5 of this size costs ~8 CPU-hours a seed (docs/benchmarks.md, \"The papers' T5 "
                             "on both sides\")"),
            SettingSpec("scientific", "", "Scientific alone, one seed", GMC_PAIRS, domains=["Scientific"], decides=False,
                        note="context only: with one domain gmc and tiger are the same model (section scientific); "
                             "GMC's claim is about training on several domains at once"),
        ]),
    ClaimSpec(
        paper="GMC, Table 4 ablation",
        claim="“all the designs in GMC can improve the recommendation performance” (§5.3, Table 4: GMC 6–34 % better "
              "than (1) w/o sharable codebook, item identifiers learned per domain, and 3–49 % better than (2) w/o "
              "unified recommender, one recommender per domain on GMC's shared identifiers)",
        tested="gmc > each variant on the user-weighted average NDCG@10 of the multi-domain benchmark, paired by seed: "
               "(1) one RQ-VAE per domain (`shared_codebooks=false`, unified T5 and LoRA kept); (2) gmc's shared "
               "identifier with one T5 per domain (`transfer.name=single-domain`)",
        roles=[SHARED_OFF_ROLE, UNIFIED_OFF_ROLE],
        settings=[SettingSpec("generative", "", "multi-domain benchmark (Scientific, Arts, Office, Microlens)",
                              GMC_ABLATION_PAIRS, domains=["average"])]),
]


# ============================================================================ reading the records
def normalize(record: dict) -> dict:
    """Rows of records written by benchmark scripts carry ``recipe`` and no ``key``/``setting``."""
    for row in record.get("rows", []):
        row.setdefault("key", row.get("recipe"))
        row.setdefault("setting", "")
    return record


def load_records(root: Path = RESULTS_DIR) -> dict[str, dict]:
    records = {}
    for path in sorted(Path(root).glob("*.json")):
        data = normalize(json.loads(path.read_text(encoding="utf-8")))
        records[data.get("section", path.stem)] = data
    return records


def find_rows(record: dict | None, setting: str, key: str) -> list[dict]:
    if not record:
        return []
    return [r for r in record.get("rows", []) if r.get("setting", "") == setting and r.get("key") == key]


def generative_pending(record: dict | None, recipes: list[str] | None = None) -> str | None:
    """Why the seeded multi-domain benchmark cannot decide yet on ``recipes`` (default: every recipe the record
    planned), or None when each of their planned runs finished."""
    if record is None:
        return "runs not finished (benchmarks/results/generative.json not written yet)"
    args = record.get("args") or {}
    rows = record.get("rows") or []
    if args.get("profile") == "smoke":
        return "smoke profile: not a measurement"
    seeds = args.get("seeds") or sorted({r.get("seed") for r in rows})
    planned_recipes = args.get("only") or ["gmc", "tiger", "sasrec"]  # records before the ablation had no "only"
    wanted = list(dict.fromkeys(recipes or planned_recipes))
    absent = [r for r in wanted if r not in planned_recipes]
    if absent:
        return f"not run: {', '.join(absent)} not among the benchmark's recipes"
    done = {(r.get("recipe", r.get("key")), r.get("seed")) for r in rows}
    planned = [(rc, s) for rc in wanted for s in seeds]
    missing = [p for p in planned if p not in done]
    if missing or not planned:
        return f"runs not finished ({len(planned) - len(missing)} of {len(planned)} runs)"
    return None


def evaluate(spec: ClaimSpec, records: dict[str, dict]) -> tuple[list[SettingResult], str, str]:
    results = []
    for s in spec.active(records):
        record = records.get(s.section)
        comparisons, used = [], []
        for p in s.pairs:
            a_rows = find_rows(record, s.setting, p.method)
            b_rec = records.get(p.baseline_section) if p.baseline_section else record
            b_rows = find_rows(b_rec, p.baseline_setting if p.baseline_section else s.setting, p.baseline)
            if not a_rows or not b_rows:
                continue
            for section, rows in ((s.section, a_rows), (p.baseline_section or s.section, b_rows)):
                used += [(section, r) for r in rows if not any(r is x for _, x in used)]
            domains = s.domains or [d for d in a_rows[0].get("test", {}) if d != "average"]
            for d in domains:
                comparisons.append(compare(a_rows, b_rows, d, s.metric, method=p.a_name, baseline=p.b_name,
                                           role=p.role))
        pending = (generative_pending(record, [k for p in s.pairs for k in (p.method, p.baseline)])
                   if s.section == "generative" else None)
        if pending is None and (record or {}).get("smoke"):  # a script's --smoke record: checks code, measures nothing
            pending = "smoke run (1 epoch per stage): not a measurement"
        settings_meta = ((record or {}).get("settings") or {}).get(s.setting) or {}
        if record is None and pending is None:
            outcome, reason, blocks = NOT_DECIDED, f"no record benchmarks/results/{s.section}.json", False
        else:
            outcome, reason, blocks = judge_setting(comparisons, spec.roles, pending=pending,
                                                    not_measurable=settings_meta.get("not_measurable")
                                                    or (record or {}).get("not_measurable"))
        results.append(SettingResult(s.label, s.section, s.decides, outcome, reason, blocks, comparisons, s.note, used))
    verdict, reason = judge_claim(results)
    return results, verdict, reason


# ============================================================================ rendering
def github_anchor(heading: str) -> str:
    text = re.sub(r"[`*]", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def section_anchors(doc: str) -> tuple[dict[str, str], set[str]]:
    """(section name -> anchor of its first ``##`` heading, every heading anchor of the page)."""
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    by_section: dict[str, str] = {}
    current: str | None = None
    fence = False
    for line in doc.splitlines():
        m = re.match(r"<!-- ([\w.-]+):(start|end) -->", line.strip())
        if m:
            current = m.group(1) if m.group(2) == "start" else None
            continue
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        h = None if fence else re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if not h:
            continue
        base = github_anchor(h.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        anchor = base if n == 0 else f"{base}-{n}"
        anchors.add(anchor)
        if current and current not in by_section and h.group(1) == "##":
            by_section[current] = anchor
    return by_section, anchors


def fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def machine_text(record: dict) -> str:
    m = record.get("machine") or {}
    if isinstance(m, str):
        return m
    parts = [m.get("cpu") or "?"]
    if m.get("cores"):
        parts.append(f"{m['cores']} cores")
    parts.append("CUDA" if m.get("cuda") else "CPU only, no GPU")
    if m.get("threads"):
        parts.append(f"{m['threads']} thread{'s' if m['threads'] > 1 else ''} per run")
    if m.get("at_a_time"):
        parts.append("one run at a time" if m["at_a_time"] == 1 else f"{m['at_a_time']} runs at a time")
    return ", ".join(parts)


def when_text(record: dict) -> str:
    if record.get("when"):
        return record["when"].rstrip(". ")
    rows = record.get("rows") or []
    starts = [r["started"] for r in rows if r.get("started")]
    ends = [r["finished"] for r in rows if r.get("finished")]
    if starts and ends:
        return f"{min(starts)[:16].replace('T', ' ')} – {max(ends)[:16].replace('T', ' ')}"
    return "–"


def load_text(record: dict, loads: list[float]) -> str:
    if loads:
        lo, hi = min(loads), max(loads)
        return f"1-min load {lo:.1f}" + ("" if f"{lo:.1f}" == f"{hi:.1f}" else f"–{hi:.1f}") + " (mean per run)"
    load = record.get("load") or {}
    if isinstance(load, dict) and load.get("mean_1min") is not None:
        return f"1-min load mean {load['mean_1min']:.1f}, max {load.get('max_1min', float('nan')):.1f} (over the runs)"
    return "load not recorded"


def measured_text(result: SettingResult) -> str:
    if not result.comparisons:
        return f"{result.label}: no finished runs"
    seeds = max(c.seeds for c in result.comparisons)
    per_domain: dict[str, dict[str, str]] = {}
    for c in result.comparisons:
        cell = per_domain.setdefault(c.domain, {})
        for name, value, sd in ((c.method, c.a, c.a_std), (c.baseline, c.b, c.b_std)):
            cell.setdefault(name, fmt(value) + (f" ± {sd:.4f}" if sd is not None else ""))
    metric = result.comparisons[0].metric.replace("ndcg", "NDCG").replace("recall", "Recall")
    parts = [f"{d}: " + ", ".join(f"{n} {v}" for n, v in cell.items()) for d, cell in per_domain.items()]
    if seeds > 1:
        how = f"mean ± std over {seeds} seeds"
        if any(" ± " not in value for cell in per_domain.values() for value in cell.values()):
            how += "; one seed where no ± is shown"  # a row that has one seed so far, beside seeded pairs
    elif any(sd is not None for c in result.comparisons for sd in (c.a_std, c.b_std)):
        # a one-seed row beside a baseline that has its seeds: say which number is which
        how = "one seed; mean ± std over seeds where ± is shown"
    else:
        how = "one seed"
    return f"*{result.label}* ({metric}, {how}): " + "; ".join(parts)


def protocol_text(records: dict, spec: ClaimSpec) -> list[str]:
    out = []
    for s in spec.active(records):
        record = records.get(s.section) or {}
        meta = (record.get("settings") or {}).get(s.setting) or {}
        text = meta.get("protocol") or record.get("protocol") or s.protocol
        if s.section == "generative" and not text:
            text = ("the multi-domain benchmark of `benchmarks/generative.py` (Scientific, Arts, Office, Microlens), "
                    "leave-one-out, full ranking (beam search for gmc and tiger), user-weighted average NDCG@10, "
                    "3 seeds, each recipe trained to early stopping")
        if text and text not in out:
            out.append(text)
    return out


def claim_sections(spec: ClaimSpec, records: dict[str, dict]) -> list[str]:
    names = []
    for s in spec.active(records):
        for name in [s.section] + [p.baseline_section for p in s.pairs if p.baseline_section]:
            if name not in names:
                names.append(name)
    return names


def hardware_note(records: dict[str, dict]) -> str:
    machines = [r["machine"] for spec in CLAIMS for n in claim_sections(spec, records) if n in records
                for r in [records[n]] if isinstance(r.get("machine"), dict)]
    if not machines:
        return ""
    cores = sorted({m.get("cores") for m in machines if m.get("cores")})
    cpus = sorted({m.get("cpu") for m in machines if m.get("cpu")})
    where = (f"{', '.join(cpus)} " if cpus else "") + (f"{cores[0]}-core CPUs" if len(cores) == 1 else "CPUs")
    gpu = "with CUDA for some" if any(m.get("cuda") for m in machines) else "without a GPU"
    return f"Every number below was measured on {where}, {gpu} (machine, dates and load per section in the table)."


def render(records: dict[str, dict], doc: str) -> str:
    """The body of the ``claims`` block (markdown), computed from ``records`` and the page's headings."""
    anchors, _ = section_anchors(doc)
    head = [
        "## Claims of the five papers, against the numbers measured here",
        "",
        "Generated by `python benchmarks/claims.py` from the section records in `benchmarks/results/` (nothing "
        "retrained); each claim is quoted from its paper, each verdict computed. **Rules:** a comparison counts only "
        "when both sides trained to early stopping (a run with a stage whose best epoch is its last, at the epoch cap, "
        "is *capped* and decides nothing; so is a stage that ran its whole cap with no best epoch recorded; a round "
        "of a longer schedule that a later stage continues, such as IDGenRec's alternate rounds before the last, is "
        "never capped, its length being the method's); a "
        "difference counts only beyond two standard errors — paired by seed when there are seeds, and with one seed "
        "√(se_a² + se_b²) with each se the per-user bound √(N(1−N)/n) of that NDCG over its n test users; the "
        "strongest baseline, SASRec with cross-entropy over all items, must be beaten for a claim to hold, and "
        "losing beyond 2 SE to any SASRec refutes it. *held*: every required comparison beyond 2 SE in the claim's "
        "direction; *not held*: one reversed beyond 2 SE; *not decided*: anything else. " + hardware_note(records),
        "",
        "| paper | headline claim (paper's words) | measured here | protocol | machine · when · load | verdict | section |",
        "|---|---|---|---|---|---|---|",
    ]
    details = ["", "### The comparisons behind each verdict", ""]
    for spec in CLAIMS:
        results, verdict, reason = evaluate(spec, records)
        measured = [measured_text(r) + ("" if r.decides else " (context, decides nothing)") for r in results]
        sections = claim_sections(spec, records)
        machines = []
        for name in sections:
            record = records.get(name)
            if record is None:
                machines.append(f"{name}: runs in progress, no record yet")
                continue
            loads = [row["load"]["mean_1min"] for r in results for sec, row in r.rows_used if sec == name
                     and isinstance(row.get("load"), dict) and row["load"].get("mean_1min") is not None]
            machines.append(f"{name}: {machine_text(record)}; {when_text(record)}; {load_text(record, loads)}")
        links = ", ".join(f"[{n}](#{anchors[n]})" if n in anchors else n for n in sections)
        cells = [f"**{spec.paper}**", spec.claim, "<br>".join(m.replace("|", "\\|") for m in measured),
                 "<br>".join(p.replace("|", "\\|") for p in [f"Tested as: {spec.tested}."] + protocol_text(records, spec)),
                 "<br>".join(m.replace("|", "\\|") for m in machines),
                 f"**{verdict}** — {reason}".replace("|", "\\|"), links]
        head.append("| " + " | ".join(c.replace("\n", " ") for c in cells) + " |")
        details.append(f"- **{spec.paper}: {verdict}.**")
        for r in results:
            tag = "" if r.decides else " — context, decides nothing"
            details.append(f"  - *{r.label}* (section `{r.section}`){tag}: {r.outcome} — {r.reason}"
                           + (f" ({r.note})" if r.note else ""))
            for c in r.comparisons:
                word = {"held": "beyond 2 SE", "reversed": "reversed beyond 2 SE", "within": "within 2 SE",
                        "capped": "decides nothing: " + "; ".join(c.capped)}[c.outcome]
                strong = "" if c.strongest else " (weaker baseline)"
                details.append(f"    - {c.method} − {c.baseline}{strong}, {c.domain} {c.metric}: {fmt(c.a)} − {fmt(c.b)} = "
                               f"{c.diff:+.4f}; 2 SE = {2 * c.se:.4f} ({c.how}; z = {c.z:+.1f}) → {word}")
            for caveat in dict.fromkeys(x for c in r.comparisons for x in c.caveats):
                details.append(f"    - caveat: {caveat}")
    return "\n".join(head + details) + "\n"


def insert_block(text: str, body: str) -> str:
    """Replace the ``claims`` block, or insert it before the first section block (after the intro)."""
    start, end = f"<!-- {BLOCK}:start -->", f"<!-- {BLOCK}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text and text.index(start) < text.index(end):
        a, b = text.index(start), text.index(end) + len(end)
        return text[:a] + block + text[b:]
    m = re.search(r"^<!-- [\w.-]+:start -->", text, re.M)
    if m:
        return text[:m.start()] + block + "\n\n" + text[m.start():]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def write_block(path: Path, body: str) -> None:
    """Re-read ``path`` right before writing and replace it atomically (other scripts rewrite their own
    sections of the same file through ``benchkit.write_section``)."""
    block = f"<!-- {BLOCK}:start -->\n{body.strip()}\n<!-- {BLOCK}:end -->"
    for _ in range(3):
        text = path.read_text(encoding="utf-8")
        tmp = path.with_name(f".{path.name}.{BLOCK}.{os.getpid()}.tmp")
        tmp.write_text(insert_block(text, body), encoding="utf-8")
        tmp.replace(path)
        time.sleep(1.0)  # a concurrent write_section that read the file before ours would drop the block: check
        if block in path.read_text(encoding="utf-8"):
            return
    raise SystemExit(f"{path}: the {BLOCK} block was overwritten three times by concurrent writers; run again")


# ============================================================================ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extract", nargs="*", metavar="SECTION",
                        help="write the section records from docs/benchmarks.md first (all, or the named ones)")
    parser.add_argument("--print", dest="print_only", action="store_true", help="print the block, write nothing")
    parser.add_argument("--doc", type=Path, default=BENCHMARKS_MD)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.extract is not None:
        from claims_extract import extract

        extract(args.doc, args.results, args.extract or None)
    body = render(load_records(args.results), args.doc.read_text(encoding="utf-8"))
    if not args.print_only:
        write_block(args.doc, body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
