"""Qwen3-VL: 16-pixel patches, learned position embeddings, DeepStack and timestamped frames.

Two things differ from Qwen2-VL and are handled by the shared machinery:

* DeepStack: the vision encoder also returns features of intermediate layers, added to the
  decoder's first hidden states at the visual positions. They have the same row layout as the
  merged embeddings, so the counterfactuals zero or permute them alike (``map_features``).
* Timestamps: the processor writes each temporal group as its own ``<t seconds>`` +
  ``<|vision_start|>...<|vision_end|>`` block. Timestamps describe positions in time, not
  content, so they stay where they are when the groups' contents are permuted.
"""

from .base import QwenVLAdapter


class Qwen3VLAdapter(QwenVLAdapter):
    model_types = ("qwen3_vl",)
