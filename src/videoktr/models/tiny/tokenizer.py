"""A tiny Qwen2-style byte-level BPE tokenizer, trained locally in a fraction of a second.

It is a real ``Qwen2Tokenizer`` with Qwen2's normaliser and pre-tokeniser, the Qwen control
tokens and a Qwen2-VL style chat template, so tokenisation and chat formatting behave like the
real checkpoints' with a vocabulary of hundreds of pieces instead of ~151k.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast, Qwen2Tokenizer

from .corpus import CORPUS

__all__ = ["ANSWER_TOKENS", "CHAT_TEMPLATE", "SPECIAL_TOKENS", "build_tokenizer"]

# Control tokens in the order the real Qwen vocabularies number them (the real ones sit at
# 151643, 151644, 151645, 151652, 151653, 151655, 151656); here they follow the trained BPE vocab.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Reasoning/answer tags: single tokens, so reward functions and key-token attribution can find
# them by id, but not special, so that decoding with skip_special_tokens=True keeps them (as in
# Qwen3's real vocabulary, where <think> and </think> are added but not special tokens).
ANSWER_TOKENS = ("<think>", "</think>", "<answer>", "</answer>")

# The pre-tokenizer split of Qwen2's tokenizer (transformers.models.qwen2.tokenization_qwen2), so
# training sees the same word pieces the real Qwen2Tokenizer pipeline will produce at run time.
_QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Equivalent to the Qwen2-VL chat template (also what Qwen2.5-VL ships): a default system turn,
# `<|im_start|>role\n...<|im_end|>\n` turns, string or typed-list content, one vision placeholder
# per image/video item (the processor expands `<|image_pad|>` / `<|video_pad|>` to the grid's
# token count), optional "Picture n: " / "Video n: " labels with `add_vision_id=True`.
CHAT_TEMPLATE = (
    "{%- set counts = namespace(image=0, video=0) -%}"
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' or 'image' in item or 'image_url' in item -%}"
    "{%- set counts.image = counts.image + 1 -%}"
    "{%- if add_vision_id -%}{{- 'Picture ' + counts.image|string + ': ' -}}{%- endif -%}"
    "{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif item['type'] == 'video' or 'video' in item -%}"
    "{%- set counts.video = counts.video + 1 -%}"
    "{%- if add_vision_id -%}{{- 'Video ' + counts.video|string + ': ' -}}{%- endif -%}"
    "{{- '<|vision_start|><|video_pad|><|vision_end|>' -}}"
    "{%- elif 'text' in item -%}"
    "{{- item['text'] -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)

def build_tokenizer(
    corpus: Iterable[str] | None = None, vocab_size: int = 512
) -> PreTrainedTokenizerFast:
    """Train a tiny Qwen2-style byte-level BPE tokenizer, so nothing has to be downloaded.

    It is a real ``Qwen2Tokenizer`` (the class every Qwen-VL processor is paired with on the Hub),
    with Qwen2's normaliser and pre-tokeniser, so tokenisation behaves like the real one, only
    with a vocabulary of ``vocab_size`` BPE pieces instead of ~151k. Training is deterministic.

    The Qwen control tokens (``SPECIAL_TOKENS``) get the ids right after the BPE pieces, in the
    real vocabulary's order, as single added special tokens; ``ANSWER_TOKENS`` follow as added
    non-special tokens. ``eos`` is ``<|im_end|>`` (what chat generation stops on) and ``pad`` is
    ``<|endoftext|>``, as in the real Qwen-VL instruct tokenizers; there is no BOS token.
    """
    texts = list(CORPUS if corpus is None else corpus)
    if not texts:
        raise ValueError("corpus must contain at least one text")
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size <= len(alphabet):
        raise ValueError(
            f"vocab_size must exceed the {len(alphabet)}-symbol byte alphabet, got {vocab_size}"
        )

    trainer_model = Tokenizer(BPE())
    trainer_model.normalizer = normalizers.NFC()
    trainer_model.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(_QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, initial_alphabet=alphabet, show_progress=False
    )
    trainer_model.train_from_iterator(texts, trainer=trainer)

    bpe_state = json.loads(trainer_model.to_str())["model"]
    vocab: dict[str, int] = dict(bpe_state["vocab"])
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in bpe_state["merges"]]
    # Reserve the control tokens' ids in the model vocabulary, so their numbering is fixed by us
    # rather than by the order in which the tokenizer base class happens to register them.
    for token in SPECIAL_TOKENS:
        vocab[token] = len(vocab)

    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(SPECIAL_TOKENS),
        model_max_length=32768,
    )
    tokenizer.add_tokens(list(ANSWER_TOKENS), special_tokens=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
