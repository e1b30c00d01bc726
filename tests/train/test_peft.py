"""LoRA through peft (``use_peft``): only adapter weights learn, the reference is the base model
with no second copy held, attribution sees the adapters, and checkpoints save, resume and merge."""

import json
import warnings

import pytest
import torch
from safetensors.torch import load_file

from videoktr.cli import main
from videoktr.models import get_adapter, load_local_model, reference_mode
from videoktr.train import load_config

from .conftest import train_args
from .test_trainer import build_trainer, fresh_rollouts

pytest.importorskip("peft")  # in the dev extra: always there under make test

LORA = ("--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0.0", "--beta", "0.04")


def _lora_names(model):
    return {name for name, _ in model.named_parameters() if "lora_" in name}


def test_only_adapter_weights_receive_gradient_and_no_reference_copy_is_held(tiny_model_dir, dataset_file, tmp_path):
    trainer = build_trainer(tiny_model_dir, dataset_file, tmp_path, *LORA)
    policy = trainer._unwrapped()
    assert trainer.ref_model is None  # the reference is the policy with its adapters off
    trainable = {name for name, parameter in policy.named_parameters() if parameter.requires_grad}
    assert trainable and trainable == _lora_names(policy)
    assert all(".language_model." in name for name in trainable)  # not the vision encoder
    with torch.no_grad():  # adapters that move the output (peft starts B at zero)
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
    rollouts = fresh_rollouts(trainer)
    trainer.compute_loss(trainer.model, rollouts).backward()
    with_grad = {name for name, parameter in policy.named_parameters() if parameter.grad is not None}
    assert with_grad == trainable and all(policy.get_parameter(name).grad.abs().sum() > 0 for name in with_grad)
    # Reference log-probs are the base model's: a model loaded without adapters gives the same.
    base, _ = load_local_model(tiny_model_dir)
    for rollout in rollouts:
        expected = trainer._attributor(base, (), 0).score(rollout.prompt_inputs, rollout.completion_ids,
                                                          rollout.completion_mask)["logps"]
        torch.testing.assert_close(rollout.ref_logps, expected, atol=1e-5, rtol=1e-5)
        # ... and the policy's own (attribution, old log-probs) are the adapted model's, which differ.
        assert (rollout.old_logps - expected)[rollout.completion_mask].abs().max() > 1e-3
        with reference_mode(policy):
            adapter = get_adapter(policy)
            off = adapter.policy_logps(policy, adapter.prepare(rollout.prompt_inputs), rollout.completion_ids,
                                       chunk_size=None)
        torch.testing.assert_close(off.detach().masked_fill(~rollout.completion_mask, 0.0), expected,
                                   atol=1e-5, rtol=1e-5)


def test_train_save_resume_and_merge(tiny_model_dir, dataset_file, tmp_path):
    from peft import PeftModel

    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["train", *train_args(tiny_model_dir, dataset_file, out, *LORA, "--learning_rate", "1e-2", "--lr_scheduler_type", "constant")]) == 0
        checkpoint = out / "checkpoint-2"
        assert (checkpoint / "adapter_model.safetensors").exists()
        assert not (checkpoint / "model.safetensors").exists()  # the adapters only
        # Resuming continues from the saved adapters.
        assert main(["train", *train_args(tiny_model_dir, dataset_file, out, *LORA, "--learning_rate", "1e-2", "--lr_scheduler_type", "constant",
                                          "--max_steps", "3", "--resume_from_checkpoint", "latest")]) == 0
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    # ... exactly: the same adapters as three steps without a stop.
    straight = tmp_path / "straight"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["train", *train_args(tiny_model_dir, dataset_file, straight, *LORA, "--learning_rate", "1e-2", "--lr_scheduler_type", "constant",
                                          "--max_steps", "3", "--save_steps", "3")]) == 0
    resumed, continuous = (load_file(path / "checkpoint-3" / "adapter_model.safetensors") for path in (out, straight))
    assert resumed.keys() == continuous.keys() and resumed
    for name, tensor in continuous.items():
        torch.testing.assert_close(resumed[name], tensor, atol=1e-6, rtol=1e-5, msg=name)
    # The trained adapters merge into the base weights and load back with from_pretrained.
    base, processor = load_local_model(tiny_model_dir)
    adapted = PeftModel.from_pretrained(base, out / "checkpoint-3")
    merged = adapted.merge_and_unload()
    merged.save_pretrained(tmp_path / "merged")
    processor.save_pretrained(tmp_path / "merged")
    reloaded, _ = load_local_model(tmp_path / "merged")
    fresh, _ = load_local_model(tiny_model_dir)
    moved = [name for name, tensor in reloaded.state_dict().items()
             if not torch.equal(tensor, fresh.state_dict()[name])]
    assert moved and all(".language_model." in name for name in moved)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-5, rtol=1e-5)


def test_lora_keys_are_checked(tmp_path):
    for flags, message in ((["--lora_r", "0"], "lora_r"), (["--lora_dropout", "1.5"], "lora_dropout")):
        with pytest.raises(ValueError, match=message):
            load_config(["--model", "m", "--dataset", "d", "--output_dir", str(tmp_path), "--use_peft", "true", *flags])
