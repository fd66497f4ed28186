"""Parameters of the ``pretrain-match-finetune`` strategy (``transfer.params`` of the ``idp`` recipe).

Grouped by the step of IDP they steer: pre-training (§2.3), the cross-domain ID matcher (§2.4),
embedding generation (§2.5) and fine-tuning (§2.6).  Where the paper gives no value the default
is ours and the plugin README says why.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mtrec.components import Params


class EncoderChoice(Params):
    """An encoder by registered name with its params (validated by that encoder's params model)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class IDPParams(Params):
    # ---------------------------------------------------------------- §2.6 fine-tuning mode
    mode: Literal["finetune", "zero-shot", "new-encoder", "cold-start"] = Field(
        "finetune",
        description="§2.6: 'zero-shot' (1) deploys the pre-trained encoder with generated embeddings; 'finetune' (2) "
        "fine-tunes both on each target; 'new-encoder' (3) trains the run's `encoder` from scratch on each target, "
        "starting from the generated embeddings; 'cold-start' (§3.8) generates embeddings for items held out of "
        "training within the target domains themselves.",
    )
    pretrain_encoder: EncoderChoice | None = Field(
        None,
        description="Encoder pre-trained on the sources (default: the run's `encoder`). Only mode 'new-encoder' may "
        "differ from `encoder`; its embedding width must equal `encoder`'s.",
    )
    pretrain_epochs: int | None = Field(None, ge=1, description="Pre-training epochs (default training.epochs).")
    pretrain_lr: float | None = Field(None, gt=0, description="Pre-training learning rate (default training.lr).")
    finetune_epochs: int | None = Field(None, ge=1, description="Fine-tuning epochs (default training.epochs).")
    finetune_lr: float | None = Field(None, gt=0, description="Fine-tuning learning rate (default training.lr).")
    finetune_together: bool = Field(
        False,
        description="Fine-tune ONE model on all fine-tuned targets at once (one stage, early-stopped on their "
        "validation average) instead of one model per target; what multi-domain encoders (syncrec, man) need. "
        "Modes 'finetune' and 'new-encoder'.",
    )

    # ---------------------------------------------------------------- ablations (§3.7)
    matcher: bool = Field(
        True, description="false = 'IDP w/o M': no CDIM, target embeddings start at random; only the encoder transfers."
    )
    behavior_loss: bool = Field(
        True, description="false = 'IDP w/o BCL': the matcher is tuned with the text contrastive loss (Eq. 5) only."
    )
    id_text: bool = Field(
        False, description="IDP_ID+t: add the PCA-reduced matcher text vectors (frozen) to the target items' ID embeddings."
    )

    # ---------------------------------------------------------------- §2.4 CDIM
    text_model: str = Field("all-MiniLM-L6-v2", description="Sentence encoder of the matcher (name or local folder).")
    matcher_train: Literal["auto", "full", "head", "none"] = Field(
        "auto",
        description="'full': fine-tune every weight of the sentence encoder (the paper); 'head': keep it frozen and "
        "tune an identity-initialised linear head on its cached item vectors (CPU-sized); 'none': the sentence "
        "encoder as it is; 'auto': full on CUDA, head otherwise.",
    )
    matcher_epochs: int = Field(3, ge=0, description="Passes over the source items when tuning the matcher.")
    matcher_max_steps: int | None = Field(None, ge=1, description="Cap on matcher optimisation steps (tiny profiles).")
    matcher_batch_size: int = Field(64, ge=2, description="Anchor items per step (in-batch negatives, Eq. 5-6).")
    matcher_lr: float | None = Field(None, gt=0, description="Matcher learning rate (default 3e-5 full, 1e-3 head).")
    temperature: float = Field(0.05, gt=0, description="tau of Eq. 5-6 (SimCSE's 0.05).")
    behavior_k: int = Field(5, ge=1, description="k: behavioural positives per source item (top-k by ID embedding).")
    behavior_positives_per_step: int | None = Field(
        None, ge=1, description="Positives encoded per anchor and step, sampled from its k (default: all k)."
    )
    behavior_weight: float = Field(1.0, ge=0, description="Weight of the behaviour loss in Eq. 7 (1 = the paper's sum).")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout of the two views (head mode; full mode uses the encoder's own).")
    max_tokens: int = Field(64, ge=8, description="Token cap of item texts in full mode.")

    # ---------------------------------------------------------------- §2.5 generation
    top_m: int = Field(5, ge=1, description="m: source items whose ID embeddings are averaged per target item (Eq. 8-9).")
    index: Literal["auto", "exact", "hnsw", "ivf"] = Field(
        "auto", description="faiss index of the source items: exact, HNSW or IVF; 'auto' = exact up to index_exact_max."
    )
    index_exact_max: int = Field(100_000, ge=1, description="Largest source catalogue searched exactly under index=auto.")
    index_large: Literal["hnsw", "ivf"] = Field("hnsw", description="Approximate index used above index_exact_max.")
    hnsw_m: int = Field(32, ge=4)
    hnsw_ef_search: int = Field(128, ge=1)
    ivf_nprobe: int = Field(16, ge=1)

    # ---------------------------------------------------------------- §3.8 intra-domain cold start
    cold_fraction: float = Field(0.1, gt=0, lt=1, description="Share of each target domain's items held out (mode cold-start).")

    @model_validator(mode="after")
    def _consistent(self) -> "IDPParams":
        if not self.matcher and self.mode in ("zero-shot", "cold-start"):
            raise ValueError(f"matcher=false leaves mode {self.mode!r} without any embedding for the new items")
        if not self.matcher and self.id_text:
            raise ValueError("id_text adds the matcher's text vectors, so it needs matcher=true")
        if self.finetune_together and self.mode not in ("finetune", "new-encoder"):
            raise ValueError(f"finetune_together=true fine-tunes the targets together, but mode {self.mode!r} "
                             "fine-tunes nothing; use mode 'finetune' or 'new-encoder' (or leave it false)")
        return self
