"""The vllm backend against a real vLLM engine (opt-in: `make test-vllm`, after `make vllm-env`).

A tiny Qwen2.5-VL with head size 32 (the least vLLM's CPU attention takes) is served by
``videoktr.rollout.vllm_server`` from ``.venv-vllm``; the tests check what the engine samples
against the trainer's own model: greedy tokens before and after a weight sync by each path (gloo
broadcast, safetensors files), the sampler's log-probs against the trainer's, two training
steps with ``rollout_backend: vllm`` in one process and in two, and evaluation.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.data.media import write_video
from videoktr.attribution import KeyTokenAttributor
from videoktr.cli import main
from videoktr.models import add_lora, base_model, load_local_model
from videoktr.models.generation import generate_completions
from videoktr.models.tiny import save_tiny_model
from videoktr.rollout import (
    SamplingSettings,
    VLLMRolloutBackend,
    launch_rollout_server,
    vllm_server,
)

from .helpers import requests_for

pytestmark = pytest.mark.vllm

ENGINE_PYTHON = Path(os.environ.get("VIDEOKTR_VLLM_PYTHON", Path(__file__).resolve().parents[2] / ".venv-vllm/bin/python"))
# vLLM's CPU kernels and transformers' round differently: a greedy choice between two tokens
# whose log-probs lie closer than this may go either way (log-probs were seen to differ by < 0.01).
TIE_NATS = 0.05


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny model on disk and a rollout server for it: ``(model_dir, port)``."""
    if not ENGINE_PYTHON.exists():
        pytest.fail(f"{ENGINE_PYTHON} is missing: build the engine's environment with `make vllm-env` first")
    model_dir = save_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("engine") / "model", seed=0,
                                hidden_size=128, num_heads=4, num_kv_heads=2)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    process, port = launch_rollout_server(model_dir, python=ENGINE_PYTHON, port=0, log_path=log)
    yield model_dir, port
    backend = VLLMRolloutBackend(load_local_model(model_dir)[1], port=port, timeout=30)
    backend.shutdown()
    process.wait(timeout=60)


def _trainer_logps(model, processor, prompt_inputs, completion_ids):
    """The trainer's log-probs of each completion token (the attribution pass's real log-probs)."""
    scorer = KeyTokenAttributor(model, processor, signals=())
    return scorer.score(prompt_inputs, completion_ids, torch.ones_like(completion_ids, dtype=torch.bool))["logps"]


def _assert_greedy_agrees(model, processor, request, engine_ids, length):
    """The engine's greedy tokens are the trainer's, except where the trainer's choice and the
    engine's lie within TIE_NATS of each other: from such a position on, either is greedy."""
    hf_ids, _ = generate_completions(model, processor, request.prompt_inputs, 1, length, temperature=0)
    hf, engine = hf_ids[0].tolist(), engine_ids[0].tolist()
    parting = next((i for i, (a, b) in enumerate(zip(hf, engine)) if a != b), None)
    if parting is None:
        assert len(hf) == len(engine), (hf, engine)
        return
    candidates = torch.tensor([hf[: parting + 1], hf[:parting] + [engine[parting]]])
    logps = _trainer_logps(model, processor, request.prompt_inputs, candidates)[:, parting]
    lead = (logps[0] - logps[1]).item()
    assert lead < TIE_NATS, f"greedy tokens part at position {parting}, where the trainer's choice leads by " \
                            f"{lead:.3f} nats: trainer {hf}, engine {engine}"


def test_greedy_tokens_and_logprobs_match_the_trainers_before_and_after_a_weight_sync(served, tmp_path):
    model_dir, port = served
    model, processor = load_local_model(model_dir)
    backend = VLLMRolloutBackend.for_model(model, processor, port=port, timeout=30, weights_dir=tmp_path / "w")
    requests = requests_for(processor)
    greedy = SamplingSettings(num_generations=1, max_completion_length=16, temperature=0)
    for request, sampled in zip(requests, backend.sample(requests, greedy)):
        _assert_greedy_agrees(model, processor, request, sampled.completion_ids, 16)
    # Sampled log-probs are the trainer's, up to kernel rounding.
    sampling = SamplingSettings(num_generations=4, max_completion_length=12)
    assert _largest_logp_gap(model, processor, backend, requests, sampling) < TIE_NATS
    # An update by each path: the engine takes the new weights and samples from them ...
    files = VLLMRolloutBackend.for_model(model, processor, port=port, timeout=30, weights_dir=tmp_path / "w",
                                         weight_sync="safetensors")
    generator = torch.Generator().manual_seed(0)
    for step, (syncing, path) in enumerate([(backend, "gloo_broadcast"), (files, "safetensors")], start=1):
        before = copy.deepcopy(model)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
        assert syncing.sync_weights(model, step=step) == path
        for request, sampled in zip(requests, backend.sample(requests, greedy)):
            _assert_greedy_agrees(model, processor, request, sampled.completion_ids, 16)
        assert _largest_logp_gap(model, processor, backend, requests, sampling) < TIE_NATS
        # ... which the old weights would not have given: the update moved the log-probs far more.
        assert _largest_logp_gap(before, processor, backend, requests, sampling) > 4 * TIE_NATS, path
    files.close()
    backend.close()


