"""Prompt templates of the base recommender (§2.1): P5's sequential-recommendation prompts with the
dataset name removed, one sampled per training example.  ``{history}`` is replaced by the history's
item IDs joined by ", ", ``{user}`` (user-aware variants, ``encoder.params.user_ids``) by the user's
ID.  Evaluation always uses the first template (the paper does not say which it uses; a fixed one
keeps evaluation deterministic)."""

from __future__ import annotations

import re

TEMPLATES: tuple[str, ...] = (
    "Given the following purchase history of a user: {history}. What is the next possible item to be purchased by the user?",
    "I find the purchase history list of a user: {history}. I wonder what is the next item to recommend to the user. Can you help me decide?",
    "Here is the purchase history list of a user: {history}. What to recommend next for the user?",
    "Given the following purchase history of a user: {history}. Predict next possible item to be purchased by the user?",
    "Based on the purchase history of a user: {history}. Can you decide the next item likely to be purchased by the user?",
    "Here is the purchase history of a user: {history}. What to recommend next for the user?",
    "User has purchased items {history}; predict the next possible item to be bought by the user.",
    "The user has bought {history}. Which item will the user buy next?",
    "Purchase history: {history}. Recommend the next item for this user.",
    "Considering the items {history} bought by a user, what should be recommended next?",
)
SEPARATOR = ","

# User-aware variants (§2.1: "User [user_ID] has purchased items [item_ID], ..."), used only when
# ``encoder.params.user_ids`` is on; template i is template i above with the user's ID placed before
# the history.  They use only words of the templates above, so the identifier's vocabulary (built
# from ``TEMPLATES``) is the same whether user IDs are on or off.
USER_TEMPLATES: tuple[str, ...] = (
    "Given the following purchase history of user {user}: {history}. What is the next possible item to be purchased by the user?",
    "I find the purchase history list of user {user}: {history}. I wonder what is the next item to recommend to the user. Can you help me decide?",
    "Here is the purchase history list of user {user}: {history}. What to recommend next for the user?",
    "Given the following purchase history of user {user}: {history}. Predict next possible item to be purchased by the user?",
    "Based on the purchase history of user {user}: {history}. Can you decide the next item likely to be purchased by the user?",
    "Here is the purchase history of user {user}: {history}. What to recommend next for the user?",
    "User {user} has purchased items {history}; predict the next possible item to be bought by the user.",
    "The user {user} has bought {history}. Which item will the user buy next?",
    "User: {user}. Purchase history: {history}. Recommend the next item for this user.",
    "Considering the user {user}, the items {history} bought by the user, what should be recommended next?",
)
# Table 6's "only user IDs": the same prompts with the history's item IDs (and the words that
# introduce them) left out; the user ID, written from the history's text, stands for it.
USER_ONLY_TEMPLATES: tuple[str, ...] = (
    "Given the following purchase history of user {user}. What is the next possible item to be purchased by the user?",
    "I find the purchase history list of user {user}. I wonder what is the next item to recommend to the user. Can you help me decide?",
    "Here is the purchase history list of user {user}. What to recommend next for the user?",
    "Given the following purchase history of user {user}. Predict next possible item to be purchased by the user?",
    "Based on the purchase history of user {user}. Can you decide the next item likely to be purchased by the user?",
    "Here is the purchase history of user {user}. What to recommend next for the user?",
    "User {user} has purchased items; predict the next possible item to be bought by the user.",
    "The user {user} has bought items. Which item will the user buy next?",
    "User: {user}. Recommend the next item for this user.",
    "Considering the user {user}, what should be recommended next?",
)

# encoder.params.user_ids -> (templates, what fills their slots, in order)
LAYOUTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "none": (TEMPLATES, ("history",)),
    "with-items": (USER_TEMPLATES, ("user", "history")),
    "only": (USER_ONLY_TEMPLATES, ("user",)),
}


def split_template(template: str) -> tuple[str, str]:
    """``(prefix, suffix)`` around the single ``{history}`` placeholder."""
    if template.count("{history}") != 1:
        raise ValueError(f"a template holds exactly one {{history}}: {template!r}")
    prefix, suffix = template.split("{history}")
    return prefix, suffix


def template_parts(template: str, slots: tuple[str, ...]) -> list[str]:
    """The text around the placeholders ``slots`` (in this order, each once): ``len(slots) + 1`` parts."""
    found = tuple(re.findall(r"\{(\w+)\}", template))
    if found != slots:
        raise ValueError(f"template {template!r} holds placeholders {found}, expected {slots}")
    return re.split(r"\{\w+\}", template)
