"""Generation with transformers' ``generate``: G sampled completions of each prompt of a
micro-batch in one call (rollouts) and greedy or low-temperature answers to a batch of prompts
(evaluation), with the generation settings both use and the completion mask that says which
generated tokens count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

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


def left_pad_prompt_inputs(prompt_inputs: Sequence[Mapping[str, torch.Tensor]], pad_token_id: int) -> dict:
    """One batch of several prompts' processor outputs (each of batch size 1), left-padded.

    The per-token entries (``input_ids``, ``attention_mask``, ``mm_token_type_ids``: ``[1, L]``)
    are padded on the left to the longest prompt (with ``pad_token_id``, 0 and 0), so every
    prompt's last token sits in the last column and generation appends after it; the media
    entries (pixel rows, ``*_grid_thw``, ``second_per_grid_ts``) are concatenated in prompt
    order, which is the order the models match them to their placeholder tokens. Image and
    video prompts may be mixed. One prompt is returned as it is (no padding).
    """
    if not prompt_inputs:
        raise ValueError("left_pad_prompt_inputs needs at least one prompt")
    if len(prompt_inputs) == 1:
        return dict(prompt_inputs[0])
    lengths = [int(inputs["input_ids"].shape[1]) for inputs in prompt_inputs]
    longest = max(lengths)
    per_token = {"input_ids": pad_token_id, "attention_mask": 0, "mm_token_type_ids": 0}
    batch: dict = {}
    keys = [key for inputs in prompt_inputs for key in inputs]
    for key in dict.fromkeys(keys):
        values = [inputs[key] for inputs in prompt_inputs if key in inputs]
        if key in per_token:
            if len(values) != len(prompt_inputs):
                raise ValueError(f"{key} is missing from some prompts' inputs")
            batch[key] = torch.cat([
                torch.nn.functional.pad(value, (longest - length, 0), value=per_token[key])
                for value, length in zip(values, lengths)
            ])
        elif all(isinstance(value, torch.Tensor) for value in values):
            batch[key] = torch.cat(values)
        else:
            raise ValueError(f"cannot batch the prompt inputs' {key!r} entries ({type(values[0]).__name__})")
    return batch


def _trim(completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the trailing columns no row uses: the shape one prompt's own ``generate`` call gives."""
    used = int(completion_mask.any(0).nonzero().max()) + 1 if completion_mask.any() else 1
    return completion_ids[:, :used], completion_mask[:, :used]


@torch.no_grad()
def generate_batch_completions(
    model,
    processor,
    prompt_inputs: Sequence[Mapping[str, torch.Tensor]],
    num_generations: int,
    max_completion_length: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Sample ``num_generations`` completions of each of several prompts in one ``generate`` call.

    The prompts are left-padded into one batch (:func:`left_pad_prompt_inputs`); each prompt's
    completions are then cut to its own longest completion, so the shapes are those of
    :func:`generate_completions` on that prompt alone. With one prompt this is that call
    exactly. With several, greedy decoding gives each prompt's own completions (up to float
    rounding on the padded batch), but sampled ones differ from prompt-by-prompt calls under
    the same seed: one random stream serves every row of the batch, in another order.

    Returns:
        per prompt, ``(completion_ids [G, T_i], completion_mask [G, T_i])``.
    """
    if len(prompt_inputs) == 1:
        return [generate_completions(model, processor, prompt_inputs[0], num_generations, max_completion_length,
                                     temperature, top_p)]
    pad_token_id = generation_config(model, processor, max_completion_length, temperature, top_p).pad_token_id
    batch = left_pad_prompt_inputs(prompt_inputs, pad_token_id)
    completion_ids, completion_mask = generate_completions(
        model, processor, batch, num_generations, max_completion_length, temperature, top_p)
    return [
        _trim(completion_ids[rows], completion_mask[rows])
        for rows in (slice(i * num_generations, (i + 1) * num_generations) for i in range(len(prompt_inputs)))
    ]


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