def test_a_lora_policy_samples_on_the_engine_with_its_merged_weights(served, tmp_path):
    """LoRA: the engine serves the base architecture, and after a sync samples as the policy with
    its adapters on (not as the base model it started from)."""
    model_dir, port = served
    base, processor = load_local_model(model_dir)
    policy = add_lora(base, r=4).eval()  # peft returns it in training mode: LoRA dropout on
    generator = torch.Generator().manual_seed(1)
    # Trained adapters (B is zero at initialisation), moving the weights about as much as the
    # first test's update does: far larger moves make the engine's CPU kernels and transformers'
    # part by tenths of a nat for a plain model too.
    with torch.no_grad():
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    backend = VLLMRolloutBackend.for_model(base_model(policy), processor, port=port, timeout=30,
                                           weights_dir=tmp_path / "w")
    assert backend.sync_weights(policy, step=7) == "gloo_broadcast"
    requests = requests_for(processor)
    greedy = SamplingSettings(num_generations=1, max_completion_length=16, temperature=0)
    for request, sampled in zip(requests, backend.sample(requests, greedy)):
        _assert_greedy_agrees(policy, processor, request, sampled.completion_ids, 16)
    sampling = SamplingSettings(num_generations=4, max_completion_length=12)
    assert _largest_logp_gap(policy, processor, backend, requests, sampling) < TIE_NATS
    fresh, _ = load_local_model(model_dir)  # the weights the engine had before: far from what it samples now
    assert _largest_logp_gap(fresh, processor, backend, requests, sampling) > 4 * TIE_NATS
    backend.close()


def _largest_logp_gap(model, processor, backend, requests, sampling):
    """The largest |trainer log-prob - engine log-prob| over the tokens the engine samples."""
    gaps = []
    for request, completions in zip(requests, backend.sample(requests, sampling)):
        trainer_logps = _trainer_logps(model, processor, request.prompt_inputs, completions.completion_ids)
        gaps.append((trainer_logps - completions.sampler_logps)[completions.completion_mask].abs().max().item())
    return max(gaps)


@pytest.fixture(scope="module")
def video_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rows = []
    for i in range(4):
        write_video(root / f"clip{i}.mp4", num_frames=16, fps=8, width=64, height=64)
        rows.append({"problem": f"Which shape appears first in clip {i}?", "problem_type": "multiple choice",
                     "options": ["A. circle", "B. square"], "solution": "<answer>A</answer>",
                     "path": f"./clip{i}.mp4", "data_type": "video"})
    (root / "train.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return root / "train.jsonl"


def _train_flags(model_dir, dataset, out, port, *extra):
    return ["--model", str(model_dir), "--dataset", str(dataset), "--output_dir", str(out), "--preset", "video_ktr",
            "--rollout_backend", "vllm", "--vllm_server_port", str(port), "--num_generations", "3",
            "--max_completion_length", "12", "--min_frames", "4", "--max_frames", "8", "--max_steps", "2",
            "--save_steps", "2", "--learning_rate", "1e-3", "--report_to", "none", "--seed", "0",
            "--reward_funcs", "accuracy", "format", "--disable_tqdm", "true", *extra]


def test_two_training_steps_with_the_vllm_backend(served, video_dataset, tmp_path):
    model_dir, port = served
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["train", *_train_flags(model_dir, video_dataset, out, port, "--per_device_train_batch_size", "2",
                                            "--rollout_dump_steps", "1")])
    assert code == 0
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    logs = [entry for entry in state["log_history"] if "loss" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert math.isfinite(entry["loss"]) and math.isfinite(entry["grad_norm"])
        assert "time/weight_sync_gloo_broadcast_s" in entry  # the path the weights took, in every log
        assert entry["rollout/logp_mismatch_mean"] < TIE_NATS
        assert entry["rollout/truncated_share"] < 0.05
        assert entry["completion_length"] > 0
    dumps = sorted((out / "rollouts").glob("*.jsonl"))
    assert len(dumps) == 2 and all(path.read_text().strip() for path in dumps)


def test_two_lora_training_steps_with_the_vllm_backend(served, video_dataset, tmp_path):
    """``use_peft`` with the engine: it samples from the merged weights after every step, so the
    sampler's log-probs stay the policy's (LoRA dropout off, or it would move them itself)."""
    model_dir, port = served
    out = tmp_path / "lora"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["train", *_train_flags(model_dir, video_dataset, out, port, "--per_device_train_batch_size", "2",
                                            "--use_peft", "true", "--lora_r", "4", "--lora_dropout", "0.0")])
    assert code == 0
    assert (out / "checkpoint-2" / "adapter_model.safetensors").exists()
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    logs = [entry for entry in state["log_history"] if "loss" in entry]
    assert len(logs) == 2
    for entry in logs:
        assert "time/weight_sync_gloo_broadcast_s" in entry
        assert entry["rollout/logp_mismatch_mean"] < TIE_NATS


