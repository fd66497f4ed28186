"""mtrec-semantic-id: RQ-VAE semantic item identifiers (papers/gmc.md §3.3) and the gmc/tiger recipes."""

from mtrec_semantic_id.identifier import SemanticIdIdentifier, SemanticIdParams

__version__ = "0.1.0"
__all__ = ["SemanticIdIdentifier", "SemanticIdParams", "__version__"]
