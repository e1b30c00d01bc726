"""Words of byte-level BPE completions: the unit the rollout statistics count.

Byte-level BPE splits words into pieces; a *word* is the run of tokens from one token that
starts with whitespace (``Ġ``, ``Ċ``) to the next, a tag token (``<|im_end|>``, ``<think>``)
being a word of its own. A word is *selected by a signal* when any of its tokens is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from ..data.rollouts import RolloutRecord

__all__ = ["Word", "all_words", "decode_tokens", "merge_words"]


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE writes each byte as a printable character (transformers'
    ``bytes_to_unicode`` table); inverted, the pieces of a word decode to its exact UTF-8 text.
    Imported on first use: the module pulls in the tokenizers library."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {character: byte for byte, character in bytes_to_unicode().items()}


# A token that is one whole tag: a special token (``<|im_end|>``) or an added tag token
# (``<think>``, ``</answer>`` in some vocabularies) is a word of its own.
_TAG_TOKEN = re.compile(r"^<[^<>\s]+>$")
# Sentence punctuation glued to a word ("red." "first,") is not part of it for counting.
_EDGE_PUNCTUATION = ".,;:!?\"'()[]"


def decode_tokens(tokens: Sequence[str]) -> str:
    """The text of consecutive byte-level BPE tokens. Characters outside the byte table (added
    tokens such as ``<think>``) are taken as they are; invalid UTF-8 becomes U+FFFD."""
    data = bytearray()
    for token in tokens:
        for character in token:
            byte = _byte_decoder().get(character)
            data.extend(character.encode("utf-8") if byte is None else bytes([byte]))
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Word:
    """Tokens ``start`` to ``end - 1`` of a completion, their decoded ``text`` (surrounding
    whitespace removed) and the signals that selected at least one of them."""

    text: str
    start: int
    end: int
    selected_by: frozenset[str]

    @property
    def key(self) -> str:
        """The form words are counted under: lower case, sentence punctuation at either end
        removed (``"Red."`` counts as ``"red"``; a word made only of punctuation stays as it is)."""
        lowered = self.text.lower()
        return lowered.strip(_EDGE_PUNCTUATION) or lowered


def merge_words(tokens: Sequence[str], signal_masks: Mapping[str, Sequence[bool]]) -> list[Word]:
    """Group a completion's tokens into words (see the module docstring). A token that starts
    with whitespace, follows a token that ends with whitespace, or is or follows a whole tag
    token (``<|im_end|>``, ``<think>``) starts a new word. Words made only of whitespace are
    dropped."""
    boundaries = []
    for index, token in enumerate(tokens):
        text = decode_tokens([token])
        previous = tokens[index - 1] if index else None
        if (
            index == 0
            or text[:1].isspace()
            or decode_tokens([previous])[-1:].isspace()
            or _TAG_TOKEN.match(token)
            or _TAG_TOKEN.match(previous)
        ):
            boundaries.append(index)
    boundaries.append(len(tokens))
    words = []
    for start, end in pairwise(boundaries):
        text = decode_tokens(tokens[start:end]).strip()
        if text:
            chosen = frozenset(s for s, mask in signal_masks.items() if any(mask[start:end]))
            words.append(Word(text, start, end, chosen))
    return words


def all_words(rollouts: Iterable[RolloutRecord]) -> list[list[Word]]:
    """The words of every record (see :func:`merge_words`), one list per record."""
    return [merge_words(rollout.tokens, rollout.signal_masks) for rollout in rollouts]