def test_two_processes_each_get_their_own_rollouts(served, video_dataset, tmp_path):
    """Two trainer processes (gloo) against one server: each samples its own prompts, the main
    one sends the weights, and both stay in step (tests/train/ddp_worker.py checks)."""
    from tests.train.test_distributed import launch_two_processes

    model_dir, port = served
    findings = launch_two_processes(
        "ddp_worker.py",
        _train_flags(model_dir, video_dataset, tmp_path / "run", port, "--per_device_train_batch_size", "1",
                     "--use_cpu", "true"),
        tmp_path,
    )
    assert findings["world_size"] == 2 and findings["global_step"] == 2
    first, second = findings["prompts_per_rank"]
    assert len(first) == len(second) == 2 and not set(first) & set(second)
    assert findings["max_weight_change"] > 0 and findings["max_weight_difference"] == 0.0
    logged = [entry for entry in findings["log_history"] if "loss" in entry]
    assert logged and all("time/weight_sync_gloo_broadcast_s" in entry for entry in logged)


def test_evaluation_on_the_engine_answers_as_the_model_does(served, tmp_path):
    """`videoktr eval run --backend vllm` against `--backend hf`, greedy, on the same questions,
    frames and pixel budget: the same answers, except where the two part at a near-tie."""
    from videoktr.data import build_batch_inputs, build_engine_questions
    from videoktr.eval import EvalSettings, get_benchmark
    from videoktr.eval.generation import decode_clip
    from videoktr.synthetic import generate_dataset

    model_dir, port = served
    generate_dataset(tmp_path / "world", 20, seed=0, test_fraction=0.3, progress=False)
    outputs = {}
    for backend in ("hf", "vllm"):
        predictions = tmp_path / f"{backend}.jsonl"
        args = ["eval", "run", "--benchmark", "synthetic", "--data", str(tmp_path / "world"), "--model", str(model_dir),
                "--output", str(predictions), "--max-new-tokens", "24", "--temperature", "0", "--num_frames", "4",
                "--backend", backend, "--vllm_server_port", str(port), "--batch_size", "2"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert main([*args, "--limit", "3"]) == 0
            assert main(args) == 0  # resumable on the engine as on the model
        outputs[backend] = {row["id"]: row["output"] for row in map(json.loads, predictions.read_text().splitlines())}
    assert outputs["hf"].keys() == outputs["vllm"].keys() and len(outputs["hf"]) == 6
    differing = [key for key in outputs["hf"] if outputs["hf"][key] != outputs["vllm"][key]]
    # Each answer that differs must part at a near-tie: compare the token ids of both, greedy.
    model, processor = load_local_model(model_dir)
    backend = VLLMRolloutBackend.for_model(model, processor, port=port, timeout=30)
    settings = EvalSettings(num_frames=4, temperature=0, max_new_tokens=24)
    items = {item.id: item for item in get_benchmark("synthetic").load_items(tmp_path / "world")}
    for key in differing:
        clip = decode_clip(items[key].video, settings)
        (question,) = build_engine_questions(processor, [items[key].prompt], [clip], settings.pixel_budget)
        reply = vllm_server.request(backend.connection, {"op": "generate", "prompts": [{**question, "seed": 0}], "sampling": {
            "n": 1, "temperature": 0, "top_p": 1.0, "max_tokens": 24, "stop_token_ids": backend.eos_token_ids}})
        request = SimpleNamespace(prompt_inputs=build_batch_inputs(processor, [items[key].prompt], [clip],
                                                                    settings.pixel_budget))
        engine_ids = torch.tensor([reply["completions"][0][0]["token_ids"]])
        _assert_greedy_agrees(model, processor, request, engine_ids, 24)
    backend.close()
