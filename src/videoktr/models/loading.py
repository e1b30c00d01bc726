"""Loading a policy and its processor from a local directory: never a hub download, never
remote code, weights from safetensors."""

from __future__ import annotations

from pathlib import Path

import torch


class ModelLoadError(ValueError):
    """The model path is not a loadable model directory; the message says what to do."""


def load_local_model(path: str | Path, bf16: bool = False):
    """``(model, processor)`` from a local directory written by ``save_pretrained`` (a real
    checkpoint, or ``videoktr tiny-model``), in float32 or, with ``bf16``, bfloat16."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    directory = Path(path)
    if not (directory / "config.json").is_file():
        raise ModelLoadError(
            f"model={str(path)!r} is not a model directory (no config.json there); videoktr loads models "
            "from a local path: download the checkpoint first, or try `videoktr tiny-model --out DIR`"
        )
    dtype = torch.bfloat16 if bf16 else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(directory, dtype=dtype, local_files_only=True, trust_remote_code=False)
    processor = AutoProcessor.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
    return model, processor
