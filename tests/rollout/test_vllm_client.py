"""The vllm backend's client side against a stand-in server speaking the same wire (no vLLM
needed): engine prompts, padding and masks of the replies, the weight-sync messages."""

from __future__ import annotations

import threading
from multiprocessing.connection import Listener
from pathlib import Path

import pytest
import torch

from videoktr.data import build_engine_prompt
from videoktr.models import checkpoint_state_dict
from videoktr.models.tiny import build_tiny_model
from videoktr.rollout import SamplingSettings, VLLMRolloutBackend, vllm_server
from videoktr.rollout.vllm_backend import weight_buckets

from .helpers import requests_for


class StandInEngine:
    """Answers as the server does, with fixed completions; records every message."""

    def __init__(self, protocol=vllm_server.PROTOCOL_VERSION, model=None):
        self.model = model
        self.messages = []
        self.protocol = protocol

    def handle(self, message):
        self.messages.append(message)
        if message["op"] == "info":
            return {"ok": True, "protocol": self.protocol, "model": "stand-in", "device": "cpu",
                    "vllm_version": "0", "weights_version": -1}
        if message["op"] == "generate":
            n = message["sampling"]["n"]
            completions = [[{"token_ids": list(range(10, 10 + 2 + row)), "logprobs": [-0.5] * (2 + row)}
                            for row in range(n)] for _ in message["prompts"]]
            return {"ok": True, "completions": completions}
        if message["op"] == "load_weights":
            assert any(Path(message["path"]).glob("*.safetensors"))
            self.loaded = type(self.model).from_pretrained(message["path"]).state_dict()
            return {"ok": True, "seconds": 0.0}
        # The collective path, with the server's own functions (all but the engine's reload).
        if message["op"] == "open_weight_group":
            port, self.wait_for_group = vllm_server.host_weight_group("127.0.0.1", message["backend"],
                                                                      message["timeout"])
            return {"ok": True, "port": port}
        if message["op"] == "receive_weights":
            group = self.wait_for_group()
            self.received = dict(vllm_server.receive_buckets(group, message["buckets"], "cpu"))
            return {"ok": True, "seconds": 0.0}
        return {"ok": False, "error": f"unknown op {message['op']!r}"}


@pytest.fixture
def stand_in_server():
    def start(engine):
        listener = Listener(("127.0.0.1", 0), authkey=vllm_server.authkey())
        stop = threading.Event()
        threading.Thread(target=vllm_server._accept, args=(listener, engine, stop), daemon=True).start()
        started.append((listener, stop))
        return listener.address[1]

    started = []
    yield start
    for listener, stop in started:
        stop.set()
        listener.close()


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model("qwen2_5_vl", seed=0)


def test_engine_prompt_is_the_processors_prompt_before_the_placeholders_are_expanded(tiny):
    _, processor = tiny
    video_pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for request in requests_for(processor):
        prompt = build_engine_prompt(processor, request.sample, request.media)
        ids = request.prompt_inputs["input_ids"][0].tolist()
        collapsed = [t for i, t in enumerate(ids) if not (t in (video_pad, image_pad) and i and ids[i - 1] == t)]
        assert prompt["prompt_token_ids"] == collapsed
        if prompt["media_type"] == "video":
            assert torch.equal(torch.from_numpy(prompt["media"]), request.media.frames.permute(0, 2, 3, 1))
            assert prompt["metadata"] == request.media.metadata()
            assert prompt["processor_kwargs"]["do_sample_frames"] is False
        else:
            assert prompt["media"].shape == (64, 48, 3) and prompt["metadata"] is None


def test_completions_come_back_right_padded_with_the_samplers_logprobs(tiny, stand_in_server):
    model, processor = tiny
    engine = StandInEngine()
    backend = VLLMRolloutBackend.for_model(model, processor, port=stand_in_server(engine), timeout=10)
    requests = requests_for(processor, seed=3)
    sampled = backend.sample(requests, SamplingSettings(num_generations=3, max_completion_length=8, temperature=0.7))
    assert len(sampled) == 3
    for completions in sampled:
        assert completions.completion_ids.shape == (3, 4)
        assert completions.completion_mask.sum(1).tolist() == [2, 3, 4]
        assert (completions.completion_ids[0, 2:] == processor.tokenizer.pad_token_id).all()
        assert torch.equal(completions.sampler_logps[completions.completion_mask],
                           torch.full((9,), -0.5))
    generate = next(m for m in engine.messages if m["op"] == "generate")
    assert generate["sampling"] == {"n": 3, "temperature": 0.7, "top_p": 1.0, "max_tokens": 8,
                                    "stop_token_ids": [processor.tokenizer.eos_token_id]}
    assert [p["seed"] for p in generate["prompts"]] == [3, 4, 5]
    backend.close()


