"""``trie-beam``: constrained beam search over the target domain's identifier prefix trie.

Each domain's trie is built once from ``identifier.domain_tokens(run, d)`` (``[n_d, L]`` rows,
unique within the domain) and cached per device (rebuilt when the identifier's ``version``
changes).  Level ``l`` of the trie stores, for every node (a distinct prefix of length ``l``), its
children as tensors, so a decoding step is a gather, never a Python loop over users or beams:

* ``padded`` layout: ``tokens[node, j]`` / ``child[node, j]`` (``-1`` past the node's degree), a
  ``[n_nodes, max_degree]`` table -- one gather gives every beam's allowed tokens.  Never larger
  than a dense ``[n_nodes, vocabulary]`` table, usually far smaller (atomic ids: one root row of
  ``n_d`` tokens; semantic ids: at most ``N`` children per node).
* ``sparse`` layout (CSR: offsets + edge arrays) for levels whose degrees are very uneven
  (``max_degree`` far above the mean, e.g. long textual ids), where a padded table would be mostly
  padding; the step then expands each beam's children with ``repeat_interleave`` and picks each
  user's best ``beam_size`` by a stable sort on (user, score).

Search: ``L`` steps; each keeps, per user, the ``min(beam_size, n_nodes of the next level)`` best
prefixes by summed log-probability (``log_softmax`` over the identifier vocabulary in float32,
then masked to the trie: the HF/TIGER convention, no renormalisation over allowed tokens).
Distinct beams are distinct prefixes, and leaves are items, so the result is ``min(beam_size,
n_d)`` distinct items of the target domain, best first.  With ``beam_size`` below the ``k`` the
evaluation asks for, only ``beam_size`` items come back (the rest count as misses); set
``beam_size >= max(evaluation.ks)``.

Variable-length ids (the model's ``end_token`` is set, e.g. IDGenRec's ``[END]``; see
:mod:`mtrec.builtins.generative`): rows are the id's tokens, then the end token repeated up to
``L``, so the trie walks the padding as a single-child path.  Scoring stops at each id's end: a
hypothesis that has emitted the end token is *finished* and keeps its score unchanged in later
steps (its padding adds 0, exactly as the training loss ignores it), and once every hypothesis
of the batch is finished the model is not run again.  Fixed-length ids (``end_token`` ``None``)
score every position, as before.  Every trie leaf lies at depth ``L`` (rows are ``[n, L]``), so
a hypothesis at a leaf is finished by construction when the search ends.

Candidates: a ``[C]`` tensor must be the domain's whole catalogue (``evaluation.protocol=full``).
A ``[B, C]`` tensor (``protocol=sampled``) is scored exactly instead of searched: each candidate's
teacher-forced log-likelihood ``sum_l log P(c_l | history, c_<l)`` over the positions of the id
(up to and including its end token), returned as scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from mtrec.builtins.generative import id_positions
from mtrec.components import Params, Ranking
from mtrec.errors import ConfigError

if TYPE_CHECKING:
    from mtrec.components import Run

NEG_INF = float("-inf")
FLOOR = -1e30  # log-probabilities are clamped here so a valid token always beats a masked one


class TrieBeamParams(Params):
    beam_size: int = Field(20, ge=1, description="Beams kept per user (GMC: 20); also the length of the returned list.")
    trie_layout: Literal["auto", "padded", "sparse"] = Field(
        "auto", description="Per-level trie tensors: padded child tables, CSR, or chosen by degree skew."
    )
    score_chunk: int = Field(
        1 << 24, ge=1, description="Sampled protocol: largest logits tensor (elements) scored at once."
    )


# --------------------------------------------------------------------------- trie


@dataclass
class TrieLevel:
    """Children of the nodes at one depth.  Token values are identifier tokens."""

    n_nodes: int
    n_children: int  # edges = nodes of the next level
    layout: str  # "padded" | "sparse"
    tokens: torch.Tensor | None = None  # padded: [n_nodes, max_deg], -1 padding
    child: torch.Tensor | None = None  # padded: [n_nodes, max_deg], -1 padding
    offsets: torch.Tensor | None = None  # sparse: [n_nodes + 1]
    edge_tokens: torch.Tensor | None = None  # sparse: [n_children], grouped by parent
    edge_child: torch.Tensor | None = None  # sparse: [n_children]

    def allowed(self, nodes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Allowed tokens and the child they lead to, ``[..., max_deg]`` (``-1`` = none)."""
        if self.layout == "padded":
            return self.tokens[nodes], self.child[nodes]
        degree = self.offsets[1:] - self.offsets[:-1]
        width = int(degree[nodes].max()) if nodes.numel() else 0
        j = torch.arange(width, device=nodes.device)
        edge = self.offsets[nodes].unsqueeze(-1) + j
        ok = j < degree[nodes].unsqueeze(-1)
        edge = torch.where(ok, edge, torch.zeros_like(edge))
        tokens = torch.where(ok, self.edge_tokens[edge], torch.full_like(edge, -1))
        return tokens, torch.where(ok, self.edge_child[edge], torch.full_like(edge, -1))


