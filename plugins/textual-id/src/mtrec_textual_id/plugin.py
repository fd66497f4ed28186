"""Hook implementations: the ``textual-id`` identifier, the ``idgenrec-seq2seq`` encoder, the
``idgenrec-alternate`` transfer strategy and the ``idgenrec`` and ``idgenrec-paper`` recipes."""

from __future__ import annotations

from mtrec.builtins.lora import check_unified_then_lora
from mtrec.components import Component
from mtrec.errors import ConfigError
from mtrec.hookspecs import hookimpl
from mtrec.training.stage import TASK_LOSSES

from mtrec_textual_id.alternate import AlternateParams, AlternateTraining
from mtrec_textual_id.identifier import TextualIdIdentifier, TextualIdParams
from mtrec_textual_id.recipes import IDGENREC, IDGENREC_PAPER
from mtrec_textual_id.recommender import IdGenRecParams, build_idgenrec_seq2seq


def check_recommender(params, parts, catalogue) -> None:
    """User IDs are written by the textual-id generator: refuse them with another identifier."""
    identifier, identifier_params = parts["identifier"]
    if params.user_ids != "none" and "textual" not in identifier.provided(identifier_params):
        raise ConfigError(
            f"encoder.params.user_ids={params.user_ids}: user IDs are written by the textual-id generator; "
            f"identifier {identifier.name!r} has none (set encoder.params.user_ids=none)"
        )


@hookimpl
def mtrec_register_components(register) -> None:
    register(Component(
        kind="identifier", name="textual-id", factory=TextualIdIdentifier, params=TextualIdParams,
        description="IDGenRec: unique textual IDs of word pieces written by a trainable seq2seq generator "
                    "from each item's text (diverse beam search with escalating penalty, then longer IDs).",
        provides=frozenset({"tokens", "trie", "textual"}),
    ))
    register(Component(
        kind="encoder", name="idgenrec-seq2seq", factory=build_idgenrec_seq2seq, params=IdGenRecParams,
        description="The core seq2seq T5 reading prompt templates with the history's item IDs (IDGenRec's "
                    "recommender); textual IDs, or any token IDs (semantic IDs, ...) with the prompt words after them.",
        provides=frozenset({"generative"}), requires={"identifier": frozenset({"tokens"})},
        switchable={TASK_LOSSES: "task_losses"},  # the core seq2seq's switch; the losses keep its keys
        check=check_recommender,
    ))
    register(Component(
        kind="transfer", name="idgenrec-alternate", factory=AlternateTraining, params=AlternateParams,
        description="IDGenRec alternate training of ID generator and recommender on all source domains "
                    "(Table 5 schedules), optionally per-domain LoRA after.",
        requires={"identifier": frozenset({"textual"}), "encoder": frozenset({"generative"})},
        check=check_unified_then_lora,  # its loss_weighting, as for the core strategy it extends
    ))


@hookimpl
def mtrec_register_recipes(register) -> None:
    register(IDGENREC)
    register(IDGENREC_PAPER)
