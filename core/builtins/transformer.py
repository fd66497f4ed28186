"""A causal transformer block shared by the built-in and plugin sequence encoders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def causal_mask(padding: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask ``[B, 1, T, T]`` (True = may attend) for left-padded sequences.

    A position attends to itself and to earlier non-padding positions; the diagonal is always
    allowed so padded rows never become all-masked (which would give NaN).
    """
    t = padding.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=padding.device).tril()
    allowed = causal.unsqueeze(0) & ~padding.unsqueeze(1)
    allowed = allowed | torch.eye(t, dtype=torch.bool, device=padding.device).unsqueeze(0)
    return allowed.unsqueeze(1)


class TransformerBlock(nn.Module):
    """Post-norm self-attention block (as in SASRec/RecBole) with a GELU feed-forward."""

    def __init__(self, hidden: int, heads: int, inner: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.attn_dropout = attn_dropout
        self.drop = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ff = nn.Sequential(nn.Linear(hidden, inner), nn.GELU(), nn.Linear(inner, hidden))
        self.norm2 = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0
        )
        attn = attn.transpose(1, 2).reshape(b, t, h)
        x = self.norm1(x + self.drop(self.out(attn)))
        return self.norm2(x + self.drop(self.ff(x)))


class TransformerStack(nn.Module):
    def __init__(self, hidden: int, heads: int, layers: int, inner: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TransformerBlock(hidden, heads, inner, dropout, attn_dropout) for _ in range(layers)
        )

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        mask = causal_mask(padding)
        for block in self.blocks:
            x = block(x, mask)
        return x


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal-free BERT-style init used by RecBole's SASRec."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
