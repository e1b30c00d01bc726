"""Qwen2.5-VL: Qwen2-VL plus window attention in the vision encoder and absolute-time M-RoPE.

Window attention stays inside one temporal group (windows are cut per frame group), so the
group permutation remains exact. Temporal positions scale with ``second_per_grid_ts`` (from the
video's fps), which the processor returns and ``get_rope_index`` must receive.
"""

from .base import QwenVLAdapter


class Qwen2_5_VLAdapter(QwenVLAdapter):
    model_types = ("qwen2_5_vl",)
    rope_extra_keys = ("second_per_grid_ts",)
