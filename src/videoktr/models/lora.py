"""LoRA adapters on a policy, through ``peft`` (an optional extra: ``pip install videoktr[peft]``).

The policy becomes a ``peft`` model whose base weights are frozen and whose adapters train.
The KL term's reference is the same model with its adapters switched off (``reference_mode``),
so no second copy of the weights is held; attribution scores the policy with them on. Why
``peft`` rather than our own low-rank layers: it is what TRL and the users' checkpoints use, and
its adapters save, load and merge in the format ``from_pretrained`` reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

#: The language model's attention and MLP projections; the vision encoder's own ``gate_proj``,
#: ``up_proj`` and ``down_proj`` (Qwen2.5-VL) are left out by the ``language_model`` prefix.
DEFAULT_TARGET_MODULES = r".*language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def is_peft_model(model: torch.nn.Module) -> bool:
    """Whether ``model`` is a ``peft`` model (without importing peft when it is not installed)."""
    return hasattr(model, "peft_config") and callable(getattr(model, "get_base_model", None))


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The ``...ForConditionalGeneration`` under a ``peft`` model (its LoRA layers are injected
    there, so running it runs the adapters), or ``model`` itself."""
    return model.get_base_model() if is_peft_model(model) else model


def add_lora(model: torch.nn.Module, r: int = 16, alpha: int = 32, dropout: float = 0.05,
             target_modules: Sequence[str] | str | None = None) -> torch.nn.Module:
    """``model`` with LoRA adapters (rank ``r``, scale ``alpha / r``) on ``target_modules``
    (default ``DEFAULT_TARGET_MODULES``); only the adapters require gradients."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise ImportError("use_peft needs peft: pip install 'videoktr[peft]'") from error
    targets = DEFAULT_TARGET_MODULES if target_modules is None else (
        target_modules if isinstance(target_modules, str) else list(target_modules))
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none")
    return get_peft_model(model, config)


@contextlib.contextmanager
def reference_mode(model: torch.nn.Module) -> Iterator[None]:
    """Inside, ``model`` (a ``peft`` model) computes as its base: the adapters are off."""
    with model.disable_adapter():
        yield


@torch.no_grad()
def merged_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A ``peft`` model's weights as the merged model holds them, under the base model's names
    (``base_model(model).state_dict()`` without ``.base_layer``): each adapted layer's weight
    plus its active adapters' delta (peft's ``get_delta_weight``, ``scale * B @ A``), the adapter
    tensors left out. What an inference engine serving the base architecture needs after each
    step (``rollout_backend: vllm``); nothing of the trained model is changed (no merge in place)."""
    from peft.tuners.lora import LoraLayer

    base = base_model(model)
    weights = {name.replace(".base_layer.", "."): tensor for name, tensor in base.state_dict().items()
               if ".lora_" not in name}
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer) and not module.merged:
            key = f"{name}.weight"
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    weights[key] = weights[key] + module.get_delta_weight(adapter).to(weights[key].dtype)
    return weights