@dataclass
class PrefixTrie:
    """Prefix trie over ``[n, L]`` token rows; leaf ``i`` of the last level is ``items[i]``."""

    levels: list[TrieLevel]
    leaf_items: torch.Tensor  # [n] global item id of each leaf node
    length: int

    @property
    def n_items(self) -> int:
        return int(self.leaf_items.numel())

    def allowed_tokens(self, prefix: list[int]) -> list[int]:
        """Tokens that may follow ``prefix`` (empty when it leaves the trie); for inspection, not search."""
        node = torch.zeros(1, dtype=torch.long, device=self.leaf_items.device)
        for l, token in enumerate(prefix):
            tokens, child = self.levels[l].allowed(node)
            hit = tokens[0] == token
            if not bool(hit.any()):
                return []
            node = child[0][hit][:1]
        if len(prefix) == self.length:
            return []
        tokens, _ = self.levels[len(prefix)].allowed(node)
        return sorted(t for t in tokens[0].tolist() if t >= 0)

    def to(self, device: torch.device) -> "PrefixTrie":
        def move(level: TrieLevel) -> TrieLevel:
            moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in level.__dict__.items()}
            return TrieLevel(**moved)

        return PrefixTrie([move(l) for l in self.levels], self.leaf_items.to(device), self.length)


def build_trie(tokens: torch.Tensor, items: torch.Tensor, layout: str = "auto") -> PrefixTrie:
    """Build the trie of ``tokens`` ``[n, L]`` (unique rows) whose leaves are ``items`` ``[n]``.

    ``layout`` ``auto`` picks per level: padded when ``n_nodes * max_degree <= max(8 * edges,
    2**20)``, sparse otherwise.
    """
    tokens = torch.as_tensor(tokens).long().cpu()
    items = torch.as_tensor(items).long().cpu()
    if tokens.dim() != 2 or tokens.shape[0] != items.shape[0]:
        raise ValueError(f"build_trie: tokens {tuple(tokens.shape)} and items {tuple(items.shape)} do not align")
    n, length = tokens.shape
    if n == 0 or length == 0:
        raise ValueError("build_trie: no items or zero-length ids")
    if int(tokens.min()) < 0:
        raise ValueError("build_trie: negative token ids")
    base = int(tokens.max()) + 1
    node = torch.zeros(n, dtype=torch.long)  # node id of each row's prefix at the current depth
    n_nodes = 1
    levels: list[TrieLevel] = []
    for l in range(length):
        key = node * base + tokens[:, l]
        unique, inverse = torch.unique(key, return_inverse=True)  # sorted: grouped by parent
        parent, token = unique // base, unique % base
        n_edges = unique.numel()
        degree = torch.bincount(parent, minlength=n_nodes)
        offsets = torch.zeros(n_nodes + 1, dtype=torch.long)
        offsets[1:] = degree.cumsum(0)
        max_deg = int(degree.max())
        use_padded = layout == "padded" or (layout == "auto" and n_nodes * max_deg <= max(8 * n_edges, 1 << 20))
        if use_padded:
            slot = torch.arange(n_edges) - offsets[parent]
            table_tok = torch.full((n_nodes, max_deg), -1, dtype=torch.long)
            table_child = torch.full((n_nodes, max_deg), -1, dtype=torch.long)
            table_tok[parent, slot] = token
            table_child[parent, slot] = torch.arange(n_edges)
            levels.append(TrieLevel(n_nodes, n_edges, "padded", tokens=table_tok, child=table_child))
        else:
            levels.append(TrieLevel(n_nodes, n_edges, "sparse", offsets=offsets, edge_tokens=token,
                                    edge_child=torch.arange(n_edges)))
        node, n_nodes = inverse, n_edges
    if n_nodes != n:
        raise ValueError(f"build_trie: {n - n_nodes} of {n} identifier rows are duplicates; ids must be unique")
    leaf_items = torch.zeros(n, dtype=torch.long)
    leaf_items[node] = items
    return PrefixTrie(levels, leaf_items, length)


