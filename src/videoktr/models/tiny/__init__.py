"""Tiny random-weight Qwen2-VL, Qwen2.5-VL and Qwen3-VL models, built with nothing downloaded.

Video-KTR's machinery (rollouts, counterfactual forward passes, token attribution, GRPO updates)
has to be exercised end to end against the real Hugging Face model and processor classes, because
that is where the bugs live: placeholder expansion, M-RoPE position ids, ``video_grid_thw``,
``second_per_grid_ts``, deepstack features. Real checkpoints are gigabytes and need the network,
so tests and demos use this package instead. It builds, from config alone:

* a byte-level BPE tokenizer trained in a fraction of a second on a small built-in English corpus,
  carrying the Qwen special tokens and a Qwen2-VL style chat template;
* the family's real processor (``Qwen2VLProcessor`` / ``Qwen2_5_VLProcessor`` /
  ``Qwen3VLProcessor``) with the family's real image and video processors, keeping the real patch,
  temporal-patch and merge sizes but a small pixel budget, so that a clip of 8 frames costs
  16 video tokens at 64x64, 64 at 112x112 and at most 128 at any size;
* a randomly initialised ``*ForConditionalGeneration`` model with a 64-wide, 2-layer text decoder
  and a 2-block vision encoder (every size is a parameter, so benchmarks can scale it up).

Everything is deterministic: the same arguments give the same tokenizer and the same weights.

Calling the processor on video, as transformers 5.24 does it:

* Pass already-decoded frames, one clip per list item: a uint8 ``torch.Tensor`` ``[T, C, H, W]``
  or a numpy array ``[T, H, W, C]``. The video processors here are configured with
  ``do_sample_frames=False``, so every frame passed is kept: ``T`` frames give
  ``video_grid_thw[:, 0] == ceil(T / 2)`` (an odd last frame is repeated). Qwen3-VL's stock
  processor samples by default (``fps=2`` against an assumed 24 fps clip, i.e. it would keep only
  ``min_frames=4`` of 8 frames); we switch that off because callers decode and sample frames
  themselves. Pass ``do_sample_frames=True`` with ``fps=`` or ``num_frames=`` (and
  ``video_metadata``) to have the processor sample instead.
* Pass ``video_metadata={"total_num_frames": T, "fps": fps, "frames_indices": list(range(T))}``
  (one dict per clip, in a list for a batch) where ``fps`` is the frame rate of the frames as
  passed. Without it the processors assume 24 fps: Qwen2.5-VL then gets
  ``second_per_grid_ts = 2 / 24`` and Qwen3-VL writes ``<0.0 seconds>``-style timestamps computed
  at 24 fps (with a warning). Qwen2-VL ignores timing altogether.
* Qwen3-VL expands each ``<|video_pad|>`` into one ``<t seconds><|vision_start|>...<|vision_end|>``
  block per temporal patch, so its prompts hold extra timestamp text tokens and nested
  vision-start/end tokens; the number of ``<|video_pad|>`` tokens is still
  ``prod(video_grid_thw) / merge_size**2`` for every family.
"""

from .build import FAMILIES, build_config, build_processor, build_tiny_model, save_tiny_model
from .corpus import CORPUS
from .tokenizer import ANSWER_TOKENS, CHAT_TEMPLATE, SPECIAL_TOKENS, build_tokenizer

__all__ = [
    "ANSWER_TOKENS",
    "CHAT_TEMPLATE",
    "CORPUS",
    "FAMILIES",
    "SPECIAL_TOKENS",
    "build_config",
    "build_processor",
    "build_tiny_model",
    "build_tokenizer",
    "save_tiny_model",
]
