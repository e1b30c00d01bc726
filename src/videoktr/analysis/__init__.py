"""Analysis of which tokens the signals select: ground-truth quality, statistics, reports."""

from .ground_truth import LABELS, SelectionQuality, token_labels

__all__ = ["LABELS", "SelectionQuality", "token_labels"]
