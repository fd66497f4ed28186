"""The in-memory multi-domain dataset every component reads.

Layout, chosen so that views and batches are numpy slices rather than Python loops:

* items carry a global index ``1..n_items``; index 0 is padding and belongs to no domain;
* every item belongs to exactly one domain (``item_domain``);
* interactions are stored per user in chronological, cross-domain order, CSR style
  (``user_offsets`` into ``inter_item`` / ``inter_role``), so a user's cross-domain sequence is
  ``inter_item[user_offsets[u]:user_offsets[u+1]]`` and the single-domain view is that slice
  filtered by ``item_domain``;
* ``inter_role`` marks each interaction as a training item, a validation target or a test target.
  Leave-one-out sets it per (user, domain); a dataset's shipped split sets it from its files.

Users may or may not overlap across domains; nothing here assumes either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

TRAIN, VALID, TEST = 0, 1, 2
ROLE_NAMES = {TRAIN: "train", VALID: "valid", TEST: "test"}
SPLIT_ROLES = {"valid": VALID, "test": TEST}


@dataclass
class MultiDomainDataset:
    name: str
    domains: list[str]
    item_domain: np.ndarray  # int64 [n_items + 1]; -1 at the padding index 0
    item_raw_id: list[str]  # [n_items + 1]; "" at 0
    item_fields: dict[str, list[str]]  # field -> [n_items + 1] strings ("" where missing)
    item_text: list[str]  # assembled text per item, [n_items + 1]
    user_raw_id: list[str]  # [n_users]
    user_offsets: np.ndarray  # int64 [n_users + 1]
    inter_item: np.ndarray  # int64 [n_interactions]
    inter_role: np.ndarray  # int8 [n_interactions]
    fingerprint: str = ""
    spec: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ sizes
    @property
    def n_items(self) -> int:
        return len(self.item_domain) - 1

    @property
    def n_users(self) -> int:
        return len(self.user_offsets) - 1

    @property
    def n_interactions(self) -> int:
        return int(self.inter_item.shape[0])

    def domain_index(self, name: str) -> int:
        try:
            return self.domains.index(name)
        except ValueError:
            from mtrec.errors import ConfigError

            raise ConfigError(
                f"unknown domain {name!r}; this dataset has: {', '.join(self.domains)}"
            ) from None

    # ------------------------------------------------------------------ items
    @cached_property
    def domain_items(self) -> list[np.ndarray]:
        """Global item indices of each domain, ascending."""
        return [np.flatnonzero(self.item_domain == d) for d in range(len(self.domains))]

    @cached_property
    def inter_domain(self) -> np.ndarray:
        return self.item_domain[self.inter_item]

    @cached_property
    def inter_user(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_users), np.diff(self.user_offsets))

    def user_sequence(self, user: int) -> np.ndarray:
        return self.inter_item[self.user_offsets[user] : self.user_offsets[user + 1]]

    @cached_property
    def raw_item_lookup(self) -> dict[tuple[str, str], int]:
        """(domain name, raw item id) -> global index."""
        return {
            (self.domains[self.item_domain[i]], self.item_raw_id[i]): i
            for i in range(1, self.n_items + 1)
        }

    # ------------------------------------------------------------------ stats
    def stats(self) -> list[dict]:
        """Per-domain statistics (users with at least one interaction, items, interactions, ...)."""
        rows = []
        dom = self.inter_domain
        for d, name in enumerate(self.domains):
            mask = dom == d
            users = np.unique(self.inter_user[mask])
            n_inter = int(mask.sum())
            rows.append(
                {
                    "domain": name,
                    "users": int(users.size),
                    "items": int(self.domain_items[d].size),
                    "interactions": n_inter,
                    "avg_seq_len": round(n_inter / max(users.size, 1), 2),
                    "valid_targets": int((mask & (self.inter_role == VALID)).sum()),
                    "test_targets": int((mask & (self.inter_role == TEST)).sum()),
                    "density": round(n_inter / max(users.size * self.domain_items[d].size, 1), 6),
                }
            )
        return rows

    # ------------------------------------------------------------------ persistence
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "item_domain": self.item_domain,
            "user_offsets": self.user_offsets,
            "inter_item": self.inter_item,
            "inter_role": self.inter_role,
        }

    def to_meta(self) -> dict:
        return {
            "name": self.name,
            "domains": self.domains,
            "item_raw_id": self.item_raw_id,
            "item_fields": self.item_fields,
            "item_text": self.item_text,
            "user_raw_id": self.user_raw_id,
            "fingerprint": self.fingerprint,
            "spec": self.spec,
        }

    @classmethod
    def from_parts(cls, arrays: dict[str, np.ndarray], meta: dict) -> "MultiDomainDataset":
        return cls(
            name=meta["name"],
            domains=list(meta["domains"]),
            item_domain=np.asarray(arrays["item_domain"], dtype=np.int64),
            item_raw_id=list(meta["item_raw_id"]),
            item_fields={k: list(v) for k, v in meta["item_fields"].items()},
            item_text=list(meta["item_text"]),
            user_raw_id=list(meta["user_raw_id"]),
            user_offsets=np.asarray(arrays["user_offsets"], dtype=np.int64),
            inter_item=np.asarray(arrays["inter_item"], dtype=np.int64),
            inter_role=np.asarray(arrays["inter_role"], dtype=np.int8),
            fingerprint=meta.get("fingerprint", ""),
            spec=meta.get("spec", {}),
        )
