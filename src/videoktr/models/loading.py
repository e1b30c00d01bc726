"""Loading a policy and its processor from a local directory: never a hub download, never
remote code, weights from safetensors (a pickled checkpoint is refused by torch's
``weights_only`` loading)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch


class ModelLoadError(ValueError):
    """The model path is not a loadable model directory; the message says what to do."""


def _model_type(directory: Path, path: str | Path) -> str:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as error:  # unreadable config.json, or a model needing remote code
        raise ModelLoadError(f"model={str(path)!r}: its config.json cannot be read: {error}") from error
    return getattr(config, "model_type", None) or "unknown"


def load_local_model(path: str | Path, bf16: bool = False):
    """``(model, processor)`` from a local directory written by ``save_pretrained`` (a real
    checkpoint, or ``videoktr tiny-model``), in float32 or, with ``bf16``, bfloat16.

    Raises ``ModelLoadError`` naming the directory and the reason: no ``config.json``, a model
    family videoktr has no adapter for, code that would have to run from the checkpoint, or
    weights that cannot be loaded safely.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from . import SUPPORTED_MODEL_TYPES

    directory = Path(path)
    if not (directory / "config.json").is_file():
        raise ModelLoadError(
            f"model={str(path)!r} is not a model directory (no config.json there); videoktr loads models "
            "from a local path: download the checkpoint first, or try `videoktr tiny-model --out DIR`"
        )
    model_type = _model_type(directory, path)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(
            f"model={str(path)!r} is a {model_type!r} model; videoktr trains and evaluates the video LLM "
            f"families {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    dtype = torch.bfloat16 if bf16 else torch.float32
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            directory, dtype=dtype, local_files_only=True, trust_remote_code=False
        )
        processor = AutoProcessor.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
    except pickle.UnpicklingError as error:  # torch's weights_only loading refused what the pickle holds
        raise ModelLoadError(
            f"model={str(path)!r} holds pickled weights that would run code when loaded, which videoktr refuses; "
            "use a checkpoint in safetensors format"
        ) from error
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"model={str(path)!r} cannot be loaded: {error}") from error
    return model, processor


def checkpoint_state_dict(model: torch.nn.Module, state_dict: dict | None = None) -> dict[str, torch.Tensor]:
    """``model``'s weights named and shaped as ``save_pretrained`` writes them (tied copies
    dropped, the family's renames reverted: Qwen2(.5)-VL checkpoints say ``model.layers`` where
    the module says ``model.language_model.layers``), without writing anything: what an
    inference engine loading the checkpoint format expects. ``state_dict``: a full one already
    gathered (FSDP, ZeRO-3); default ``model.state_dict()``.

    Uses transformers' own save-time steps (``remove_tied_weights_from_state_dict``,
    ``revert_weight_conversion``) rather than a copy of their rules, so it follows them."""
    from transformers.modeling_utils import (
        remove_tied_weights_from_state_dict,
        revert_weight_conversion,
    )

    state_dict = dict(model.state_dict() if state_dict is None else state_dict)
    for ignored in getattr(model, "_keys_to_ignore_on_save", None) or ():
        state_dict.pop(ignored, None)
    state_dict = remove_tied_weights_from_state_dict(state_dict, model)
    return revert_weight_conversion(model, state_dict)
