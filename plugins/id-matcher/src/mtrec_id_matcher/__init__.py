"""mtrec-id-matcher: IDP (ID-centric pre-training, papers/idp.md) as an mtrec plugin.

The ``pretrain-match-finetune`` transfer strategy pre-trains an ID-based sequential encoder on the
source domains, fits the cross-domain ID matcher (CDIM), generates the new domains' ID embeddings
from the pre-trained ones and fine-tunes (or deploys) them; the ``idp`` recipe is its default.
"""

__version__ = "0.1.0"
