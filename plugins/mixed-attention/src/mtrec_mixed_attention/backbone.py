"""Any registered sequence encoder as MAN's local or global encoder (Eq. 3-4).

MAN owns the item and positional embeddings (Eq. 1-2) and asks its backbone only to turn an
embedded sequence ``[B, T, D]`` into hidden states ``[B, T, D]``.  A registered encoder qualifies
when its module has ``encode_embeddings(x, padding)`` (the core ``gru4rec``: dropout + GRU); the
core ``sasrec`` is adapted here (its embedding LayerNorm + dropout + causal transformer stack).  The
core encoders' own item (and position) tables, which MAN never uses, are dropped so they neither
cost memory, nor count in Eq. 18's L2, nor sit in the checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from pydantic import ValidationError
from torch import nn

from mtrec.components import Capability
from mtrec.config import format_errors
from mtrec.errors import ConfigError

if TYPE_CHECKING:
    from mtrec.run_context import RunContext

KEY = "encoder.params.backbone"


class EmbeddingBackbone(nn.Module):
    """Wraps a registered encoder module so that ``forward(x, padding)`` encodes embeddings."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        from mtrec.builtins.gru4rec import GRU4Rec
        from mtrec.builtins.sasrec import SASRec

        if isinstance(module, GRU4Rec):
            del module.item_embedding  # MAN's own tables replace it
        elif not hasattr(module, "encode_embeddings"):
            if not isinstance(module, SASRec):
                raise ConfigError(
                    f"{KEY}: encoder {type(module).__name__} cannot encode embedded sequences; a MAN backbone "
                    "needs an encode_embeddings(x, padding) method (the core 'sasrec' and 'gru4rec' are supported)"
                )
            del module.item_embedding, module.position_embedding  # MAN's own tables replace them

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        m = self.module
        if hasattr(m, "encode_embeddings"):
            return m.encode_embeddings(x, padding)
        return m.encoder(m.drop(m.norm(x)), padding)  # SASRec.sequence_output after its embedding sum


def backbone_params(name: str, overrides: dict[str, Any], hidden: int, run: "RunContext") -> Any:
    """Validate ``backbone_params`` against the backbone's own params model; ``hidden`` is MAN's D."""
    catalogue = run.plugins.catalogue
    if name == "man":
        raise ConfigError(f"{KEY}: MAN cannot be its own backbone; name a sequence encoder such as 'sasrec'")
    if name not in catalogue.components["encoder"]:
        known = ", ".join(sorted(n for n in catalogue.components["encoder"] if n != "man"))
        raise ConfigError(f"{KEY}: unknown encoder {name!r}; registered: {known}")
    component = catalogue.components["encoder"][name]
    if Capability.GENERATIVE in component.provides:
        raise ConfigError(f"{KEY}: {name!r} is generative; MAN needs a discriminative sequence encoder")
    values = dict(overrides)
    if "hidden" in component.params.model_fields:
        values["hidden"] = hidden
    try:
        return component, component.params.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, prefix="encoder.params.backbone_params", what=f"backbone {name!r}")) from None


def build_backbone(name: str, overrides: dict[str, Any], hidden: int, run: "RunContext") -> EmbeddingBackbone:
    component, params = backbone_params(name, overrides, hidden, run)
    try:
        module = component.factory(params, run)
    except ValueError as exc:  # e.g. hidden not divisible by heads
        raise ConfigError(f"encoder.params.backbone_params: {exc}") from None
    return EmbeddingBackbone(module)
