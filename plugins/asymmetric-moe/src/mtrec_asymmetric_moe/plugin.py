"""Hook implementations: the ``syncrec`` encoder, the ``ntg-weighting`` strategy, the ``syncrec`` and ``syncrec-paper`` recipes."""

from __future__ import annotations

from mtrec.components import DISCRIMINATIVE_ENCODER, Capability, Component
from mtrec.hookspecs import hookimpl

from mtrec_asymmetric_moe.encoder import SyNCRecParams, build_syncrec
from mtrec_asymmetric_moe.ntg import NTGWeightingParams, NTGWeightingStrategy
from mtrec_asymmetric_moe.recipes import SYNCREC, SYNCREC_PAPER


@hookimpl
def mtrec_register_components(register) -> None:
    register(Component(
        kind="encoder", name="syncrec", factory=build_syncrec, params=SyNCRecParams,
        description="SyNCRec: K transformer experts with per-domain and cross-domain gates and the asymmetric "
                    "stop-gradient split, towers, BPR per domain and task, SC-MIM; predicts from the cross view.",
        provides=DISCRIMINATIVE_ENCODER | {Capability.TASK_LOSSES},
    ))
    register(Component(
        kind="transfer", name="ntg-weighting", factory=NTGWeightingStrategy, params=NTGWeightingParams,
        description="One model on all domains; the cross-domain loss of each domain weighted by its relative "
                    "negative transfer gap (SyNCRec LC-NTG, Eq. 11: learnable alpha and beta, fixed temperature).",
        provides=frozenset({Capability.LOSS_WEIGHTING}),  # unified-then-lora can borrow its combiner (loss_weighting)
        requires={"encoder": frozenset({Capability.TASK_LOSSES})},
    ))


@hookimpl
def mtrec_register_recipes(register) -> None:
    register(SYNCREC)
    register(SYNCREC_PAPER)
