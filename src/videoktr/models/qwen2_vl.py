"""Qwen2-VL: 14-pixel patches, temporal patch groups of 2 frames, M-RoPE positions from the grid."""

from .base import QwenVLAdapter


class Qwen2VLAdapter(QwenVLAdapter):
    """Everything Qwen2-VL needs is the shared machinery: its vision encoder attends within
    each temporal group and its ``get_rope_index`` takes ids, token types and grids only."""

    model_types = ("qwen2_vl",)
