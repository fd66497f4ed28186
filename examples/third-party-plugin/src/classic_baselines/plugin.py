"""The plugin module named by the ``mtrec.plugins`` entry point: registers components and recipes.

Only mtrec's public API is used: :mod:`mtrec.components` (Component, Recipe, Encoder, Params,
Capability), :data:`mtrec.hookspecs.hookimpl`, :mod:`mtrec.data.views`, :mod:`mtrec.training.stage`
and :mod:`mtrec.builtins.domain_items` (the per-domain item lookup tables).
The built-in ``atomic`` identifier, ``single-domain`` transfer and ``topk`` decoder complete the
recipes; they are referred to by name, as any plugin's components would be.
"""

from __future__ import annotations

from mtrec.components import DISCRIMINATIVE_ENCODER, Capability, Component, Recipe
from mtrec.hookspecs import hookimpl

from classic_baselines.gru4rec import Gru4RecParams, build_gru4rec
from classic_baselines.popularity import NoTraining, NoTrainingParams, PopularityParams, build_popularity

# This plugin's own capabilities (the core's are members of mtrec.components.Capability): a
# capability is a string, so a plugin may declare new ones that only its own parts check.
TRAINING_FREE = "training-free"  # an encoder that needs no training stage (counts)
NO_TRAINING = "no-training"  # a transfer strategy that runs none


@hookimpl
def mtrec_register_components(register) -> None:
    register(Component(
        # "classic-gru4rec", not "gru4rec": the core registers its own `gru4rec` encoder, and a plugin that
        # registers a name another plugin already has is skipped whole (mtrec.plugins).
        kind="encoder", name="classic-gru4rec", factory=build_gru4rec, params=Gru4RecParams,
        description="GRU4Rec (Hidasi et al. 2016): a GRU over the history, softmax CE over the target domain's items.",
        # What the built-in SASRec provides (`scores` is what the built-in `topk` decoder requires),
        # so components that ask for any of it accept GRU4Rec too.
        provides=DISCRIMINATIVE_ENCODER,
    ))
    register(Component(
        kind="encoder", name="popularity", factory=build_popularity, params=PopularityParams,
        description="Most training interactions in the target domain first (ties: lower item id); ignores the history.",
        provides=frozenset({Capability.DISCRIMINATIVE, Capability.SCORES, TRAINING_FREE}),
        requires={"transfer": frozenset({NO_TRAINING})},
    ))
    register(Component(
        kind="transfer", name="no-training", factory=NoTraining, params=NoTrainingParams,
        description="Use the encoder as built, for every target domain: no training stage (count-based baselines).",
        provides=frozenset({NO_TRAINING}),
        requires={"encoder": frozenset({TRAINING_FREE})},
    ))


@hookimpl
def mtrec_register_recipes(register) -> None:
    register(Recipe(
        name="gru4rec",
        description="GRU4Rec (this plugin's classic-gru4rec) with atomic item IDs, one model per domain, full-ranking top-k.",
        config={
            "identifier": {"name": "atomic"},
            "encoder": {"name": "classic-gru4rec", "params": {"embedding": 64, "hidden": 128, "layers": 1, "dropout": 0.3}},
            "transfer": {"name": "single-domain"},
            "decoder": {"name": "topk"},
            "data": {"max_len": 20},
            "training": {"epochs": 100, "lr": 1e-3, "batch_size": 256, "patience": 10},
        },
        quick={
            "encoder": {"params": {"embedding": 32, "hidden": 32}},
            "training": {"epochs": 3, "patience": 2},
            "evaluation": {"valid_max_users": 300},
        },
    ))
    register(Recipe(
        name="pop",
        description="Popularity: training-interaction counts in the target domain (the floor every model must beat).",
        config={
            "identifier": {"name": "atomic"},
            "encoder": {"name": "popularity"},
            "transfer": {"name": "no-training"},
            "decoder": {"name": "topk"},
        },
        # Nothing to shrink: counting is already instant; the profile exists because every recipe has one.
        quick={"evaluation": {"valid_max_users": 300}},
    ))
