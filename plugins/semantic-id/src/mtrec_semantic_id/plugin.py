"""Hook implementations: the ``semantic-id`` identifier and the ``gmc`` / ``tiger`` recipes."""

from __future__ import annotations

from mtrec.components import Component
from mtrec.hookspecs import hookimpl

from mtrec_semantic_id.identifier import SemanticIdIdentifier, SemanticIdParams
from mtrec_semantic_id.recipes import GMC, GMC_PAPER, TIGER, TIGER_PAPER


@hookimpl
def mtrec_register_components(register) -> None:
    register(Component(
        kind="identifier", name="semantic-id", factory=SemanticIdIdentifier, params=SemanticIdParams,
        description="RQ-VAE codes of item text embeddings (L levels x N codes, shared across domains), "
                    "domain-aware contrastive loss, an extra level where codes collide.",
        provides=frozenset({"tokens", "trie"}),
    ))


@hookimpl
def mtrec_register_recipes(register) -> None:
    # Recipes are plain data: if the core components they name are missing, resolving the recipe
    # fails with a ConfigError naming the unknown component.
    for recipe in (GMC, TIGER, GMC_PAPER, TIGER_PAPER):
        register(recipe)
