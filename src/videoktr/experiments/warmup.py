"""Supervised warm-up on reasoning traces: the role the SFT checkpoint plays before RL.

RL from a random or untuned policy wastes its first steps learning the answer format. The
paper starts from Video-R1's SFT checkpoint; on the synthetic world (and on any Video-R1 data
with reasoning traces) this module produces the equivalent: a policy trained by teacher
forcing to write ``<think>...</think><answer>...</answer>`` for each row.

The target of a row is its ``trace`` field when present, else ``<think>{process}</think>``
(when ``process`` is given) followed by ``solution``; the end-of-turn token is appended so the
policy learns to stop. The loss is the mean negative log-likelihood of the target tokens,
computed by the same adapter pass as GRPO's (video encoded once, chunked ``lm_head``).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

import torch

from ..core.signals import DEFAULT_CHUNK_SIZE
from ..data.cycle import CachedShuffleCycle
from ..data.dataset import Sample, VideoR1Dataset
from ..data.prompts import build_prompt_inputs
from ..models import get_adapter, vision_parameters
from ..models.generation import eos_token_ids
from ..rewards.answers import option_texts
from .supervised import supervised_loop


def sft_target(sample: Sample) -> str:
    """The text a row teaches: ``trace``, else ``<think>process</think>`` + ``solution``."""
    trace = sample.row.get("trace")
    if isinstance(trace, str) and trace.strip():
        return trace.strip()
    process = sample.row.get("process")
    prefix = ""
    if isinstance(process, str) and process.strip():
        process = process.strip()
        prefix = process if process.startswith("<think>") else f"<think>{process}</think>"
    return prefix + sample.solution.strip()


@contextmanager
def frozen_vision_encoder(model: torch.nn.Module) -> Iterator[None]:
    """Inside the block, the parameters under a ``visual`` module (the vision encoder and its
    merger) take no gradient; their ``requires_grad`` flags are restored after."""
    vision = [p for p in vision_parameters(model) if p.requires_grad]
    for parameter in vision:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in vision:
            parameter.requires_grad_(True)


def confused_teacher(confusions: Mapping[str, str], rate: float) -> Callable[[Sample], str]:
    """A warm-up target with a teacher's systematic errors, in place of ``sft_target``: in the
    share ``rate`` of the rows whose reasoning ends on a word of ``confusions`` (the word that
    names the answer, "yellow" in "The circle is yellow.</think>"), that word becomes
    ``confusions[word]`` and the answer letter the option naming it; every other target is
    ``sft_target``'s. Which rows is fixed by a hash of the row's id (or problem), so the teacher
    is wrong about the same rows at every pass.

    Why: supervised data distilled from a weaker model carries such errors, and an outcome reward
    can correct them where more of the same supervision cannot. The demo's RL stage has
    reachable headroom only when the warm-up leaves the video-decided word wrong often, on clips
    the encoder reads (``docs/selection.md``)."""
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")

    def target(sample: Sample) -> str:
        text = sft_target(sample)
        process_end = text.find("</think>")
        if process_end < 0:
            return text
        start = end = text.rfind(" ", 0, process_end) + 1
        while end < process_end and text[end].isalnum():  # the word's letters, not its full stop
            end += 1
        word = text[start:end]
        key = str(sample.row.get("id", sample.row.get("problem", ""))).encode()
        if word not in confusions or zlib.crc32(key) / 2**32 >= rate:
            return text
        wrong = confusions[word]
        # The letter the training reward reads as naming that word.
        letters = [letter for letter, option in option_texts(sample.row.get("options")).items()
                   if option == wrong.casefold()]
        if not letters:
            return text
        letter = letters[0]
        return text[:start] + wrong + text[end:process_end] + f"</think><answer>{letter}</answer>"

    return target


@dataclass
class WarmupResult:
    """Per-step mean token NLL, and how many samples were skipped for unreadable media."""

    losses: list[float] = field(default_factory=list)
    skipped: int = 0


def supervised_warmup(
    model: torch.nn.Module,
    processor,
    dataset: VideoR1Dataset,
    steps: int = 100,
    learning_rate: float = 1e-3,
    prompts_per_step: int = 4,
    max_pixels: int | None = None,
    seed: int = 0,
    chunk_size: int | None = DEFAULT_CHUNK_SIZE,
    progress: bool = True,
    warmup_ratio: float = 0.03,
    max_grad_norm: float | None = 1.0,
    freeze_vision_encoder: bool = False,
    token_weights: Callable[[Sample, list[int]], list[float] | None] | None = None,
    target_text: Callable[[Sample], str] = sft_target,
) -> WarmupResult:
    """Teacher-force ``steps`` AdamW updates of ``prompts_per_step`` rows each (cycling
    through a seeded shuffle of the dataset; decoded media are cached, since the warm-up sees
    each sample many times) with ``supervised_loop``: a linear schedule after a
    ``warmup_ratio`` ramp, gradients clipped to ``max_grad_norm``. Returns each step's loss.

    ``freeze_vision_encoder``: train only the language model (``frozen_vision_encoder``). The
    demo does, so that the skills of its earlier stages survive the warm-up's larger steps.
    ``token_weights(sample, target_ids)``: a weight per target token (or None: all 1); the loss
    of a row is then the weighted mean NLL, sum(w * nll) / sum(w). ``target_text(sample)``: the
    text a row teaches (default ``sft_target``; ``confused_teacher`` for a teacher with errors)."""
    if steps < 1 or prompts_per_step < 1:
        raise ValueError(f"steps and prompts_per_step must be positive, got {steps} and {prompts_per_step}")
    if len(dataset) == 0:
        raise ValueError(f"dataset {dataset.dataset_file} has no rows to warm up on")
    adapter = get_adapter(model)
    tokenizer = processor.tokenizer
    end_of_turn = eos_token_ids(model, processor)[0]
    result = WarmupResult()

    def prepare(index: int):
        decoded = dataset.decode(index)  # None (recorded) when the media is unreadable
        if decoded is None:
            result.skipped += 1
            return None
        inputs = build_prompt_inputs(processor, decoded.sample, decoded.media, max_pixels)
        target = tokenizer.encode(target_text(decoded.sample), add_special_tokens=False) + [end_of_turn]
        weights = token_weights(decoded.sample, target) if token_weights is not None else None
        if weights is None:
            weights = [1.0] * len(target)
        if len(weights) != len(target):
            raise ValueError(f"token_weights gave {len(weights)} weights for a target of {len(target)} tokens")
        return inputs, torch.tensor([target]), torch.tensor([weights], dtype=torch.float32)

    def weighted_nll(example, step: int) -> torch.Tensor:
        inputs, target, weights = example
        logps = adapter.policy_logps(model, adapter.prepare(inputs), target.to(adapter.device), chunk_size=chunk_size)
        weights = weights.to(logps.device)
        return -(weights * logps).sum() / weights.sum()

    examples = CachedShuffleCycle(len(dataset), prepare, seed, f"no sample of {dataset.dataset_file} could be decoded")
    with frozen_vision_encoder(model) if freeze_vision_encoder else nullcontext():
        result.losses = supervised_loop(
            model, [p for p in model.parameters() if p.requires_grad], examples, weighted_nll, steps,
            prompts_per_step, learning_rate, schedule="linear", warmup_ratio=warmup_ratio,
            max_grad_norm=max_grad_norm, description="warm-up", progress=progress,
        )
    return result
