"""Classic sequential-recommendation baselines as an mtrec plugin (GRU4Rec, popularity)."""

__version__ = "0.1.0"
