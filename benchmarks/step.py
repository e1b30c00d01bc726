"""One RL step, GRPO against key-token RL (video_ktr), with each backend that samples rollouts.

    python benchmarks/step.py            # the realistic shape, a table
    python benchmarks/step.py --json     # one JSON object (grpo_step_s, ktr_step_s, time_ratio, ...)
    python benchmarks/step.py --quick    # a smaller shape, a few minutes on CPU
    python benchmarks/step.py --rounds 3 # more rounds: a tighter median on a noisy machine
    python benchmarks/step.py --lora     # also video_ktr with LoRA adapters, against full fine-tuning

The shape is the attribution benchmark's (``benchmarks/attribution.py``: a ~28M-parameter
Qwen2.5-VL, 16 frames of 224x448, 1,024 video tokens), one prompt, G = 8 completions of 128
tokens: video-dominated, as video RL is. Each (backend, preset) pair runs in its own process,
``videoktr``'s trainer for 1 + 3 optimizer steps (1 + 2 with ``--quick``); the first pays
one-time costs, the others are measured: the step's wall time (from one step's end to the
next, rollouts included), the trainer's per-stage times (``time/generation_s``, ``time/reward_s``,
``time/attribution_s``, ``time/loss_s``), and the process's peak memory above its level after
the trainer was built (CUDA: ``max_memory_allocated``; CPU: resident set size sampled every
millisecond). The runs go in ``--rounds`` rounds, the presets alternating within each (grpo,
video_ktr, grpo, ...), so that a slow spell of a shared machine falls on both; reported are
the medians over every measured step of every round and each round's own time ratio
(``time_ratio_rounds``) to show the spread.

On CPU the peak comes from one more run per (backend, preset) with ``MALLOC_MMAP_THRESHOLD_``
fixed at 1 MiB: glibc otherwise raises its threshold as large buffers are freed and then keeps
later ones on a heap it seldom returns, so the resident size tracks the order of past
allocations (a 5% swing between presets doing the same work was measured) instead of the
memory in use. That setting slows every large allocation (the step took 1.6x as long), so
those runs are not timed.

``--lora`` adds ``video_ktr`` with LoRA adapters (``use_peft``, the default rank 16) on the ``hf``
backend and compares its memory above the loaded policy with full fine-tuning's, whose
reference copy, gradients and optimizer states all count there (``*_peak_with_reference_mb``,
``lora_memory_ratio``). A random model almost never emits its end token, so every completion runs to 128
tokens and both presets score the same number of tokens.

Backends: ``hf`` always; ``vllm`` when the engine's environment exists (``make vllm-env``; pass
``--vllm_python`` for another), with one rollout server started for the whole benchmark. The
server's own memory is its process's and is not in the trainer's peak. ``time_ratio`` and
``memory_ratio`` compare ``video_ktr`` with ``grpo`` on the ``hf`` backend; ``*_tokens_per_s``
are completion tokens per second of the generation stage of the ``grpo`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attribution import SHAPES, PeakMemory, build_model_and_video, cuda_available  # noqa: E402

PRESETS = ("grpo", "video_ktr")
LORA_RUN = "video_ktr_lora"  # --lora: video_ktr with LoRA adapters (use_peft) instead of full fine-tuning
STAGES = ("generation_s", "reward_s", "attribution_s", "loss_s")
DEFAULT_VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"


def write_inputs(directory: Path, shape_name: str) -> tuple[Path, Path]:
    """The benchmark's model (saved) and a one-row dataset whose video is the shape's frames."""
    import av
    import numpy as np

    shape = SHAPES[shape_name]
    model, processor, _, frames, _ = build_model_and_video(shape, "qwen2_5_vl", "cpu")
    model_dir = directory / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    video = directory / "clip.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=2)
        stream.height, stream.width = frames.shape[2], frames.shape[3]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for frame in frames.permute(0, 2, 3, 1).numpy().astype(np.uint8):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    row = {"problem": "What happened first, and why?", "problem_type": "multiple choice",
           "options": ["A. the ball fell", "B. the door opened", "C. the light went out", "D. nothing"],
           "solution": "<answer>A</answer>", "path": "./clip.mp4", "data_type": "video"}
    dataset = directory / "train.jsonl"
    dataset.write_text(json.dumps(row) + "\n")
    return model_dir, dataset


def run_child(args: argparse.Namespace) -> dict:
    """Two optimizer steps of one preset on one backend in this process; the second measured."""
    import warnings

    from transformers import TrainerCallback

    from videoktr.data.dataset import VideoR1Dataset
    from videoktr.models import load_local_model
    from videoktr.train import load_config
    from videoktr.train.trainer import VideoGRPOTrainer

    warnings.simplefilter("ignore")
    shape = SHAPES[args.shape]
    frames, height, width = shape["frames"], shape["height"], shape["width"]
    flags = [
        "--model", args.model, "--dataset", args.dataset, "--output_dir", args.output_dir,
        "--preset", args.preset.removesuffix("_lora"), *(["--use_peft", "true"] if args.preset == LORA_RUN else []),
        "--rollout_backend", args.backend, *(["--vllm_server_port", str(args.port)] if args.backend == "vllm" else []),
        "--num_generations", str(shape["completions"]), "--max_completion_length", str(shape["completion_length"]),
        "--per_device_train_batch_size", "1", "--max_steps", str(1 + shape["repeats"]), "--save_strategy", "no",
        "--report_to", "none",
        "--fps", "2", "--min_frames", str(frames), "--max_frames", str(frames),
        "--video_max_pixels", str(height * width), "--video_min_pixels", str(height * width),
        "--disable_tqdm", "true", "--seed", "0",
    ]
    if args.device == "cpu":
        flags += ["--use_cpu", "true"]
    config = load_config(flags)
    model, processor = load_local_model(config.model)
    dataset = VideoR1Dataset(config.dataset, fps=config.fps, min_frames=config.min_frames, max_frames=config.max_frames)
    step_ends = []

    class StepClock(TrainerCallback):
        """The trainer samples a step's rollouts before its on_step_begin: a step is timed from
        the previous step's end to its own."""

        def on_step_end(self, *unused, **kwargs):
            step_ends.append(time.perf_counter())

    before_trainer = _current_bytes(args.device)  # the reference copy (full fine-tuning) comes after
    trainer = VideoGRPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor,
                               callbacks=[StepClock()])
    with PeakMemory(args.device) as memory:
        trainer.train()
    measured = [entry for entry in trainer.state.log_history if "time/generation_s" in entry][1:]

    sync_key = next((key for key in measured[-1] if key.startswith("time/weight_sync_")), None)
    return {
        "step_s": [later - earlier for earlier, later in zip(step_ends, step_ends[1:])],
        "stages": {name: [entry.get(f"time/{name}", 0.0) for entry in measured] for name in STAGES},
        "peak_mb": memory.peak_mb,
        "peak_with_reference_mb": (memory.peak - before_trainer) / 2**20,
        "completion_tokens": [entry["completion_length"] * shape["completions"] for entry in measured],
        "weight_sync_s": [entry[sync_key] for entry in measured] if sync_key else None,
        "logp_mismatch_mean": ([entry["rollout/logp_mismatch_mean"] for entry in measured]
                               if "rollout/logp_mismatch_mean" in measured[-1] else None),
    }


