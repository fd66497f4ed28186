"""RQ-VAE (papers/gmc.md §3.3, Eq. 1-7): MLP encoder, L-level residual quantiser, MLP decoder.

Everything here is plain torch and takes an explicit ``torch.Generator`` wherever randomness is
used (k-means initialisation, shuffling, dead-code re-seeding), so a fit is a function of its seed.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last): the paper's MLP encoder/decoder."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def pairwise_sq_dist(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``[B, K]`` squared Euclidean distances (the argmin of Eq. 1)."""
    return (
        x.pow(2).sum(1, keepdim=True)
        - 2 * x @ centers.t()
        + centers.pow(2).sum(1).unsqueeze(0)
    )


def kmeans(x: torch.Tensor, k: int, *, iters: int = 20, generator: torch.Generator | None = None) -> torch.Tensor:
    """Lloyd's k-means, seeded by ``generator``: ``[k, d]`` centres.

    Initial centres are ``k`` distinct random points (with replacement plus a little noise when
    there are fewer points than centres); an empty cluster is re-seeded with a random point.
    """
    x = x.detach().float()
    n = x.shape[0]
    if n >= k:
        centers = x[torch.randperm(n, generator=generator, device="cpu")[:k].to(x.device)].clone()
    else:
        idx = torch.randint(n, (k,), generator=generator, device="cpu").to(x.device)
        idx[:n] = torch.arange(n, device=x.device)
        noise = torch.randn(k, x.shape[1], generator=generator, device="cpu").to(x.device)
        centers = x[idx] + 1e-3 * (x.std() + 1e-6) * noise
        centers[:n] = x
    for _ in range(iters):
        assign = pairwise_sq_dist(x, centers).argmin(1)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centers).index_add_(0, assign, x)
        empty = counts == 0
        centers = torch.where(empty.unsqueeze(1), centers, sums / counts.clamp(min=1).unsqueeze(1))
        if bool(empty.any()) and n >= k:
            pick = torch.randint(n, (int(empty.sum()),), generator=generator, device="cpu").to(x.device)
            centers[empty] = x[pick]
    return centers


def domain_contrastive_loss(
    zq: torch.Tensor, domains: torch.Tensor, *, temperature: float = 1.0, similarity: str = "dot"
) -> torch.Tensor:
    """Eq. 6: ``-1/B sum_i log( sum_j exp(<z_i,z_j>/t) [t_j = t_i] / sum_j exp(<z_i,z_j>/t) )``.

    The sums run over the whole batch, ``j = i`` included, exactly as written in the paper, so a
    batch from a single domain has loss 0.  ``similarity="cosine"`` L2-normalises first.
    """
    if similarity == "cosine":
        zq = F.normalize(zq, dim=-1)
    logits = zq @ zq.t() / temperature
    # One exp pass: shift each row by its max, sum per domain with a one-hot matmul.
    shifted = logits - logits.detach().max(1, keepdim=True).values
    _, dom = torch.unique(domains, return_inverse=True)
    per_domain = torch.exp(shifted) @ F.one_hot(dom).to(shifted.dtype)  # [B, T]
    same = per_domain.gather(1, dom.unsqueeze(1)).squeeze(1)
    log_same = torch.log(same.clamp_min(torch.finfo(same.dtype).tiny))
    under = same < torch.finfo(same.dtype).tiny  # every same-domain term underflowed: exact fallback
    if bool(under.any()):
        mask = dom[under].unsqueeze(1) == dom.unsqueeze(0)
        exact = torch.logsumexp(shifted[under].masked_fill(~mask, float("-inf")), dim=1)
        log_same = log_same.masked_scatter(under, exact)
    return (torch.log(per_domain.sum(1)) - log_same).mean()


@dataclass
class RQOutput:
    codes: torch.Tensor  # [B, L] long
    zq: torch.Tensor  # [B, d] sum of the chosen code vectors (gradient to the codebooks)
    zq_st: torch.Tensor  # [B, d] same value, straight-through gradient to the encoder
    rq_loss: torch.Tensor  # Eq. 5 (summed over levels)
    residuals: list[torch.Tensor] = field(default_factory=list)  # r_{l-1}, the input of level l


