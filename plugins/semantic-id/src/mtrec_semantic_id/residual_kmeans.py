"""Training-free semantic IDs: PCA of the (standardised) embeddings, then residual k-means.

Level 1 is k-means of the projected items, level ``l`` k-means of what levels ``1..l-1`` left over
(the residual), the same residual quantisation as the RQ-VAE's without an encoder to train.  It is
deterministic given the ``torch.Generator``: the PCA is an exact SVD, k-means is the seeded
Lloyd iteration of :func:`mtrec_semantic_id.rqvae.kmeans`.
"""

from __future__ import annotations

import torch

from mtrec_semantic_id.rqvae import kmeans, pairwise_sq_dist


class ResidualKMeans:
    """``components`` ``[D, d]`` (PCA axes; identity-free when ``d == D``), ``codebooks`` ``[L, N, d]``."""

    def __init__(self, mean: torch.Tensor, components: torch.Tensor, codebooks: torch.Tensor) -> None:
        self.mean, self.components, self.codebooks = mean, components, codebooks

    @property
    def levels(self) -> int:
        return int(self.codebooks.shape[0])

    @classmethod
    def fit(cls, x: torch.Tensor, *, dim: int, levels: int, codebook_size: int, iters: int,
            generator: torch.Generator) -> "ResidualKMeans":
        x = x.detach().float()
        mean = x.mean(0)
        components = principal_axes(x - mean, dim)
        residual = (x - mean) @ components
        books = []
        for _ in range(levels):
            centers = kmeans(residual, codebook_size, iters=iters, generator=generator)
            books.append(centers)
            residual = residual - centers[pairwise_sq_dist(residual, centers).argmin(1)]
        return cls(mean, components, torch.stack(books, 0))

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        residual = (x.float() - self.mean) @ self.components
        out = []
        for book in self.codebooks:
            c = pairwise_sq_dist(residual, book).argmin(1)
            out.append(c)
            residual = residual - book[c]
        return torch.stack(out, 1) if out else torch.zeros(x.shape[0], 0, dtype=torch.long)

    def cpu(self) -> "ResidualKMeans":
        return ResidualKMeans(self.mean.cpu(), self.components.cpu(), self.codebooks.cpu())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"mean": self.mean, "components": self.components, "codebooks": self.codebooks}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "ResidualKMeans":
        return cls(state["mean"], state["components"], state["codebooks"])


def principal_axes(centred: torch.Tensor, dim: int) -> torch.Tensor:
    """``[D, min(dim, D)]`` leading principal axes of centred rows, signs fixed for reproducibility.

    An exact eigen-decomposition of the ``D x D`` covariance in float64 (not a randomised PCA), so
    the axes are a function of the data alone; each axis's sign is chosen so that its
    largest-magnitude coordinate is positive.
    """
    d = centred.shape[1]
    if dim >= d:
        return torch.eye(d, dtype=centred.dtype, device=centred.device)
    c = centred.double()
    _, vectors = torch.linalg.eigh(c.t() @ c)  # ascending eigenvalues
    axes = vectors[:, -dim:].flip(1)
    flip = torch.sign(axes.gather(0, axes.abs().argmax(0, keepdim=True)))
    return (axes * flip).to(centred.dtype)
