"""Model adapters: one per family, chosen from ``config.model_type``.

* :mod:`~videoktr.models.base` — the adapter every family shares: prompt preparation, the
  counterfactual variants, scoring and the training pass.
* :mod:`~videoktr.models.prompt` — a prompt and its variants as the adapter sees them, and the
  interface of the two execution strategies:
  :mod:`~videoktr.models.cached_prefix` (the default: prompt once per variant, KV cache shared
  by the completions, chunked ``lm_head``) and :mod:`~videoktr.models.root_forward` (FSDP2 and
  ZeRO-3: every pass through the root forward, in lockstep).
* :mod:`~videoktr.models.qwen2_vl`, :mod:`~videoktr.models.qwen2_5_vl`,
  :mod:`~videoktr.models.qwen3_vl` — what each family adds.
* :mod:`~videoktr.models.generation` — sampling rollouts and answering evaluation prompts.
* :mod:`~videoktr.models.loading` — a policy and its processor from a local directory.
* :mod:`~videoktr.models.lora` — LoRA adapters through ``peft``, the reference with them off.
* :mod:`~videoktr.models.tiny` — tiny random models, a locally trained tokenizer and the real
  processors, for tests and demos with nothing downloaded.

Supporting a new family is one new file with a ``QwenVLAdapter`` subclass, listed below.
"""

from __future__ import annotations

import torch

from .base import QwenVLAdapter, set_encoder_chunking, set_prefill_chunking
from .loading import ModelLoadError, checkpoint_state_dict, load_local_model
from .lora import add_lora, base_model, is_peft_model, reference_mode
from .prompt import TEMPORAL_MODES, VISUAL_MODES
from .qwen2_5_vl import Qwen2_5_VLAdapter
from .qwen2_vl import Qwen2VLAdapter
from .qwen3_vl import Qwen3VLAdapter

ADAPTERS: tuple[type[QwenVLAdapter], ...] = (Qwen2VLAdapter, Qwen2_5_VLAdapter, Qwen3VLAdapter)
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(t for adapter in ADAPTERS for t in adapter.model_types)


def get_adapter(model: torch.nn.Module) -> QwenVLAdapter:
    """The adapter for ``model``'s family, from ``model.config.model_type`` (for a ``peft``
    model, the adapter of the model under it, whose modules hold the LoRA layers)."""
    model = base_model(model)
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    for adapter in ADAPTERS:
        if model_type in adapter.model_types:
            return adapter(model)
    raise ValueError(f"no adapter for model_type {model_type!r}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}")


def vision_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters of the vision encoder and its merger: every parameter under a module
    named ``visual``, which is where all three families keep them (``model.visual.*``)."""
    return [parameter for name, parameter in model.named_parameters() if ".visual." in f".{name}"]


__all__ = [
    "add_lora",
    "base_model",
    "checkpoint_state_dict",
    "is_peft_model",
    "reference_mode",
    "set_encoder_chunking",
    "set_prefill_chunking",
    "ADAPTERS",
    "SUPPORTED_MODEL_TYPES",
    "TEMPORAL_MODES",
    "VISUAL_MODES",
    "ModelLoadError",
    "QwenVLAdapter",
    "get_adapter",
    "load_local_model",
    "vision_parameters",
]
