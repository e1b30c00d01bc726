"""Defaults that more than one part of videoktr uses: each is written here once, and the data
layer, the trainer's configuration, the evaluation runner and the CLI read it from here.

Frame sampling of training videos follows Video-R1 (2 frames per second, 4 to 16 frames);
evaluation generation follows the benchmarks' own Qwen-VL settings (Video-Holmes, Video-R1:
16 uniformly sampled frames, temperature 0.1, top-p 0.001, up to 1,024 new tokens). The
scoring passes' chunk size is the core's (``core.signals.DEFAULT_CHUNK_SIZE``).
"""

from __future__ import annotations

# ---------------------------------------------------------------- frame sampling (training)
FPS = 2.0
"""Frames sampled per second of a training video."""
MIN_FRAMES = 4
"""Fewest frames sampled per video (a short clip is sampled faster)."""
MAX_FRAMES = 16
"""Most frames sampled per video (a long clip is sampled slower)."""

# ---------------------------------------------------------------- pixel budgets (the official Video-KTR code)
VIDEO_FRAME_PIXELS = 128 * 28 * 28
"""Pixels of every video frame after resizing in the official Video-KTR code, in training and in
``eval_bench.py`` (its bundled qwen-vl-utils sets VIDEO_MIN_PIXELS = VIDEO_MAX_PIXELS = this, so
small videos are scaled up to it): the 7B recipes' and ``videoktr eval run``'s
``video_min_pixels`` and ``video_max_pixels``."""
IMAGE_MAX_PIXELS = 256 * 28 * 28
"""Most pixels of an image after resizing there (its MAX_PIXELS): the recipes' ``image_max_pixels``."""

# ---------------------------------------------------------------- evaluation generation
EVAL_NUM_FRAMES = 16
"""Frames per video, sampled uniformly over the whole video (16, 32 or 64 in the papers)."""
EVAL_TEMPERATURE = 0.1
"""Sampling temperature of evaluation answers; 0 is greedy."""
EVAL_TOP_P = 0.001
"""Nucleus mass of evaluation answers (with 0.1 this is nearly greedy, as the papers run it)."""
EVAL_MAX_NEW_TOKENS = 1024
"""Longest evaluation answer, in tokens."""

# ---------------------------------------------------------------- the synthetic world and its experiments
WORLD_FPS = 4.0
"""Frame rate of the synthetic world's clips (``videoktr synth``)."""
WORLD_TEST_FRACTION = 0.2
"""Share of the synthetic world's rows in its test split (``videoktr synth``)."""
DEMO_OUTPUT_DIR = "demo_output"
"""Where ``videoktr demo`` writes its world, report and figures."""
ABLATION_OUTPUT_DIR = "ablation_output"
"""Where ``videoktr ablate`` writes its runs and tables."""
ABLATION_SEEDS = (0, 1, 2)
"""The RL seeds every arm of ``videoktr ablate`` runs with."""
