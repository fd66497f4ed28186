"""Hook implementations: the ``pretrain-match-finetune`` transfer strategy and the ``idp`` recipe."""

from __future__ import annotations

from mtrec.components import Component
from mtrec.hookspecs import hookimpl

from mtrec_id_matcher.params import IDPParams
from mtrec_id_matcher.recipes import IDP
from mtrec_id_matcher.strategy import NAME, PretrainMatchFinetune, check_config


@hookimpl
def mtrec_register_components(register) -> None:
    register(Component(
        kind="transfer", name=NAME, factory=PretrainMatchFinetune, params=IDPParams,
        description="IDP: pre-train an ID encoder on the sources, tune a text ID matcher (CDIM), generate the new "
                    "domains' ID embeddings from the top-m matched source items (faiss), then fine-tune or deploy.",
        requires={"encoder": frozenset({"embeddings"})},
        check=check_config,  # pretrain_encoder: a known encoder, valid params, the run encoder's width
    ))


@hookimpl
def mtrec_register_recipes(register) -> None:
    register(IDP)
