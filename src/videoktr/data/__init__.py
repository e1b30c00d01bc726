"""The data layer of the video GRPO trainer: decoding, Video-R1 datasets and prompts.

* ``video``: PyAV decoding of sampled frames with exact indices and timing
  (``decode_video``, ``sample_frame_indices``, ``DecodedVideo``), and ``load_image``.
* ``dataset``: Video-R1 ``.json`` / ``.jsonl`` files, validated row by row at load time, media
  decoded on demand with broken files skipped and counted (``VideoR1Dataset``).
* ``cycle``: a dataset's rows in endless seeded reshuffles, each prepared once, for supervised
  loops (``CachedShuffleCycle``).
* ``prompts``: the think/answer prompt and the processor call for Qwen2-VL, Qwen2.5-VL and
  Qwen3-VL, for one sample or a batch of evaluation questions (``build_messages``,
  ``build_prompt_inputs``, ``build_batch_inputs``, ``build_engine_prompt`` for an
  inference engine).
* ``rollouts``: the typed record of one prompt's rollout (``PromptRollout``) and the rollout
  dump's schema (``RolloutRecord``, ``write_rollout_dump``, ``load_rollouts``).
"""

from .dataset import (
    DATA_TYPES,
    PROBLEM_TYPES,
    BadSampleWarning,
    DatasetError,
    MediaSample,
    Sample,
    SkippedMedia,
    SkippedRow,
    VideoR1Dataset,
    load_media,
    resolve_media_path,
)
from .pixels import PixelBudget, pixel_budget_size
from .prompts import (
    ANSWER_FORMAT_INSTRUCTIONS,
    REASONING_INSTRUCTION,
    build_batch_inputs,
    build_engine_prompt,
    build_engine_questions,
    build_messages,
    build_prompt_inputs,
    build_prompt_text,
    format_options,
)
from .rollouts import (
    PromptRollout,
    RolloutDumpError,
    RolloutRecord,
    load_rollouts,
    write_rollout_dump,
)
from .video import (
    DecodedVideo,
    ImageDecodeError,
    VideoDecodeError,
    decode_uniform,
    decode_video,
    load_image,
    sample_frame_indices,
)

__all__ = [
    "ANSWER_FORMAT_INSTRUCTIONS",
    "DATA_TYPES",
    "PROBLEM_TYPES",
    "REASONING_INSTRUCTION",
    "BadSampleWarning",
    "DatasetError",
    "DecodedVideo",
    "ImageDecodeError",
    "MediaSample",
    "PromptRollout",
    "RolloutDumpError",
    "RolloutRecord",
    "Sample",
    "SkippedMedia",
    "SkippedRow",
    "VideoDecodeError",
    "VideoR1Dataset",
    "build_batch_inputs",
    "build_messages",
    "build_engine_prompt",
    "build_engine_questions",
    "build_prompt_inputs",
    "build_prompt_text",
    "decode_uniform",
    "decode_video",
    "format_options",
    "load_image",
    "load_media",
    "load_rollouts",
    "pixel_budget_size",
    "PixelBudget",
    "resolve_media_path",
    "sample_frame_indices",
    "write_rollout_dump",
]
