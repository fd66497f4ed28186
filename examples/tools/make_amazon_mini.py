"""Build the bundled ``amazon-mini`` dataset from the shared evaluation datasets.

    python examples/tools/make_amazon_mini.py /path/to/shared/datasets [--out examples/data/amazon-mini]

Takes a seeded random sample of users from

* ``Scientific/lcrec`` (LC-Rec JSON): the sampled users' full sequences; only the items they use
  are kept and re-indexed 0..n-1 in the order of their original index; users are re-indexed
  0..n-1 in the order of their original index; item descriptions are shortened to
  ``--max-description`` characters (at a word boundary, ending in an ellipsis) to keep the bundle
  small -- titles, brands and categories are unchanged;
* ``ArtsOffice`` (C2DSR / URLLM text files): the sampled users' two lines each, kept in the split
  file they come from (train / valid / test) with their original user index; the two item lists
  keep only the items these users use, with their original rows (``idAfter`` unchanged, so an
  item's domain is still given by the list that holds it).

The output is deterministic for a given seed and input.  Only the standard library is used.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
from pathlib import Path

SEED = 20240607
N_SCIENTIFIC = 1500
N_ARTSOFFICE = 1400
MAX_DESCRIPTION = 160  # characters of an item description kept (keeps the bundle under 5 MB)
SPLIT_FILES = ("train_F2.txt", "valid_F2.txt", "test_F2.txt")
ITEM_LISTS = ("item_listA_F.csv", "item_listO_AA_F.csv")


def _write_json_object(path: Path, obj: dict) -> None:
    """One entry per line: valid JSON, compact and diff-friendly."""
    lines = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in obj.items()]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")


def _shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, marked with an ellipsis."""
    if limit <= 0 or len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,.;:")
    return cut + "…"


def make_scientific(src: Path, out: Path, rng: random.Random, n_users: int, max_description: int) -> dict:
    inter = json.loads((src / "Scientific.inter.json").read_text(encoding="utf-8"))
    items = json.loads((src / "Scientific.item.json").read_text(encoding="utf-8"))
    users = sorted(inter, key=int)
    chosen = sorted(rng.sample(users, n_users), key=int)
    used = sorted({i for u in chosen for i in inter[u]})
    new_id = {old: new for new, old in enumerate(used)}
    out.mkdir(parents=True, exist_ok=True)
    _write_json_object(out / "Scientific.inter.json", {str(n): [new_id[i] for i in inter[u]] for n, u in enumerate(chosen)})
    table = {}
    for i in used:
        entry = dict(items[str(i)])
        entry["description"] = _shorten(entry.get("description", ""), max_description)
        table[str(new_id[i])] = entry
    _write_json_object(out / "Scientific.item.json", table)
    return {"users": len(chosen), "items": len(used), "interactions": sum(len(inter[u]) for u in chosen)}


def make_artsoffice(src: Path, out: Path, rng: random.Random, n_users: int) -> dict:
    lines_of: dict[str, list[tuple[str, str]]] = {}  # user -> [(split file, line)]
    for name in SPLIT_FILES:
        with open(src / name, encoding="utf-8", newline="") as fh:
            for line in fh:
                if line.strip():
                    lines_of.setdefault(line.split("\t", 1)[0], []).append((name, line))
    users = sorted(lines_of, key=int)
    chosen = set(rng.sample(users, n_users))
    used: set[str] = set()
    out.mkdir(parents=True, exist_ok=True)
    per_split = {}
    for name in SPLIT_FILES:
        kept = [line for u in users if u in chosen for f, line in lines_of[u] if f == name]
        for line in kept:
            used.update(el.split("|", 1)[0] for el in line.rstrip("\n").rstrip("\t").split("\t")[2:])
        with open(out / name, "w", encoding="utf-8", newline="") as fh:
            fh.writelines(kept)
        per_split[name] = len(kept) // 2
    for name in ITEM_LISTS:
        with open(src / name, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(rows[0])
        writer.writerows(r for r in rows[1:] if r[2] in used)
        (out / name).write_text(buf.getvalue(), encoding="utf-8")
    return {"users": len(chosen), "items": len(used), "users_per_split": per_split}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", type=Path, help="the shared datasets folder (holding Scientific/ and ArtsOffice/)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "amazon-mini")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scientific-users", type=int, default=N_SCIENTIFIC)
    parser.add_argument("--artsoffice-users", type=int, default=N_ARTSOFFICE)
    parser.add_argument("--max-description", type=int, default=MAX_DESCRIPTION, help="0 keeps descriptions whole")
    args = parser.parse_args(argv)
    # one generator per source (string seeds are hashed deterministically), so that changing one
    # sample size leaves the other sample unchanged
    sci = make_scientific(
        args.datasets / "Scientific" / "lcrec",
        args.out / "scientific",
        random.Random(f"{args.seed}-scientific"),
        args.scientific_users,
        args.max_description,
    )
    ao = make_artsoffice(
        args.datasets / "ArtsOffice",
        args.out / "artsoffice",
        random.Random(f"{args.seed}-artsoffice"),
        args.artsoffice_users,
    )
    print(json.dumps({"seed": args.seed, "scientific": sci, "artsoffice": ao}, indent=2))


if __name__ == "__main__":
    main()
