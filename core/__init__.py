"""mtrec: multi-target cross-domain sequential recommendation on one pluggable engine."""

from mtrec.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