# --------------------------------------------------------------------------- search


def _select_topk(scores: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Best ``width`` of each row, best first; ties go to the lower index (deterministic, and
    independent of the batch).  A top-k for the threshold, then a small stable sort: a full
    stable sort of wide rows (an atomic-id root has one column per item) is ~30x slower on CPU."""
    if width >= scores.shape[1]:
        order = torch.sort(scores, dim=1, descending=True, stable=True)
        return order.values, order.indices
    threshold = torch.topk(scores, width, dim=1).values[:, -1:]
    above = scores > threshold
    tied = scores == threshold
    room = width - above.sum(dim=1, keepdim=True)
    keep = above | (tied & (torch.cumsum(tied.to(torch.int32), dim=1) <= room))
    index = keep.nonzero()[:, 1].view(scores.shape[0], width)  # row-major: ascending column per row
    values = scores.gather(1, index)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices
    return values.gather(1, order), index.gather(1, order)


class _LogSoftmax:
    """``log_softmax(logits)`` in float32 (normalised over the whole identifier vocabulary),
    cleaned only where it is read.

    A beam reads a few allowed tokens of each row's ``V``-wide distribution; replacing NaN and
    clamping at ``FLOOR`` (so that a valid token always beats a masked one) over every entry cost
    more than the log-softmax itself on CPU, so both are applied to the gathered values only."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.values = F.log_softmax(logits.float(), dim=-1)  # [R, V]

    @staticmethod
    def _clean(picked: torch.Tensor) -> torch.Tensor:
        return picked.nan_to_num(nan=FLOOR).clamp(min=FLOOR)

    def gather_rows(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[R, D]`` tokens per row -> their log-probabilities ``[R, D]``."""
        return self._clean(self.values.gather(1, tokens))

    def at(self, rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Log-probability of ``tokens[i]`` in row ``rows[i]``."""
        return self._clean(self.values[rows, tokens])


def _end_token(model: nn.Module) -> int | None:
    """The token that ends the model's variable-length ids (``None``: fixed-length ids)."""
    end = getattr(model, "end_token", None)
    return None if end is None else int(end)


def _expand_sparse(level: TrieLevel, beam_node: torch.Tensor, beam_score: torch.Tensor,
                   logp: "_LogSoftmax | None", width: int,
                   finished: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """Sparse step: every beam's children as one flat list, each user's best ``width`` kept.
    ``finished`` ``[B, kc]``: beams past their end token, whose children add nothing to the score
    (``logp`` may then be ``None`` when every beam is finished)."""
    b, kc = beam_node.shape
    nodes = beam_node.flatten()
    degree = (level.offsets[1:] - level.offsets[:-1])[nodes]
    beam_of_edge = torch.repeat_interleave(torch.arange(nodes.numel(), device=nodes.device), degree)
    first = torch.cumsum(degree, 0) - degree
    position = torch.arange(beam_of_edge.numel(), device=nodes.device) - first[beam_of_edge]
    edge = level.offsets[nodes][beam_of_edge] + position
    token, child = level.edge_tokens[edge], level.edge_child[edge]
    if logp is None:
        gain = torch.zeros(beam_of_edge.shape, device=nodes.device)
    else:
        gain = logp.at(beam_of_edge, token)
        if finished is not None:
            gain = gain.masked_fill(finished.flatten()[beam_of_edge], 0.0)
    score = beam_score.flatten()[beam_of_edge] + gain
    user = beam_of_edge // kc
    order = torch.sort(score, descending=True, stable=True).indices
    order = order[torch.sort(user[order], stable=True).indices]  # by user, best first within a user
    per_user = torch.bincount(user, minlength=b)
    start = torch.cumsum(per_user, 0) - per_user
    rank = torch.arange(order.numel(), device=nodes.device) - start[user[order]]
    keep = rank < width
    picked = torch.zeros(b, width, dtype=torch.long, device=nodes.device)
    picked[user[order][keep], rank[keep]] = order[keep]
    src_beam = beam_of_edge[picked] - torch.arange(b, device=nodes.device).unsqueeze(1) * kc
    return score[picked], src_beam, token[picked], child[picked]


def beam_search(model: nn.Module, batch: dict[str, torch.Tensor], trie: PrefixTrie,
                beam_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Constrained beam search for a batch: ``(items [B, K], scores [B, K])`` best first,
    ``K = min(beam_size, trie.n_items)``.  Loops over the ``L`` decoding steps only.  With the
    model's ``end_token`` set, a beam that has emitted it keeps its score (module docstring)."""
    state = model.encode(batch)
    b = batch["domain"].shape[0]
    device = trie.leaf_items.device
    end = _end_token(model)
    beam_node = torch.zeros(b, 1, dtype=torch.long, device=device)
    beam_score = torch.zeros(b, 1, device=device)
    finished = torch.zeros(b, 1, dtype=torch.bool, device=device)  # emitted the end token
    prefix = torch.zeros(b, 1, 0, dtype=torch.long, device=device)
    for l, level in enumerate(trie.levels):
        kc = beam_node.shape[1]
        all_done = end is not None and bool(finished.all())
        logp = None
        if not all_done:  # once every beam is finished, the rest is their padding: no model call
            logits, state = model.step(state, prefix.reshape(b * kc, l))
            logp = _LogSoftmax(logits)  # [B*kc, V], read only at the trie's allowed tokens
        width = min(beam_size, level.n_children)
        if level.layout == "padded":
            tokens, child = level.allowed(beam_node)  # [B, kc, D]
            d = tokens.shape[2]
            if logp is None:
                lp = torch.zeros(tokens.shape, device=device)
            else:
                lp = logp.gather_rows(tokens.clamp(min=0).view(b * kc, d)).view(b, kc, d)
                if end is not None:
                    lp = lp.masked_fill(finished.unsqueeze(2), 0.0)
            cand = (beam_score.unsqueeze(2) + lp).masked_fill(tokens < 0, NEG_INF).view(b, kc * d)
            beam_score, pick = _select_topk(cand, width)
            src_beam = torch.div(pick, d, rounding_mode="floor")
            new_tok = tokens.view(b, kc * d).gather(1, pick)
            beam_node = child.view(b, kc * d).gather(1, pick)
        else:
            beam_score, src_beam, new_tok, beam_node = _expand_sparse(
                level, beam_node, beam_score, logp, width, finished if end is not None else None)
        prefix = torch.cat([prefix.gather(1, src_beam.unsqueeze(2).expand(-1, -1, l)), new_tok.unsqueeze(2)], dim=2)
        if end is not None:
            finished = finished.gather(1, src_beam) | (new_tok == end)
        if l + 1 < trie.length and not all_done:
            rows = (torch.arange(b, device=device).unsqueeze(1) * kc + src_beam).flatten()
            state = model.select_state(state, rows)
    items = trie.leaf_items[beam_node.clamp(min=0)]
    items = torch.where(torch.isfinite(beam_score) & (beam_node >= 0), items, torch.zeros_like(items))
    return items, beam_score


@torch.no_grad()
def score_candidates(model: nn.Module, batch: dict[str, torch.Tensor], candidate_tokens: torch.Tensor,
                     chunk_elements: int = 1 << 24) -> torch.Tensor:
    """Teacher-forced log-likelihood of each candidate: ``[B, C, L]`` tokens -> ``[B, C]`` scores.
    With the model's ``end_token`` set, a candidate's score sums its positions up to and including
    its first end token only (:func:`~mtrec.builtins.generative.id_positions`)."""
    b, c, length = candidate_tokens.shape
    end = _end_token(model)
    state = model.encode(batch)
    out = torch.empty(b, c, device=candidate_tokens.device)
    users_per_chunk, start = 1, 0  # the first user tells the vocabulary size, which sizes the chunks
    while start < b:
        users = torch.arange(start, min(b, start + users_per_chunk), device=candidate_tokens.device)
        tokens = candidate_tokens[users].reshape(-1, length)
        logits = model.sequence_logits(model.select_state(state, users.repeat_interleave(c)), tokens)
        logp = F.log_softmax(logits.float(), dim=-1).gather(2, tokens.unsqueeze(2)).squeeze(2)
        if end is not None:
            logp = logp.masked_fill(~id_positions(tokens, end), 0.0)
        out[users] = logp.sum(dim=1).view(users.numel(), c)
        start += users.numel()
        users_per_chunk = max(1, chunk_elements // max(1, c * length * logits.shape[-1]))
    return out


# --------------------------------------------------------------------------- decoder


class TrieBeamDecoder:
    def __init__(self, params: TrieBeamParams, run: "Run | None" = None) -> None:
        self.params = params
        self.run = run
        self._tries: dict[tuple, PrefixTrie] = {}
        self._item_tokens: dict[tuple, torch.Tensor] = {}

    def _version(self) -> int:
        return int(getattr(self.run.identifier, "version", 0) or 0)

    def trie(self, domain: int, device: torch.device) -> PrefixTrie:
        run = self.run
        if run is None or run.identifier is None:
            raise ConfigError("decoder 'trie-beam' needs the run's fitted identifier")
        key = (domain, str(device), self._version())
        if key not in self._tries:
            tokens = torch.as_tensor(run.identifier.domain_tokens(run, domain))
            items = torch.as_tensor(run.dataset.domain_items[domain])
            try:
                trie = build_trie(tokens, items, self.params.trie_layout)
            except ValueError as exc:
                raise ConfigError(
                    f"identifier {run.config.identifier.name!r}, domain {run.dataset.domains[domain]}: {exc}"
                ) from None
            self._tries = {k: v for k, v in self._tries.items() if k[2] == key[2]}
            self._tries[key] = trie.to(device)
        return self._tries[key]

    def item_tokens(self, device: torch.device) -> torch.Tensor:
        key = (str(device), self._version())
        if key not in self._item_tokens:
            self._item_tokens = {key: torch.as_tensor(self.run.identifier.item_tokens()).long().to(device)}
        return self._item_tokens[key]

    @torch.no_grad()
    def rank(self, model: nn.Module, batch: dict[str, torch.Tensor], candidates: torch.Tensor, k: int) -> Ranking:
        if candidates.dim() == 2:
            tokens = self.item_tokens(candidates.device)[candidates]
            return Ranking(scores=score_candidates(model, batch, tokens, self.params.score_chunk))
        domains = batch["domain"]
        present = [int(d) for d in torch.unique(domains).tolist()]
        if len(present) == 1:
            trie = self.trie(present[0], candidates.device)
            if candidates.numel() != trie.n_items:
                raise ConfigError(
                    f"decoder 'trie-beam' ranks a domain's whole catalogue ({trie.n_items} items) but got "
                    f"{candidates.numel()} candidates; use evaluation.protocol=full (or sampled)"
                )
            return Ranking(topk=beam_search(model, batch, trie, self.params.beam_size)[0])
        # A batch mixing domains (not what the evaluator sends): search each domain's rows apart.
        results = []
        for d in present:
            sel = domains == d
            sub = {key: value[sel] for key, value in batch.items()}
            results.append((sel, beam_search(model, sub, self.trie(d, candidates.device), self.params.beam_size)[0]))
        width = max(items.shape[1] for _, items in results)
        out = torch.zeros(domains.shape[0], width, dtype=torch.long, device=domains.device)
        for sel, items in results:
            out[sel, : items.shape[1]] = items
        return Ranking(topk=out)