class RQVAE(nn.Module):
    def __init__(self, input_dim: int, hidden: list[int], latent_dim: int, levels: int, codebook_size: int,
                 beta: float = 0.25) -> None:
        super().__init__()
        self.levels, self.codebook_size, self.latent_dim, self.beta = levels, codebook_size, latent_dim, beta
        self.encoder = mlp([input_dim, *hidden, latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden), input_dim])
        bound = 1.0 / math.sqrt(codebook_size)
        self.codebooks = nn.Parameter(torch.empty(levels, codebook_size, latent_dim).uniform_(-bound, bound))

    def quantize(self, z: torch.Tensor) -> RQOutput:
        """Eq. 1-2 and Eq. 5: nearest code per level on the running residual."""
        residual = z
        codes, chosen, residuals = [], [], []
        rq = z.new_zeros(())
        for level in range(self.levels):
            book = self.codebooks[level]
            residuals.append(residual)
            c = pairwise_sq_dist(residual.detach(), book.detach()).argmin(1)
            e = book[c]
            # Eq. 5 with mean squared error per element (the usual implementation's scale).
            rq = rq + F.mse_loss(e, residual.detach()) + self.beta * F.mse_loss(residual, e.detach())
            codes.append(c)
            chosen.append(e)
            residual = residual - e.detach()
        zq = torch.stack(chosen, 0).sum(0)
        zq_st = z + (zq - z).detach()
        return RQOutput(torch.stack(codes, 1), zq, zq_st, rq, residuals)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, RQOutput]:
        z = self.encoder(x)
        q = self.quantize(z)
        x_hat = self.decoder(q.zq_st)
        return z, x_hat, q

    @torch.no_grad()
    def codes(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        out = [self.quantize(self.encoder(x[i : i + batch_size])).codes for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out, 0) if out else torch.zeros(0, self.levels, dtype=torch.long)

    @torch.no_grad()
    def init_kmeans(self, x: torch.Tensor, *, iters: int, generator: torch.Generator, batch_size: int = 4096) -> None:
        """Initialise each level's codebook by k-means on that level's residuals of the current encoder."""
        residual = torch.cat([self.encoder(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)], 0)
        for level in range(self.levels):
            centers = kmeans(residual, self.codebook_size, iters=iters, generator=generator)
            self.codebooks.data[level] = centers
            residual = residual - centers[pairwise_sq_dist(residual, centers).argmin(1)]

    @torch.no_grad()
    def rescale_latent(self, x: torch.Tensor, target_norm: float, batch_size: int = 4096) -> float:
        """Scale the latent space so that the mean ``|Enc(x)|`` is ``target_norm``; returns the factor.

        Function-preserving: the encoder's last layer is multiplied by the factor and the decoder's
        first layer's weights divided by it, so ``Dec(Enc(x))`` is unchanged.
        """
        z = torch.cat([self.encoder(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)], 0)
        norm = float(z.norm(dim=1).mean())
        if norm <= 0:
            return 1.0
        factor = target_norm / norm
        last, first = self.encoder[-1], self.decoder[0]
        last.weight.mul_(factor)
        last.bias.mul_(factor)
        first.weight.div_(factor)
        return factor

    @torch.no_grad()
    def reconstruction_error(self, x: torch.Tensor, batch_size: int = 4096) -> float:
        total = 0.0
        for i in range(0, x.shape[0], batch_size):
            _, x_hat, _ = self(x[i : i + batch_size])
            total += float(F.mse_loss(x_hat, x[i : i + batch_size], reduction="sum"))
        return total / max(x.numel(), 1)


def loss_terms(model: RQVAE, x: torch.Tensor, domains: torch.Tensor | None, *, contrastive_weight: float,
               temperature: float = 1.0, similarity: str = "dot") -> tuple[dict[str, torch.Tensor], RQOutput]:
    """Eq. 7: recon (Eq. 4) + rq (Eq. 5) + weight * dcl (Eq. 6) on one batch.

    The contrastive term is computed on the quantised embedding ``z_hat`` (the sum of the chosen code
    vectors) with gradients to both the codebooks and, straight through, to the encoder.
    """
    z, x_hat, q = model(x)
    terms = {"recon": F.mse_loss(x_hat, x), "rq": q.rq_loss}
    if contrastive_weight > 0 and domains is not None:
        zq = q.zq + (z - z.detach())  # value z_hat; d/dcodebooks and d/dz both identity
        terms["dcl"] = contrastive_weight * domain_contrastive_loss(zq, domains, temperature=temperature,
                                                                    similarity=similarity)
    return terms, q


# Mean latent norm after the warm-up (see train_rqvae): fits without warm-up end near 2.4 on the
# bundled data; on Scientific (1,000 steps) 1.0 and 3.0 gave neighbour agreement 0.609 and 0.615,
# no rescaling 0.570.
WARMUP_LATENT_NORM = 1.0


@dataclass
class TrainConfig:
    epochs: int = 100
    steps: int | None = None  # the budget in optimiser steps; wins over ``epochs`` when set
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 1e-4
    contrastive_weight: float = 0.0
    temperature: float = 1.0
    similarity: str = "dot"
    kmeans_init: bool = True
    kmeans_iters: int = 20
    kmeans_warmup_steps: int = 0  # reconstruction-only steps before the k-means initialisation
    dead_code_steps: int = 50  # 0 = never re-seed unused codes
    dead_code_stop: float = 0.9  # no re-seeding in the last 10% of steps, so codes settle

    def total_steps(self, n: int) -> int:
        """Optimiser steps of a fit on ``n`` items (the warm-up included)."""
        if self.steps is not None:
            return self.steps
        return self.epochs * math.ceil(n / self.effective_batch(n))

    def effective_batch(self, n: int) -> int:
        # A catalogue smaller than a batch gets full-catalogue batches, never a short remainder.
        return max(1, min(n, self.batch_size))


def dead_code_window(dead_code_steps: int, n: int, batch: int) -> int:
    """Steps over which a code must go unchosen to count as dead.

    At least ``dead_code_steps``, and long enough for every item to be drawn at least once: batches
    are consecutive slices of a stream of shuffled passes, so ``2 * ceil(n / batch)`` steps always
    contain one whole pass.  A shorter window would call codes dead that only the unseen items use.
    """
    return max(dead_code_steps, 2 * math.ceil(n / batch))


class BatchStream:
    """Fixed-size batches from back-to-back seeded permutations of ``range(n)``.

    Every batch has exactly ``batch`` rows (a pass's remainder is topped up from the next pass), so
    a step budget means the same amount of work whatever ``n`` is.
    """

    def __init__(self, n: int, batch: int, generator: torch.Generator) -> None:
        self.n, self.batch, self.generator = n, batch, generator
        self.buffer = torch.zeros(0, dtype=torch.long)
        self.passes = 0

    def next(self) -> torch.Tensor:
        while self.buffer.numel() < self.batch:
            self.buffer = torch.cat([self.buffer, torch.randperm(self.n, generator=self.generator, device="cpu")])
            self.passes += 1
        idx, self.buffer = self.buffer[: self.batch], self.buffer[self.batch :]
        return idx


def train_rqvae(
    model: RQVAE,
    x: torch.Tensor,
    domains: torch.Tensor | None,
    cfg: TrainConfig,
    *,
    generator: torch.Generator,
    progress: Callable[[int], object] | None = None,
) -> dict[str, float]:
    """Fit ``model`` on the rows of ``x`` for ``cfg.total_steps(n)`` optimiser steps.

    Steps ``1..kmeans_warmup_steps`` train the encoder and decoder as a plain auto-encoder
    (reconstruction of ``Dec(Enc(x))``, no quantiser); then the latent is rescaled to a mean norm of
    ``WARMUP_LATENT_NORM`` (function-preserving), with ``kmeans_init`` each codebook becomes k-means
    of the trained encoder's outputs, and the remaining steps minimise Eq. 7.  Returns the
    mean loss terms of the last pass's worth of steps, the dead-code reset count and the step count.
    ``progress(total)`` makes a tqdm-like bar counting steps.
    """
    n = x.shape[0]
    batch = cfg.effective_batch(n)
    total = cfg.total_steps(n)
    warmup = cfg.kmeans_warmup_steps
    if warmup >= total:
        raise ValueError(f"kmeans_warmup_steps ({warmup}) must be below the step budget ({total})")
    window = dead_code_window(cfg.dead_code_steps, n, batch)
    report_every = math.ceil(n / batch)  # the final losses average the last pass's worth of steps
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    usage = torch.zeros(model.levels, model.codebook_size, dtype=torch.long, device=x.device)
    stream = BatchStream(n, batch, generator)
    resets = 0
    recent: deque[dict[str, float]] = deque(maxlen=report_every)
    bar = progress(total) if progress is not None else None
    if cfg.kmeans_init and warmup == 0:
        model.init_kmeans(x, iters=cfg.kmeans_iters, generator=generator)
    model.train()
    for step in range(1, total + 1):
        idx = stream.next().to(x.device)
        if step <= warmup:
            terms = {"recon": F.mse_loss(model.decoder(model.encoder(x[idx])), x[idx])}
            q = None
        else:
            if step == warmup + 1 and warmup > 0:
                # An auto-encoder's latent grows without bound (norm ~30 after 200 steps on standardised
                # MiniLM), and AdamW moves codes ~lr per step whatever that scale: the codebooks would
                # stay frozen where k-means put them.  Bring it back to the scale a fit without warm-up has.
                model.rescale_latent(x, WARMUP_LATENT_NORM)
                if cfg.kmeans_init:
                    model.init_kmeans(x, iters=cfg.kmeans_iters, generator=generator)
                model.train()
            terms, q = loss_terms(model, x[idx], None if domains is None else domains[idx],
                                  contrastive_weight=cfg.contrastive_weight, temperature=cfg.temperature,
                                  similarity=cfg.similarity)
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recent.append({k: float(v.detach()) for k, v in terms.items()})
        if q is not None and cfg.dead_code_steps:
            for level in range(model.levels):
                usage[level] += torch.bincount(q.codes[:, level], minlength=model.codebook_size)
            if (step - warmup) % window == 0:
                if step <= cfg.dead_code_stop * total:
                    resets += reseed_dead_codes(model, opt, usage, q.residuals, generator)
                usage.zero_()
        if bar is not None:
            bar.update(1)
            if step % report_every == 0 or step == total:
                bar.set_postfix({k: f"{v:.4f}" for k, v in _mean_terms(recent).items()})
    if bar is not None:
        bar.close()
    model.eval()
    last = _mean_terms([r for r in recent if "rq" in r] or recent)
    last["dead_code_resets"] = float(resets)
    last["steps"] = float(total)
    return last


def _mean_terms(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for r in rows for k in r}
    return {k: sum(r[k] for r in rows if k in r) / max(1, sum(k in r for r in rows)) for k in sorted(keys)}


@torch.no_grad()
def reseed_dead_codes(model: RQVAE, opt: torch.optim.Optimizer, usage: torch.Tensor,
                      residuals: list[torch.Tensor], generator: torch.Generator) -> int:
    """Move every code unused since the last check onto a random current residual of its level.

    The optimiser's moment estimates of a moved code are zeroed so the old ones do not drag it back.
    """
    replaced = 0
    state = opt.state.get(model.codebooks, {})
    for level in range(model.levels):
        dead = torch.nonzero(usage[level] == 0).flatten()
        if dead.numel() == 0:
            continue
        pool = residuals[level].detach()
        # Distinct residuals where the batch has enough: two codes revived on one point would split it
        # and one of them die again.
        if pool.shape[0] >= dead.numel():
            pick = torch.randperm(pool.shape[0], generator=generator, device="cpu")[: dead.numel()]
        else:
            pick = torch.randint(pool.shape[0], (dead.numel(),), generator=generator, device="cpu")
        pick = pick.to(pool.device)
        model.codebooks.data[level, dead] = pool[pick]
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][level, dead] = 0
        replaced += int(dead.numel())
    return replaced
