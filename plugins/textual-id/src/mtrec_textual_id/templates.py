"""Prompt templates of the base recommender (§2.1): P5's sequential-recommendation prompts with the
dataset name removed, one sampled per training example.  ``{history}`` is replaced by the history's
item IDs joined by ", ".  Evaluation always uses the first template (the paper does not say which
it uses; a fixed one keeps evaluation deterministic)."""

from __future__ import annotations

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


def split_template(template: str) -> tuple[str, str]:
    """``(prefix, suffix)`` around the single ``{history}`` placeholder."""
    if template.count("{history}") != 1:
        raise ValueError(f"a template holds exactly one {{history}}: {template!r}")
    prefix, suffix = template.split("{history}")
    return prefix, suffix
