import pytest
import torch

from videoktr.analysis import SelectionQuality, token_labels
from videoktr.models.tiny import build_tokenizer

WORDS = [("<think>The", "neutral"), ("red", "visual"), ("square", "visual"), ("appeared", "temporal"),
         ("first.</think><answer>A</answer>", "temporal")]


def test_every_token_takes_the_label_of_its_word_except_tags_and_punctuation():
    tokenizer = build_tokenizer()
    ids, labels = token_labels(tokenizer, WORDS)
    assert ids == tokenizer.encode(" ".join(w for w, _ in WORDS), add_special_tokens=False)
    assert len(labels) == len(ids)
    # decode token by token and check each piece against its word's label
    text = " ".join(w for w, _ in WORDS)
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    seen = set()
    for (start, end), label in zip(offsets, labels):
        piece = text[start:end].strip()
        if not piece or piece.startswith("<") or not any(c.isalnum() for c in piece):
            assert label == "neutral", (piece, label)  # spaces, punctuation, tags
            seen.add(piece)
            continue
        owners = [(w, l) for w, l in WORDS if piece in w.replace("<think>", "").replace("</answer>", "")]
        assert any(l == label for _, l in owners), (piece, label)
    assert {"<think>", "</think>", "<answer>", "</answer>", "."} <= seen
    assert labels.count("visual") >= 2 and labels.count("temporal") >= 2
    # the last word keeps its label on its letters ("first", the answer letter), not on its tags
    pieces = [text[a:b].strip() for a, b in offsets]
    assert [p for p, l in zip(pieces, labels) if l == "temporal"][-1] == "A"


def test_selection_quality_against_hand_counts():
    quality = SelectionQuality("visual")
    labels = ["neutral", "visual", "visual", "temporal", "neutral"]
    quality.add(torch.tensor([False, True, False, True, False]), labels)
    assert quality.hits == 1 and quality.selected == 2 and quality.labelled == 2 and quality.tokens == 5
    assert quality.precision == pytest.approx(0.5)
    assert quality.recall == pytest.approx(0.5)
    assert quality.random_precision == pytest.approx(2 / 5)
    assert quality.random_recall == pytest.approx(2 / 5)
    quality.add(torch.tensor([True, False]), ["visual", "neutral"])
    assert quality.precision == pytest.approx(2 / 3) and quality.recall == pytest.approx(2 / 3)
    assert quality.to_dict()["tokens"] == 7
