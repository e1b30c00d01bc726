"""One prompt as the adapters see it, its input variants, and the interface of the two
execution strategies that run them.

A *prompt* (``PromptInputs``) is one processor output of batch 1: text tokens around one video
or image. A *variant* (``PromptVariant``) is what the decoder is given for it: the tokens plus
visual features, real or altered (the video zeroed, its groups permuted), or pixels that the
forward pass encodes itself. An ``ExecutionStrategy`` runs variants through the model:

* ``CachedPrefixStrategy`` (``models/cached_prefix.py``), the default: encoder and decoder
  called as submodules, the prompt run once per variant and its KV cache shared by the ``G``
  completions, ``lm_head`` applied in chunks;
* ``RootForwardStrategy`` (``models/root_forward.py``), under FSDP2 and DeepSpeed ZeRO-3:
  every pass through the model's root forward, every process running the same passes.

The adapter (``models/base.py``) chooses one when it is built and delegates to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..core.signals import TokenLogStats

VISUAL_MODES = ("zero_embeddings", "drop_tokens", "zero_pixels")
TEMPORAL_MODES = ("permute_groups", "raw_frames")

# Keys of a processor's output that describe the prompt; anything else is ignored.
PROMPT_KEYS = (
    "input_ids",
    "attention_mask",
    "mm_token_type_ids",
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
    "second_per_grid_ts",
)
# Pixel tensors of a prompt and the grid each is encoded with.
PIXEL_GRIDS = (("pixel_values", "image_grid_thw"), ("pixel_values_videos", "video_grid_thw"))


@dataclass
class PromptInputs:
    """One prompt as the processor produced it, batch 1, on the model's device, padding removed."""

    input_ids: torch.Tensor  # [1, P]
    mm_token_type_ids: torch.Tensor  # [1, P]: 0 text, 1 image, 2 video
    pixel_values: torch.Tensor | None = None
    image_grid_thw: torch.Tensor | None = None
    pixel_values_videos: torch.Tensor | None = None
    video_grid_thw: torch.Tensor | None = None
    second_per_grid_ts: torch.Tensor | None = None

    @property
    def num_temporal_groups(self) -> int:
        """Temporal patch groups of the prompt's video (0 without a video)."""
        return 0 if self.video_grid_thw is None else int(self.video_grid_thw[0, 0])


@dataclass
class PromptVariant:
    """A prompt as the decoder sees it: tokens plus (possibly altered) visual features."""

    input_ids: torch.Tensor  # [1, P']
    mm_token_type_ids: torch.Tensor  # [1, P']
    encoder_outputs: dict = field(default_factory=dict)  # "image"/"video" -> encoder output
    image_grid_thw: torch.Tensor | None = None
    video_grid_thw: torch.Tensor | None = None
    second_per_grid_ts: torch.Tensor | None = None
    #: root-forward strategy only: pixel inputs (``pixel_values``/``pixel_values_videos`` and
    #: their grids) the root forward encodes itself, for variants that re-encode
    #: (``zero_pixels``, ``raw_frames``); ``encoder_outputs`` is then empty.
    pixel_inputs: dict = field(default_factory=dict)


def pixel_kwargs(source: PromptInputs | Mapping, repeat: int = 1) -> dict:
    """The root forward's pixel arguments of a ``PromptInputs`` (or a variant's
    ``pixel_inputs`` mapping); grids repeated ``repeat`` times (one copy per sequence)."""
    get = source.get if isinstance(source, Mapping) else lambda key: getattr(source, key)
    kwargs = {}
    for pixels, grid in PIXEL_GRIDS:
        if get(pixels) is not None:
            kwargs[pixels] = get(pixels)
            kwargs[grid] = get(grid).repeat(repeat, 1)
    return kwargs


class ExecutionStrategy(Protocol):
    """How an adapter runs its passes; see the module docstring for the two implementations."""

    #: whether every process must run the same passes (collectives pair up across processes):
    #: a caller then runs ``QwenVLAdapter.placeholder_variant`` passes for the ones it skips.
    lockstep: bool

    def encode(self, prompt: PromptInputs) -> dict:
        """The encoder outputs of the prompt's image and video (``"image"``/``"video"`` keys)."""

    def reencoded_variant(self, prompt: PromptInputs, features: dict, pixels: dict) -> PromptVariant:
        """The real variant with the pixel tensors in ``pixels`` (``pixel_values``,
        ``pixel_values_videos``) replaced and encoded again."""

    def score_completions(
        self, variant: PromptVariant, completion_ids: torch.Tensor, chunk_size: int | None,
        with_entropy: bool, temperature: float, with_gradient_weight: bool = False,
    ) -> TokenLogStats:
        """No-grad scoring: log-probs ``[G, T]`` (and entropy, gradient weight) of the
        completions given ``variant`` (``core.signals.token_log_stats``)."""

    def policy_logits(
        self, forward: Callable, prompt: PromptInputs, completion_ids: torch.Tensor, share_prefix: bool
    ) -> torch.Tensor:
        """The training pass: ``[G, T, vocab]`` logits of the completions, with gradient."""
