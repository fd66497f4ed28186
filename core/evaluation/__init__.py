"""Evaluation: candidate protocols, rank-based metrics and the per-domain report."""
