"""Attribution quality against ground truth: do the signals pick the words they should?

On the synthetic world every word of a reference trace is labelled ``visual``, ``temporal``
or ``neutral``. Teacher-forcing the trace through ``KeyTokenAttributor`` gives each token's
scores; selecting the top ``r`` share of one signal and comparing with the labels gives

    precision = |selected ∩ labelled L| / |selected|
    recall    = |selected ∩ labelled L| / |labelled L|

next to what a random selection of the same size would get on average: precision equal to
the share of L-labelled tokens, recall equal to the selected share. A signal that tracks its
label beats both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

LABELS = ("visual", "temporal", "neutral")


def token_labels(tokenizer, words: Sequence[tuple[str, str]]) -> tuple[list[int], list[str]]:
    """Token ids of the words joined by single spaces, and each token's label.

    A token takes the label of the word whose *core* characters it covers: letters and digits
    outside tags. A token made only of spaces, punctuation or tags (``"."``, ``"</think>"``,
    ``"<answer>"``) is ``neutral`` whatever word it touches: no change to the video or to its
    order changes it, so no signal should find it (the answer word ``"red.</think><answer>A
    </answer>"`` is labelled by its ``red`` and ``A`` tokens only).
    """
    text = " ".join(word for word, _ in words)
    owner = []  # per character: index of the word whose core it belongs to, or -1
    for index, (word, _) in enumerate(words):
        inside_tag = False
        for character in word:
            if character == "<":
                inside_tag = True
            owner.append(index if character.isalnum() and not inside_tag else -1)
            if character == ">":
                inside_tag = False
        if index < len(words) - 1:
            owner.append(-1)  # the separating space
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = []
    for start, end in encoding["offset_mapping"]:
        inside = [owner[p] for p in range(start, min(end, len(owner))) if owner[p] != -1]
        labels.append(words[inside[0]][1] if inside else "neutral")
    return list(encoding["input_ids"]), labels


@dataclass
class SelectionQuality:
    """Counts over every trace scored, and the ratios they give."""

    label: str
    selected: int = 0
    labelled: int = 0
    hits: int = 0
    tokens: int = 0

    def add(self, selected: torch.Tensor, labels: Sequence[str]) -> None:
        labelled = torch.tensor([label == self.label for label in labels], dtype=torch.bool)
        selected = selected.bool().cpu()
        self.selected += int(selected.sum())
        self.labelled += int(labelled.sum())
        self.hits += int((selected & labelled).sum())
        self.tokens += len(labels)

    @property
    def precision(self) -> float:
        return self.hits / self.selected if self.selected else 0.0

    @property
    def recall(self) -> float:
        return self.hits / self.labelled if self.labelled else 0.0

    @property
    def random_precision(self) -> float:
        """Expected precision of a uniformly random selection: the label's share of tokens."""
        return self.labelled / self.tokens if self.tokens else 0.0

    @property
    def random_recall(self) -> float:
        """Expected recall of a uniformly random selection of the same size: the selected share."""
        return self.selected / self.tokens if self.tokens else 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "label": self.label,
            "precision": self.precision,
            "recall": self.recall,
            "random_precision": self.random_precision,
            "random_recall": self.random_recall,
            "selected_tokens": self.selected,
            "labelled_tokens": self.labelled,
            "tokens": self.tokens,
        }