def test_weights_are_written_as_safetensors_for_the_server_and_old_snapshots_removed(tiny, stand_in_server, tmp_path):
    model, processor = tiny
    engine = StandInEngine(model=model)
    barrier = []
    backend = VLLMRolloutBackend(processor, port=stand_in_server(engine), timeout=10, weights_dir=tmp_path / "w",
                                 weight_sync="safetensors", wait_for_everyone=lambda: barrier.append(1))
    assert "safetensors files" in backend.describe()
    assert backend.sync_weights(model, 0) == "safetensors"
    assert backend.sync_weights(model, 1) == "safetensors"
    loads = [m for m in engine.messages if m["op"] == "load_weights"]
    assert [m["version"] for m in loads] == [0, 1] and len(barrier) == 2
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["step-000001"]
    state = model.state_dict()  # the snapshot loads back as the policy, weight for weight
    assert engine.loaded.keys() == state.keys()
    for name, tensor in engine.loaded.items():
        assert torch.equal(tensor, state[name]), name
    # Another process only waits for the main one's sync.
    follower = VLLMRolloutBackend(processor, port=backend.address[1], timeout=10, weights_dir=tmp_path / "w",
                                  weight_sync="safetensors", is_main_process=False,
                                  wait_for_everyone=lambda: barrier.append(2))
    follower.sync_weights(model, 2)
    assert len([m for m in engine.messages if m["op"] == "load_weights"]) == 2 and barrier[-1] == 2


def test_a_missing_server_and_a_protocol_mismatch_are_explained(tiny, stand_in_server):
    _, processor = tiny
    with pytest.raises(ConnectionError, match="videoktr rollout-server --model"):
        VLLMRolloutBackend(processor, port=1, timeout=0.5)
    with pytest.raises(RuntimeError, match="speaks protocol 99"):
        VLLMRolloutBackend(processor, port=stand_in_server(StandInEngine(protocol=99)), timeout=10)


def test_weights_are_broadcast_over_a_group_with_the_server_named_as_the_checkpoint(tiny, stand_in_server, tmp_path):
    """``weight_sync: collective``: the main process forms a gloo group with the server once and
    broadcasts every weight in flat buckets; the server gets each one bit for bit, under the
    name ``save_pretrained`` writes it with. Nothing is written to disk."""
    model, processor = tiny
    engine = StandInEngine(model=model)
    barrier = []
    backend = VLLMRolloutBackend(processor, port=stand_in_server(engine), timeout=30, weights_dir=tmp_path / "w",
                                 bucket_mb=0.05, wait_for_everyone=lambda: barrier.append(1))
    assert "gloo broadcast" in backend.describe()
    expected = checkpoint_state_dict(model)
    assert any(name.startswith("model.layers.") for name in expected)  # Qwen2.5-VL's checkpoint names
    for step in (0, 1):
        with torch.no_grad():
            next(model.parameters()).add_(1.0)  # the policy moves between syncs
        assert backend.sync_weights(model, step) == "gloo_broadcast"
        expected = checkpoint_state_dict(model)
        assert engine.received.keys() == expected.keys()
        for name, tensor in expected.items():
            assert torch.equal(engine.received[name], tensor), name
    ops = [m["op"] for m in engine.messages if m["op"] != "info"]
    assert ops == ["open_weight_group", "receive_weights", "receive_weights"]  # the group is formed once
    buckets = [m for m in engine.messages if m["op"] == "receive_weights"][-1]["buckets"]
    assert len(buckets) > 1 and all(bucket["dtype"] == "float32" for bucket in buckets)
    assert len(barrier) == 2 and not (tmp_path / "w").exists()
    backend.close()


def test_weight_buckets_keep_order_and_dtype_and_respect_the_size():
    weights = {"a": torch.zeros(10), "b": torch.zeros(10), "c": torch.zeros(30), "d": torch.zeros(5, dtype=torch.bfloat16),
               "e": torch.zeros(5)}
    buckets = weight_buckets(weights, bucket_bytes=80)
    assert [[name for name, _ in bucket] for bucket in buckets] == [["a", "b"], ["c"], ["d"], ["e"]]
    with pytest.raises(ValueError, match="weight_sync must be one of"):
        VLLMRolloutBackend(None, port=1, weight_sync="nfs")  # before any connection is tried


@pytest.mark.parametrize("weight_sync", ["collective", "safetensors"])
def test_a_lora_policy_sends_its_merged_weights_under_the_base_names(stand_in_server, tmp_path, weight_sync):
    """With LoRA the engine gets what ``merge_and_unload`` would give, named as the base
    checkpoint, without the trained model being merged (its adapters stay separate)."""
    import copy

    from videoktr.models import add_lora

    base, processor = build_tiny_model("qwen2_5_vl", seed=0)
    policy = add_lora(base, r=4)
    with torch.no_grad():  # trained adapters (B starts at zero, which would hide a missing delta)
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.1)
    merged = copy.deepcopy(policy).merge_and_unload()
    engine = StandInEngine(model=merged)
    backend = VLLMRolloutBackend(processor, port=stand_in_server(engine), timeout=30, weights_dir=tmp_path / "w",
                                 weight_sync=weight_sync, wait_for_everyone=lambda: None)
    backend.sync_weights(policy, 0)
    received = engine.received if weight_sync == "collective" else engine.loaded
    expected = checkpoint_state_dict(merged) if weight_sync == "collective" else merged.state_dict()
    assert received.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(received[name], tensor, atol=1e-6, rtol=1e-6, msg=name)
    fresh = build_tiny_model("qwen2_5_vl", seed=0)[0]  # the same initial weights, without adapters
    unmerged = checkpoint_state_dict(fresh) if weight_sync == "collective" else fresh.state_dict()
    moved = [name for name, tensor in received.items() if not torch.equal(tensor, unmerged[name])]
    assert moved and all(name.endswith("proj.weight") for name in moved)  # the adapted projections only
    assert any(".lora_" in name for name, _ in policy.named_parameters())  # the policy was not merged
    backend.close()
