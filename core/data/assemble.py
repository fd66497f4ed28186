"""Turn imported sources into one :class:`MultiDomainDataset`: ids, k-core, split, item text."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from mtrec.data.formats import ImportedSource
from mtrec.data.model import TEST, TRAIN, VALID, MultiDomainDataset
from mtrec.data.spec import DatasetSpec
from mtrec.errors import DataError

MIN_EVAL_LEN = 3  # a (user, domain) sequence needs a training item, a validation and a test target


def assemble(spec: DatasetSpec, sources: list[tuple[str, ImportedSource]]) -> MultiDomainDataset:
    """Merge ``(source label, imported source)`` pairs as ``spec`` says.

    Users of sources marked ``users: own`` are namespaced by source so that equal raw ids in
    different files never become one person; ``users: shared`` keeps raw ids global.
    """
    items: dict[str, dict[str, dict[str, str]]] = {}
    sequences: dict[str, list[tuple[str, str]]] = {}
    roles: dict[str, list[int]] = {}
    for (label, source), source_spec in zip(sources, spec.sources):
        rename = source_spec.domains
        for domain, table in source.items.items():
            if rename is not None and domain not in rename:
                continue
            target = items.setdefault(rename[domain] if rename else domain, {})
            for raw, fields in table.items():
                target.setdefault(raw, fields)
        if spec.split == "shipped" and source.roles is None:
            raise DataError(
                f"split: shipped, but source {label} (format {source_spec.format}) ships no split; "
                "use split: leave-one-out"
            )
        for user, seq in source.sequences.items():
            key = user if source_spec.users == "shared" else f"{label}#{user}"
            kept, kept_roles = [], []
            user_roles = source.roles.get(user) if source.roles is not None else None
            for pos, (domain, raw) in enumerate(seq):
                if rename is not None:
                    if domain not in rename:
                        continue
                    domain = rename[domain]
                if raw not in items.get(domain, {}):
                    raise DataError(
                        f"user {user!r} interacts with item {raw!r}, which is not in the item table "
                        f"of domain {domain!r}",
                        path=label,
                    )
                kept.append((domain, raw))
                kept_roles.append(user_roles[pos] if user_roles is not None else TRAIN)
            if kept:
                sequences.setdefault(key, []).extend(kept)
                roles.setdefault(key, []).extend(kept_roles)
    if not sequences:
        raise DataError("the dataset has no interactions", path=spec.name)

    if spec.split_users_by_domain:
        sequences, roles = split_users_by_domain(sequences, roles)
    if spec.max_items_per_user:
        _keep_recent(sequences, roles, spec.max_items_per_user)
    if spec.kcore > 1:
        _kcore(sequences, roles, spec.kcore)

    used = defaultdict(set)
    for seq in sequences.values():
        for domain, raw in seq:
            used[domain].add(raw)
    domains = [d for d in items if used.get(d)]
    empty = [d for d in items if not used.get(d)]
    if empty:
        raise DataError(
            f"domain(s) {', '.join(empty)} have no interactions left"
            + (f" after {spec.kcore}-core filtering" if spec.kcore > 1 else "")
        )

    # Global ids: domain by domain, items in catalogue order; 0 is padding.
    item_index: dict[tuple[str, str], int] = {}
    item_domain = [-1]
    item_raw = [""]
    field_names: list[str] = []
    for d, domain in enumerate(domains):
        for raw, fields in items[domain].items():
            if raw in used[domain]:
                item_index[(domain, raw)] = len(item_raw)
                item_domain.append(d)
                item_raw.append(raw)
                for name in fields:
                    if name not in field_names:
                        field_names.append(name)
    item_fields = {name: [""] * len(item_raw) for name in field_names}
    for (domain, raw), idx in item_index.items():
        for name, value in items[domain][raw].items():
            item_fields[name][idx] = "" if value is None else str(value).strip()
    item_text = [_assemble_text(item_fields, i, spec.text_fields) for i in range(len(item_raw))]

    users = list(sequences)
    lengths = np.array([len(sequences[u]) for u in users], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    inter_item = np.fromiter(
        (item_index[x] for u in users for x in sequences[u]), dtype=np.int64, count=int(offsets[-1])
    )
    if spec.split == "shipped":
        inter_role = np.fromiter((r for u in users for r in roles[u]), dtype=np.int8, count=int(offsets[-1]))
    else:
        inter_role = leave_one_out_roles(offsets, np.asarray(item_domain, dtype=np.int64)[inter_item])

    dataset = MultiDomainDataset(
        name=spec.name,
        domains=domains,
        item_domain=np.asarray(item_domain, dtype=np.int64),
        item_raw_id=item_raw,
        item_fields=item_fields,
        item_text=item_text,
        user_raw_id=users,
        user_offsets=offsets,
        inter_item=inter_item,
        inter_role=inter_role,
    )
    no_eval = [
        dataset.domains[d]
        for d in range(len(domains))
        if not np.any((dataset.inter_domain == d) & (inter_role == TEST))
    ]
    if no_eval:
        raise DataError(
            f"domain(s) {', '.join(no_eval)} have no test targets: every user's sequence there is "
            f"shorter than {MIN_EVAL_LEN} interactions (one to train on, one to validate, one to test)",
            path=spec.name,
        )
    return dataset


def leave_one_out_roles(offsets: np.ndarray, inter_domain: np.ndarray) -> np.ndarray:
    """Per (user, domain): last interaction TEST, second-to-last VALID, the rest TRAIN.

    Sequences shorter than :data:`MIN_EVAL_LEN` in a domain stay training data only.
    """
    roles = np.zeros(inter_domain.shape[0], dtype=np.int8)
    n_users = offsets.shape[0] - 1
    user = np.repeat(np.arange(n_users), np.diff(offsets))
    # Sort stably by (user, domain): positions within each group stay chronological.
    order = np.lexsort((np.arange(user.size), inter_domain, user))
    key_user, key_dom = user[order], inter_domain[order]
    boundary = np.ones(order.size, dtype=bool)
    boundary[1:] = (key_user[1:] != key_user[:-1]) | (key_dom[1:] != key_dom[:-1])
    group = np.cumsum(boundary) - 1
    group_size = np.bincount(group)
    group_end = np.cumsum(group_size)  # exclusive end of each group in sorted order
    pos_from_end = group_end[group] - 1 - np.arange(order.size)
    eligible = group_size[group] >= MIN_EVAL_LEN
    sorted_roles = np.where(eligible & (pos_from_end == 0), TEST, np.where(eligible & (pos_from_end == 1), VALID, TRAIN))
    roles[order] = sorted_roles
    return roles


def split_users_by_domain(
    sequences: dict[str, list[tuple[str, str]]], roles: dict[str, list[int]]
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[int]]]:
    """One user per (user, domain): ``USER@DOMAIN`` keeps that domain's interactions in order.

    Per-domain leave-one-out and shipped roles are unchanged (both are per interaction), so the
    variant differs from the original only in that no user links two domains.
    """
    out_seq: dict[str, list[tuple[str, str]]] = {}
    out_roles: dict[str, list[int]] = {}
    for user, seq in sequences.items():
        for (domain, raw), role in zip(seq, roles[user]):
            key = f"{user}@{domain}"
            out_seq.setdefault(key, []).append((domain, raw))
            out_roles.setdefault(key, []).append(role)
    return out_seq, out_roles


def _assemble_text(fields: dict[str, list[str]], idx: int, names: list[str]) -> str:
    if idx == 0:
        return ""
    parts = [f"{name}: {fields[name][idx]}" for name in names if name in fields and fields[name][idx]]
    if not parts:  # fall back to whatever text the item has
        parts = [f"{name}: {vals[idx]}" for name, vals in fields.items() if vals[idx]]
    return "; ".join(parts)


def _keep_recent(sequences: dict, roles: dict, n: int) -> None:
    for user, seq in sequences.items():
        per_domain: dict[str, int] = Counter(d for d, _ in seq)
        if all(c <= n for c in per_domain.values()):
            continue
        drop = {d: c - n for d, c in per_domain.items() if c > n}
        keep = []
        for i, (domain, _) in enumerate(seq):
            if drop.get(domain, 0) > 0:
                drop[domain] -= 1
            else:
                keep.append(i)
        sequences[user] = [seq[i] for i in keep]
        roles[user] = [roles[user][i] for i in keep]


def _kcore(sequences: dict, roles: dict, k: int) -> None:
    """Iteratively drop items with < k users and (user, domain) sequences with < k items."""
    while True:
        item_count = Counter(x for seq in sequences.values() for x in set(seq))  # distinct users
        changed = False
        for user in list(sequences):
            seq = sequences[user]
            keep = [i for i, x in enumerate(seq) if item_count[x] >= k]
            per_domain = Counter(seq[i][0] for i in keep)
            keep = [i for i in keep if per_domain[seq[i][0]] >= k]
            if len(keep) != len(seq):
                changed = True
                if keep:
                    sequences[user] = [seq[i] for i in keep]
                    roles[user] = [roles[user][i] for i in keep]
                else:
                    del sequences[user]
                    del roles[user]
        if not changed:
            return
