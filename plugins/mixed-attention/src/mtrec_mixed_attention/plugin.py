"""Hook implementations: the ``man`` encoder, the ``pointwise`` decoder, the ``man`` and ``man-paper`` recipes."""

from __future__ import annotations

from mtrec.components import DISCRIMINATIVE_ENCODER, Capability, Component
from mtrec.hookspecs import hookimpl

from mtrec_mixed_attention.decoder import PointwiseDecoder, PointwiseParams
from mtrec_mixed_attention.model import ManParams, build_man
from mtrec_mixed_attention.recipes import MAN, MAN_PAPER


@hookimpl
def mtrec_register_components(register) -> None:
    register(Component(
        kind="encoder", name="man", factory=build_man, params=ManParams,
        description="MAN: local (per-domain) and global (shared) embeddings and encoders over any registered "
                    "backbone, item-similarity / sequence-fusion / group-prototype attention, local + global MLP heads.",
        # "embeddings": item ID tables other components may read and write (mtrec.embeddings; MAN implements
        # item_embedding_rows for its global and local tables).  It has no user_embedding / item_representation:
        # the head is an MLP over (user, item), so topk's faiss index does not apply (topk's exact scoring does).
        provides=DISCRIMINATIVE_ENCODER | {"pointwise"},  # "pointwise": this plugin's own
    ))
    register(Component(
        kind="decoder", name="pointwise", factory=PointwiseDecoder, params=PointwiseParams,
        description="Score each candidate with the encoder's head, in memory-bounded chunks (CTR-style heads).",
        requires={"encoder": frozenset({Capability.SCORES})},
    ))


@hookimpl
def mtrec_register_recipes(register) -> None:
    register(MAN)
    register(MAN_PAPER)
