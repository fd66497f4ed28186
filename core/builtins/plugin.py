"""The built-in plugin: registers the core's components, recipes and dataset formats.

It is loaded first and through the same hooks as any third-party plugin, so the built-ins are an
example of the contract rather than an exception to it.
"""

from __future__ import annotations

from mtrec.builtins.atomic import AtomicIdentifier, AtomicParams
from mtrec.builtins.gru4rec import GRU4RecParams, build_gru4rec
from mtrec.builtins.lora import UnifiedThenLoRA, UnifiedThenLoRAParams, check_unified_then_lora
from mtrec.builtins.recipes import SASREC
from mtrec.builtins.seq2seq import Seq2SeqParams, build_seq2seq
from mtrec.builtins.trie_beam import TrieBeamDecoder, TrieBeamParams
from mtrec.builtins.sasrec import SASRecParams, build_sasrec
from mtrec.builtins.topk import TopKDecoder, TopKParams
from mtrec.builtins.transfer import Joint, JointParams, SingleDomain, SingleDomainParams
from mtrec.components import DISCRIMINATIVE_ENCODER, Capability, Component
from mtrec.data.formats.builtin import ALL_FORMATS
from mtrec.hookspecs import hookimpl


@hookimpl
def mtrec_register_components(register) -> None:
    register(Component(
        kind="identifier", name="atomic", factory=AtomicIdentifier, params=AtomicParams,
        description="One token per item (classic ID embeddings).", provides=frozenset({Capability.TOKENS, Capability.TRIE}),
    ))
    register(Component(
        kind="encoder", name="sasrec", factory=build_sasrec, params=SASRecParams,
        description="SASRec: causal self-attention over the history; CE, BPR or BCE (sampled negatives) over the target domain's items.",
        provides=DISCRIMINATIVE_ENCODER,
    ))
    register(Component(
        kind="encoder", name="gru4rec", factory=build_gru4rec, params=GRU4RecParams,
        description="GRU4Rec: a GRU over the history, its last hidden state scored against item embeddings; "
                    "sasrec's objectives (CE, BPR or BCE over the target domain's items).",
        provides=DISCRIMINATIVE_ENCODER,
    ))
    register(Component(
        kind="decoder", name="topk", factory=TopKDecoder, params=TopKParams,
        description="Score the target domain's items (exact, or a faiss index for large catalogues).",
        requires={"encoder": frozenset({Capability.SCORES})},
    ))
    register(Component(
        kind="encoder", name="seq2seq", factory=build_seq2seq, params=Seq2SeqParams,
        description="T5 encoder-decoder (built from config, trained here) generating the next item's identifier tokens.",
        provides=frozenset({Capability.GENERATIVE}), requires={"identifier": frozenset({Capability.TOKENS})},
        switchable={Capability.TASK_LOSSES: "task_losses"},
    ))
    register(Component(
        kind="decoder", name="trie-beam", factory=TrieBeamDecoder, params=TrieBeamParams,
        description="Beam search constrained to the target domain's identifier prefix trie (sampled candidates: exact likelihood).",
        requires={"encoder": frozenset({Capability.GENERATIVE}), "identifier": frozenset({Capability.TRIE})},
    ))
    register(Component(
        kind="transfer", name="unified-then-lora", factory=UnifiedThenLoRA, params=UnifiedThenLoRAParams,
        description="GMC: one model on all domains, then one LoRA adapter per domain (or full fine-tuning / none).",
        check=check_unified_then_lora,
    ))
    register(Component(
        kind="transfer", name="single-domain", factory=SingleDomain, params=SingleDomainParams,
        description="One model per domain, trained and early-stopped on that domain alone.",
    ))
    register(Component(
        kind="transfer", name="joint", factory=Joint, params=JointParams,
        description="One model trained on all domains at once.",
    ))


@hookimpl
def mtrec_register_recipes(register) -> None:
    register(SASREC)


@hookimpl
def mtrec_register_dataset_formats(register) -> None:
    for fmt in ALL_FORMATS:
        register(fmt)
