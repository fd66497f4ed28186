"""Hook implementations: the ``textual-id`` identifier, the ``idgenrec-seq2seq`` encoder, the
``idgenrec-alternate`` transfer strategy and the ``idgenrec`` recipe."""

from __future__ import annotations

from mtrec.components import Component
from mtrec.hookspecs import hookimpl
from mtrec.training.stage import TASK_LOSSES

from mtrec_textual_id.alternate import AlternateParams, AlternateTraining
from mtrec_textual_id.identifier import TextualIdIdentifier, TextualIdParams
from mtrec_textual_id.recipes import IDGENREC
from mtrec_textual_id.recommender import IdGenRecParams, build_idgenrec_seq2seq


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
    ))
    register(Component(
        kind="transfer", name="idgenrec-alternate", factory=AlternateTraining, params=AlternateParams,
        description="IDGenRec alternate training of ID generator and recommender on all source domains "
                    "(Table 5 schedules), optionally per-domain LoRA after.",
        requires={"identifier": frozenset({"textual"}), "encoder": frozenset({"generative"})},
    ))


@hookimpl
def mtrec_register_recipes(register) -> None:
    register(IDGENREC)
