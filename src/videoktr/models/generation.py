"""Generation with transformers' ``generate``: G sampled completions of one prompt (rollouts) and
greedy or low-temperature answers to a batch of prompts (evaluation), with the generation
settings both use and the completion mask that says which generated tokens count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from transformers import GenerationConfig


def completion_mask_from_eos(completion_ids: torch.Tensor, eos_token_ids: Iterable[int]) -> torch.Tensor:
    """True up to and including each row's first end-of-sequence token; all true without one.

    The end token itself is trained on (the policy must learn to stop), what follows it is not.
    """
    eos = torch.tensor(sorted(set(eos_token_ids)), device=completion_ids.device)
    is_eos = torch.isin(completion_ids, eos)
    length = completion_ids.shape[1]
    positions = torch.arange(length, device=completion_ids.device).expand_as(completion_ids)
    first_eos = torch.where(is_eos, positions, length).min(dim=1, keepdim=True).values
    return positions <= first_eos


def eos_token_ids(model, processor) -> list[int]:
    """The ids that end a completion: the generation config's, else the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = processor.tokenizer.eos_token_id
    ids = configured if isinstance(configured, (list, tuple)) else [configured]
    ids = [int(i) for i in ids if i is not None]
    if not ids:
        raise ValueError("the model's generation config and the tokenizer define no eos_token_id")
    return ids


def generation_config(
    model,
    processor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    num_return_sequences: int = 1,
) -> GenerationConfig:
    """Pure temperature / nucleus sampling (``top_k`` and repetition penalties off, so samples
    come from the distribution the loss assumes), or greedy decoding when ``temperature <= 0``;
    stopping on the model's end tokens and padding with the tokenizer's pad id."""
    eos_ids = eos_token_ids(model, processor)
    pad_id = processor.tokenizer.pad_token_id
    common = dict(
        max_new_tokens=max_new_tokens,
        num_return_sequences=num_return_sequences,
        eos_token_id=eos_ids,
        pad_token_id=pad_id if pad_id is not None else eos_ids[0],
    )
    if temperature <= 0:
        return GenerationConfig(do_sample=False, **common)
    return GenerationConfig(
        do_sample=True, temperature=temperature, top_p=top_p, top_k=0, repetition_penalty=1.0, **common
    )


@torch.no_grad()
def generate_completions(
    model,
    processor,
    prompt_inputs: Mapping[str, torch.Tensor],
    num_generations: int,
    max_completion_length: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``num_generations`` completions of one prompt.

    Pure temperature / nucleus sampling: ``top_k`` and repetition penalties are switched off so
    the rollouts come from the distribution the loss assumes.

    Returns:
        ``completion_ids`` ``[G, T]`` (right-padded with the pad id) and ``completion_mask``
        ``[G, T]`` (true up to and including the first end token).
    """
    config = generation_config(model, processor, max_completion_length, temperature, top_p, num_generations)
    device = next(model.parameters()).device
    inputs = {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in prompt_inputs.items()}
    prompt_length = inputs["input_ids"].shape[1]
    sequences = model.generate(**inputs, generation_config=config)
    completion_ids = sequences[:, prompt_length:]
    if completion_ids.shape[1] == 0:  # cannot happen with max_new_tokens >= 1, but keep shapes valid
        completion_ids = torch.full((sequences.shape[0], 1), config.pad_token_id, dtype=sequences.dtype, device=device)
    return completion_ids, completion_mask_from_eos(completion_ids, config.eos_token_id)


@torch.no_grad()
def generate_texts(
    model,
    processor,
    inputs: Mapping[str, torch.Tensor],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
) -> list[str]:
    """One answer per prompt of a processed batch (``data.build_batch_inputs``), decoded with
    special tokens skipped; greedy when ``temperature <= 0`` (see ``generation_config``)."""
    config = generation_config(model, processor, max_new_tokens, temperature, top_p)
    device = next(model.parameters()).device
    inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
    prompt_length = inputs["input_ids"].shape[1]
    sequences = model.generate(**inputs, generation_config=config)
    return processor.batch_decode(
        sequences[:, prompt_length:], skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
