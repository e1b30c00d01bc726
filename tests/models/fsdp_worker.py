"""Run by tests/models/test_fsdp.py with 2 CPU processes (torchrun, gloo): FSDP2 on a tiny model.

Each process shards a tiny model with ``fully_shard`` (every decoder layer and vision block its
own unit, then the root: embeddings, ``lm_head``, norms, patch embedding and merger stay at the
root, where FSDP gathers them only inside the root forward) and keeps an unsharded copy. Then:

* attribution scores on the sharded model equal the unsharded model's fast-path scores; rank 0
  scores a video and rank 1 an image (no temporal signal), so the placeholder passes that keep
  the processes in lockstep are exercised;
* the training forward's log-probs and the gradients, gathered from the shards, equal the
  unsharded ones (FSDP averages the gradients over processes; so does the reference);
* ``generate`` with per-process completion lengths finishes (transformers turns ``synced_gpus``
  on for modules ``fully_shard`` manages) and matches the unsharded model's completions,
  sampled with the same seed.

Rank 0 writes the largest differences, per family and check, as JSON to ``argv[1]``.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import warnings
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

from tests.models.test_attribution import make_completions, make_video, process
from videoktr import KeyTokenAttributor
from videoktr.models import get_adapter
from videoktr.models.generation import generate_completions
from videoktr.models.tiny import build_tiny_model


def shard(model: torch.nn.Module) -> None:
    for module in list(model.modules()):
        if type(module).__name__ in model._no_split_modules:  # decoder layers, vision blocks
            fully_shard(module)
    fully_shard(model)


def max_diff(actual: torch.Tensor, expected: torch.Tensor) -> float:
    both_nan = torch.isnan(actual) & torch.isnan(expected)
    if both_nan.all():
        return 0.0
    return (actual - expected)[~both_nan].abs().max().item()


def check_family(family: str, rank: int, world: int) -> dict:
    model, processor = build_tiny_model(family, seed=0)
    reference = copy.deepcopy(model)
    shard(model)
    findings = {"root_forward": get_adapter(model).root_forward, "reference_fast": not get_adapter(reference).root_forward}

    if rank == 0:
        inputs = process(processor, video=make_video(0))
    else:
        inputs = process(processor, image=torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(1), dtype=torch.uint8))
    ids, mask = make_completions(model, seed=1 + rank)

    # Attribution: every signal, both counterfactual flavours (reusing vs re-encoding).
    for visual_mode, temporal_mode in (("zero_embeddings", "permute_groups"), ("zero_pixels", "raw_frames")):
        options = {"visual_mode": visual_mode, "temporal_mode": temporal_mode, "num_shuffles": 2, "seed": 3, "chunk_size": 5}
        sharded = KeyTokenAttributor(model, processor, **options).score(inputs, ids, mask)
        plain = KeyTokenAttributor(reference, processor, **options).score(inputs, ids, mask)
        for name in ("logps", "visual", "temporal", "entropy"):
            findings[f"score/{visual_mode}/{name}"] = max_diff(sharded[name], plain[name])
        findings[f"temporal_nan/{visual_mode}"] = bool(torch.isnan(sharded["temporal"]).all())

    # The training forward and its gradients.
    adapter, plain_adapter = get_adapter(model), get_adapter(reference)
    for share_prefix in (True, False):
        model.zero_grad(set_to_none=True)
        reference.zero_grad(set_to_none=True)
        logps = adapter.policy_logps(model, adapter.prepare(inputs), ids, chunk_size=4, share_prefix=share_prefix)
        (logps * mask).sum().backward()
        expected = plain_adapter.policy_logps(reference, plain_adapter.prepare(inputs), ids, chunk_size=4, share_prefix=True)
        (expected * mask).sum().backward()
        findings[f"policy_logps/share_prefix={share_prefix}"] = max_diff(logps.detach()[mask], expected.detach()[mask])
        worst, missing, visual, local_vs_mean = 0.0, 0, 0.0, 0.0
        sharded_params = dict(model.named_parameters())
        for name, param in reference.named_parameters():
            if param.grad is None:
                continue
            averaged = param.grad.clone()
            dist.all_reduce(averaged)
            averaged /= world
            local_vs_mean = max(local_vs_mean, (param.grad - averaged).abs().max().item())
            grad = sharded_params[name].grad
            if grad is None:
                missing += 1
                continue
            full = grad.full_tensor()
            worst = max(worst, (full - averaged).abs().max().item())
            if "visual" in name:
                visual = max(visual, full.abs().max().item())
        findings[f"grad/share_prefix={share_prefix}"] = worst
        findings[f"grad_missing/share_prefix={share_prefix}"] = missing
        findings[f"grad_visual_max/share_prefix={share_prefix}"] = visual  # the encoder is trained too
        findings[f"grad_local_vs_mean/share_prefix={share_prefix}"] = local_vs_mean  # ranks differ: averaging shows
    model.zero_grad(set_to_none=True)

    # Generation: rank 1 asks for more tokens, so rank 0 must keep stepping with it.
    register_fsdp_forward_method(model, "generate")  # as transformers' Trainer does under FSDP
    length = 3 + 3 * rank
    torch.manual_seed(5)
    sharded_ids, _ = generate_completions(model, processor, inputs, 2, length)
    torch.manual_seed(5)
    plain_ids, _ = generate_completions(reference, processor, inputs, 2, length)
    findings["generate_equal"] = bool(torch.equal(sharded_ids, plain_ids))
    return findings


def main() -> None:
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    dist.init_process_group("gloo", timeout=timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    families = sys.argv[2:]
    results = {family: check_family(family, rank, world) for family in families}
    gathered = [None] * world
    dist.all_gather_object(gathered, results)
    if rank == 0:
        with open(sys.argv[1], "w") as handle:
            json.dump({"world_size": world, "per_rank": gathered}, handle)
    dist.destroy_process_group()
    # Leave without the interpreter's teardown, where a native thread still joinable now and then
    # aborts a process on CPU ("terminate called without an active exception") after the work
    # is done, which the launcher reports as a failed run (benchmarks/distributed_check.py too).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
