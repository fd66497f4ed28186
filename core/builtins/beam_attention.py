"""Cross-attention that lets a beam search keep one copy of the encoder's keys and values per example.

In a beam search every beam of an example attends to the same encoder states.  transformers'
``EncoderDecoderCache`` holds the cross-attention keys and values per decoding row, so widening an
example to ``k`` beams copies them ``k`` times: with the papers' T5 (4 decoder layers, 6 heads of
64) and beam 20 that is 240 KB per encoder position of an example, a third of a validation pass's
CPU time on the multi-domain benchmark (docs/benchmarks.md, "Beam search without a copy per
beam").  Here the cache keeps one row per example, and an example's ``k`` beams become ``k``
query positions of that one row: the same scores, softmax and weighted sum per beam, read from
one copy.

:data:`ATTENTION` names this function in transformers' ``AttentionInterface``; ``seq2seq`` sets it
as its T5's attention implementation.  When queries and keys have as many rows (training, the
encoder, self-attention) it is exactly transformers' ``sdpa``.  Rows are grouped only when the
model's ``select_state`` has arranged them so (:func:`uniform_group`): ``N = M * k`` query rows,
row ``n`` reading key row ``n // k``.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION = "mtrec-grouped-sdpa"


def grouped_sdpa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           attention_mask: torch.Tensor | None, **kwargs) -> tuple[torch.Tensor, None]:
    """``sdpa`` with ``query`` ``[M*k, H, 1, D]`` against ``key``/``value`` ``[M, H, S, D]``: the ``k``
    decoding rows of key row ``m`` are computed as ``k`` query positions of row ``m``."""
    rows, key_rows = query.shape[0], key.shape[0]
    if rows == key_rows:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if rows % key_rows or query.shape[2] != 1:
        raise RuntimeError(f"grouped attention: {rows} query rows of length {query.shape[2]} "
                           f"against {key_rows} key rows")
    group = rows // key_rows
    heads, width = query.shape[1], query.shape[3]
    grouped = query.view(key_rows, group, heads, width).transpose(1, 2)  # [M, H, k, D]
    if attention_mask is not None and attention_mask.shape[0] == rows:
        attention_mask = attention_mask[::group]  # the k rows of an example share its encoder mask
    bias = kwargs.get("position_bias")
    if bias is not None and bias.shape[0] == rows:
        kwargs["position_bias"] = bias[::group]
    out, _ = sdpa_attention_forward(module, grouped, key, value, attention_mask, **kwargs)  # [M, k, H, D]
    return out.reshape(rows, 1, heads, out.shape[-1]), None


def uniform_group(source: torch.Tensor, key_rows: int) -> int | None:
    """``k`` when ``source`` (the key row each decoding row reads) is ``0,..,0, 1,..,1, ...``, ``k``
    of each of the ``key_rows`` rows in order -- the layout :func:`grouped_sdpa_attention` reads
    without a copy; ``None`` for any other layout."""
    if key_rows == 0 or source.numel() % key_rows:
        return None
    group = source.numel() // key_rows
    expected = torch.arange(key_rows, device=source.device).repeat_interleave(group)
    return group if torch.equal(source, expected) else None


AttentionInterface.register(ATTENTION, grouped_sdpa_attention)
# transformers builds no attention mask at all for an implementation without a mask function.
AttentionMaskInterface.register(ATTENTION, sdpa_mask)