def _current_bytes(device: str) -> int:
    import torch

    return torch.cuda.memory_allocated() if device.startswith("cuda") else PeakMemory._rss()


def summarise(rounds: list[dict]) -> dict:
    """One (backend, preset)'s rounds as one run: medians over all measured steps, the largest peak."""
    def pooled(key):
        return [value for run in rounds for value in run[key]]

    stages = {name: statistics.median(value for run in rounds for value in run["stages"][name]) for name in STAGES}
    tokens = statistics.median(pooled("completion_tokens"))
    return {
        "step_s": statistics.median(pooled("step_s")),
        "steps_measured": len(pooled("step_s")),
        "stages": stages,
        "peak_mb": max(run["peak_mb"] for run in rounds),
        "peak_with_reference_mb": max(run["peak_with_reference_mb"] for run in rounds),
        "completion_tokens": tokens,
        "tokens_per_s": tokens / stages["generation_s"],
        "weight_sync_s": statistics.median(pooled("weight_sync_s")) if rounds[0]["weight_sync_s"] else None,
        "logp_mismatch_mean": statistics.median(pooled("logp_mismatch_mean")) if rounds[0]["logp_mismatch_mean"] else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller shape")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each (backend, preset), alternating presets")
    parser.add_argument("--lora", action="store_true",
                        help="also video_ktr with LoRA adapters (use_peft) on the hf backend, against full fine-tuning")
    parser.add_argument("--device", default="cuda" if cuda_available() else "cpu")
    parser.add_argument("--backends", nargs="+", default=None, choices=("hf", "vllm"),
                        help="default: hf, and vllm when its environment exists")
    parser.add_argument("--vllm_python", default=str(DEFAULT_VLLM_PYTHON), help="the engine environment's Python")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("preset", "backend", "model", "dataset", "output_dir", "shape"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args)))
        return 0

    shape_name = "quick" if args.quick else "full"
    backends = args.backends or (["hf", "vllm"] if Path(args.vllm_python).exists() else ["hf"])
    say = (lambda message: None) if args.json else (lambda message: print(message, file=sys.stderr, flush=True))
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    raw: dict[str, dict[str, list[dict]]] = {}
    memory_runs: dict[str, dict[str, dict]] = {}  # CPU: the untimed runs with a fixed mmap threshold
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        say("building the model and the video ...")
        model_dir, dataset = write_inputs(directory, shape_name)
        server = None
        port = 0
        if "vllm" in backends:
            from videoktr.rollout import launch_rollout_server

            say("starting the vLLM rollout server ...")
            server, port = launch_rollout_server(model_dir, python=args.vllm_python, port=0,
                                                 log_path=directory / "server.log")
        def child(backend: str, preset: str, name: str, env: dict | None = None) -> dict:
            command = [sys.executable, __file__, "--child", "--preset", preset, "--backend", backend,
                       "--model", str(model_dir), "--dataset", str(dataset), "--shape", shape_name,
                       "--output_dir", str(directory / f"run-{backend}-{preset}-{name}"), "--port", str(port),
                       "--device", args.device]
            completed = subprocess.run(command, capture_output=True, text=True,
                                       env={**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})})
            if completed.returncode != 0:
                sys.stderr.write(completed.stderr[-5000:])
                raise SystemExit(completed.returncode)
            return json.loads(completed.stdout.strip().splitlines()[-1])

        try:
            for backend in backends:
                runs = [*PRESETS, LORA_RUN] if args.lora and backend == "hf" else PRESETS
                for round_index in range(args.rounds):
                    for preset in runs:
                        say(f"{backend} / {preset}, round {round_index + 1} of {args.rounds} ...")
                        raw.setdefault(backend, {}).setdefault(preset, []).append(
                            child(backend, preset, str(round_index)))
                if args.device == "cpu":
                    for preset in runs:
                        say(f"{backend} / {preset}, peak memory ...")
                        memory_runs.setdefault(backend, {})[preset] = child(
                            backend, preset, "memory", {"MALLOC_MMAP_THRESHOLD_": str(2**20)})
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=60)

    results = {backend: {preset: summarise(rounds) for preset, rounds in runs.items()} for backend, runs in raw.items()}
    for backend, by_preset in memory_runs.items():
        for preset, run in by_preset.items():
            for key in ("peak_mb", "peak_with_reference_mb"):
                results[backend][preset][key] = run[key]

    def round_ratios(backend: str) -> list[float]:
        runs = raw[backend]
        return [round(statistics.median(ktr["step_s"]) / statistics.median(grpo["step_s"]), 3)
                for grpo, ktr in zip(runs["grpo"], runs["video_ktr"])]

    hf = results["hf"]
    summary = {
        "shape": shape_name,
        "device": args.device,
        "completions": SHAPES[shape_name]["completions"],
        "completion_length": SHAPES[shape_name]["completion_length"],
        "grpo_step_s": round(hf["grpo"]["step_s"], 3),
        "ktr_step_s": round(hf["video_ktr"]["step_s"], 3),
        "time_ratio": round(hf["video_ktr"]["step_s"] / hf["grpo"]["step_s"], 3),
        "time_ratio_rounds": round_ratios("hf"),
        "grpo_peak_mb": round(hf["grpo"]["peak_mb"], 1),
        "ktr_peak_mb": round(hf["video_ktr"]["peak_mb"], 1),
        "memory_ratio": round(hf["video_ktr"]["peak_mb"] / hf["grpo"]["peak_mb"], 3),
        "hf_tokens_per_s": round(hf["grpo"]["tokens_per_s"], 1),
        "runs": results,
    }
    if "vllm" in results:
        summary["vllm_tokens_per_s"] = round(results["vllm"]["grpo"]["tokens_per_s"], 1)
        summary["vllm_speedup"] = round(summary["vllm_tokens_per_s"] / summary["hf_tokens_per_s"], 2)
        vllm = results["vllm"]
        summary["vllm_time_ratio"] = round(vllm["video_ktr"]["step_s"] / vllm["grpo"]["step_s"], 3)
        summary["vllm_time_ratio_rounds"] = round_ratios("vllm")
    if LORA_RUN in hf:
        lora, full = hf[LORA_RUN], hf["video_ktr"]
        summary["lora_step_s"] = round(lora["step_s"], 3)
        # Above the loaded policy: full fine-tuning adds the reference copy, gradients and optimizer
        # states of every weight; LoRA those of the adapters only.
        summary["full_peak_with_reference_mb"] = round(full["peak_with_reference_mb"], 1)
        summary["lora_peak_with_reference_mb"] = round(lora["peak_with_reference_mb"], 1)
        summary["lora_memory_ratio"] = round(lora["peak_with_reference_mb"] / full["peak_with_reference_mb"], 3)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"one RL step: 1 prompt ({SHAPES[shape_name]['frames']} frames), G = {summary['completions']} x "
          f"{summary['completion_length']} tokens, {args.device}")
    print(f"{'backend':8} {'preset':14} {'step s':>8} " + " ".join(f"{name:>14}" for name in STAGES)
          + f" {'peak MB':>9} {'tokens/s':>9}")
    for backend, runs in results.items():
        for preset, run in runs.items():
            print(f"{backend:8} {preset:14} {run['step_s']:8.2f} "
                  + " ".join(f"{run['stages'][name]:14.2f}" for name in STAGES)
                  + f" {run['peak_mb']:9.0f} {run['tokens_per_s']:9.1f}")
    print(f"\nvideo_ktr / grpo (hf): time {summary['time_ratio']:.3f} (rounds: "
          f"{', '.join(map(str, summary['time_ratio_rounds']))}), peak memory {summary['memory_ratio']:.3f}")
    if "lora_memory_ratio" in summary:
        print(f"video_ktr, memory above the loaded policy: LoRA {summary['lora_peak_with_reference_mb']:.0f} MB, "
              f"full fine-tuning with a reference copy {summary['full_peak_with_reference_mb']:.0f} MB "
              f"({summary['lora_memory_ratio']:.3f})")
    if "vllm_tokens_per_s" in summary:
        print(f"generation: vLLM {summary['vllm_tokens_per_s']:.1f} tokens/s against hf "
              f"{summary['hf_tokens_per_s']:.1f} ({summary['vllm_speedup']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
