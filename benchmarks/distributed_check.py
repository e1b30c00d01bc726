"""Does a multi-process training run compute what one process computes? Prints PASS or FAIL.

Run it under ``accelerate launch`` with 2 processes and the engine to check, in float32:

    # FSDP2 (GPUs)
    accelerate launch --config_file configs/accelerate/fsdp.yaml --num_processes 2 \\
        --mixed_precision no benchmarks/distributed_check.py
    # DeepSpeed ZeRO-2 / ZeRO-3 (GPUs)
    accelerate launch --config_file configs/accelerate/zero3.yaml --num_processes 2 \\
        --mixed_precision no benchmarks/distributed_check.py
    # DDP over gloo on CPU (what the test suite runs)
    accelerate launch --config_file configs/accelerate/multi_cpu.yaml \\
        benchmarks/distributed_check.py --use_cpu

Every process trains a tiny Qwen2.5-VL (``--family``) for ``--steps`` GRPO steps with
key-token selection (every signal), the KL term against a reference model, and a dataset of
videos and one image; one prompt per process per step. Then the first process runs the same
job as ONE process (``gradient_accumulation_steps`` = the number of processes; same prompts,
same rollout seeds) without the engine, and compares: the completions sampled at every step,
the logged losses, and the final weights (gathered from the shards), which must differ by at
most ``atol + rtol * (how far training moved them)``. SGD is used so that a gradient error
shows in the weights in proportion (Adam would amplify noise on near-zero gradients).

``--resume`` also checks checkpointing: the multi-process run saves at step 1, a second run
resumes from that checkpoint (the engine's own format, e.g. FSDP's sharded state dict) and
must end with the uninterrupted run's weights.

Anything after ``--`` goes to the training configuration (e.g. ``-- --temporal_reward_bonus true``).
Exit status 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from videoktr.data.dataset import VideoR1Dataset
from videoktr.models import get_adapter, load_local_model
from videoktr.models.root_forward import is_fsdp_wrapped
from videoktr.models.tiny import save_tiny_model
from videoktr.train import load_config
from videoktr.train.trainer import VideoGRPOTrainer

NUM_VIDEOS = 3
# Variables through which a launcher tells a process it is one of many: the reference run drops them.
_LAUNCHER_PREFIXES = ("ACCELERATE_", "FSDP_", "TORCHELASTIC_")
_LAUNCHER_NAMES = {
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
    "ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCH_NCCL_ASYNC_ERROR_HANDLING",
}


def letter_e_share(completion: str, row) -> float:
    """A reward that differs between a random model's completions, so advantages are nonzero."""
    return completion.count("e") / max(len(completion), 1)


class CheckTrainer(VideoGRPOTrainer):
    """Rollout seeds by the prompt's place in the optimizer step, not by (process, slot): the
    same prompt gets the same completions whether it ran on process 1 or as micro-batch 1."""

    recorded: list

    def _prompt_seed(self, slot: int) -> int:
        args = self.args
        index = self.accelerator.process_index * args.gradient_accumulation_steps * args.per_device_train_batch_size + slot
        return hash((args.seed, self.state.global_step, index)) % (2**63)

    def _rollouts(self, samples, first_slot):
        rollouts = super()._rollouts(samples, first_slot)
        args = self.args
        for offset, rollout in enumerate(rollouts):
            index = (self.accelerator.process_index * args.gradient_accumulation_steps * args.per_device_train_batch_size
                     + first_slot + offset)
            self.recorded.append([self.state.global_step, index, rollout.completion_ids.tolist()])
        return rollouts


def write_data(directory: Path, family: str) -> tuple[Path, Path]:
    """A tiny model and a Video-R1 dataset of random-pixel videos and one image (its prompt has
    no temporal signal: under FSDP that exercises the placeholder passes)."""
    import av
    import numpy as np
    from PIL import Image

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    model_dir = save_tiny_model(family, directory / "model", seed=0)
    rng = np.random.default_rng(0)
    rows = []
    for index in range(NUM_VIDEOS):
        with av.open(str(directory / f"clip{index}.mp4"), mode="w") as container:
            stream = container.add_stream("mpeg4", rate=8)
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            stream.codec_context.bit_rate = 4_000_000
            for _ in range(8):
                pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        rows.append({"problem": f"Which colour comes first in clip {index}?", "problem_type": "multiple choice",
                     "options": ["A. red", "B. blue"], "solution": "<answer>A</answer>",
                     "path": f"./clip{index}.mp4", "data_type": "video"})
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(directory / "still.png")
    rows.append({"problem": "How many squares?", "problem_type": "numerical", "solution": "<answer>2</answer>",
                 "path": "./still.png", "data_type": "image"})
    dataset = directory / "train.jsonl"
    dataset.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return model_dir, dataset


def train(work: Path, role: str, rank: int, options: argparse.Namespace, accumulation: int) -> dict | None:
    """Train; on the first process return the final weights, the sampled completions and the losses
    (and with ``--resume``, the final weights of a second run resumed from the step-1 checkpoint)."""
    model_dir, dataset_file = write_data(work / f"data-{role}-{rank}", options.family)  # each process its own copy
    resume = options.resume and role == "multi"
    flags = [
        "--model", str(model_dir), "--dataset", str(dataset_file), "--output_dir", str(work / f"out-{role}"),
        "--per_device_train_batch_size", "1", "--gradient_accumulation_steps", str(accumulation),
        "--num_generations", "2", "--max_completion_length", "8", "--min_frames", "4", "--max_frames", "8",
        "--max_steps", str(options.steps), "--save_strategy", "no", "--report_to", "none", "--logging_steps", "1",
        "--optim", "sgd", "--learning_rate", "0.05", "--lr_scheduler_type", "constant", "--beta", "0.04",
        "--reward_funcs", "accuracy", "format", "distributed_check:letter_e_share",  # this file, as a module
        "--seed", "0", "--disable_tqdm", "true", "--use_cpu", str(options.use_cpu).lower(),
        *(["--save_strategy", "steps", "--save_steps", "1"] if resume else []), *options.training_flags,
    ]
    config = load_config(flags)

    def run(resume_from: str | None = None) -> CheckTrainer:
        model, processor = load_local_model(config.model)
        dataset = VideoR1Dataset(config.dataset, fps=config.fps, min_frames=config.min_frames, max_frames=config.max_frames)
        trainer = CheckTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor)
        trainer.recorded = []
        trainer.train(resume_from_checkpoint=resume_from)
        return trainer

    trainer = run()
    sharded = is_fsdp_wrapped(trainer.model) and get_adapter(trainer.model).root_forward
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)  # gathered from the shards (a collective)
    resumed, resumed_steps = None, None
    if resume:
        second = run(str(Path(config.output_dir) / "checkpoint-1"))
        resumed = second.accelerator.get_state_dict(second.model_wrapped)
        resumed_steps = sorted({step for step, _, _ in second.recorded})  # the steps it rolled out itself
    accelerator = trainer.accelerator
    recorded = trainer.recorded
    if accelerator.num_processes > 1:
        import torch.distributed as dist

        everything = [None] * accelerator.num_processes
        dist.all_gather_object(everything, recorded)
        recorded = [item for part in everything for item in part]
    # The last collective: tear the process group down on every rank now, so a rank that returns
    # early is not aborted at interpreter exit by gloo (which the launcher reports as a failure).
    accelerator.end_training()
    if not accelerator.is_main_process:
        return None
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    engine = str(accelerator.distributed_type).split(".")[-1]
    return {"state": {k: v.detach().float().cpu() for k, v in state.items()}, "rollouts": sorted(recorded),
            "losses": losses, "engine": engine, "processes": accelerator.num_processes,
            "fsdp": {"trainer": trainer.is_fsdp_enabled, "sharded_root_forward": sharded,
                     "checkpointed_blocks": sum("CheckpointWrapper" in type(m).__name__ for m in trainer.model.modules()),
                     "full_sequence_loss": trainer._activation_checkpointing()},
            "initial": load_local_model(model_dir)[0].state_dict(),
            "resumed": None if resumed is None else {k: v.detach().float().cpu() for k, v in resumed.items()},
            "resumed_steps": resumed_steps}


def _normalise(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_fsdp_wrapped_module.", "_checkpoint_wrapped_module."):
            key = key.replace(prefix, "")
        out[key] = value
    return out


def compare(distributed: dict, reference: dict, options: argparse.Namespace) -> tuple[bool, list[str]]:
    lines = [f"engine {distributed['engine']} x {distributed['processes']} processes vs one process"]
    if distributed["engine"] == "FSDP":
        fsdp = distributed["fsdp"]
        lines.append(f"FSDP: trainer path {fsdp['trainer']}, model sharded and scored through the root forward "
                     f"{fsdp['sharded_root_forward']}")
        lines.append(f"FSDP activation checkpointing: {fsdp['checkpointed_blocks']} blocks wrapped, loss on full "
                     f"sequences {fsdp['full_sequence_loss']}")
        if not (fsdp["trainer"] and fsdp["sharded_root_forward"]):
            return False, lines
    if distributed["rollouts"] != reference["rollouts"]:
        for got, want in zip(distributed["rollouts"], reference["rollouts"]):
            if got != want:
                lines.append(f"completions differ first at step {want[0]}, prompt {want[1]}: {got[2]} vs {want[2]}")
                break
        else:
            lines.append(f"{len(distributed['rollouts'])} rollouts vs {len(reference['rollouts'])}")
        return False, lines
    lines.append(f"completions: identical ({len(reference['rollouts'])} prompts x G)")
    got, want, initial = (_normalise(distributed["state"]), _normalise(reference["state"]), _normalise(reference["initial"]))
    missing = sorted(set(want) - set(got))
    if missing:
        lines.append(f"weights missing from the distributed run: {missing[:5]}")
        return False, lines
    change = max((want[k] - initial[k].float()).abs().max().item() for k in want if k in initial)
    diff_key = max(want, key=lambda k: (got[k] - want[k]).abs().max().item())
    diff = (got[diff_key] - want[diff_key]).abs().max().item()
    bound = options.atol + options.rtol * change
    lines.append(f"weights: max |distributed - single| = {diff:.3e} ({diff_key}); bound {bound:.3e}; "
                 f"training moved them by up to {change:.3e}")
    loss_gap = max((abs(a - b) for a, b in zip(distributed["losses"], reference["losses"])), default=0.0)
    lines.append(f"losses: {distributed['losses']} vs {reference['losses']} (max gap {loss_gap:.3e})")
    ok = change > 0 and diff <= bound and len(distributed["losses"]) == len(reference["losses"])
    if distributed["resumed"] is not None:
        resumed = _normalise(distributed["resumed"])
        gap = max((resumed[k] - got[k]).abs().max().item() for k in got)
        steps = distributed["resumed_steps"]
        lines.append(f"resumed from checkpoint-1, then rolled out and trained steps {steps} (0-based): "
                     f"max |resumed - uninterrupted| = {gap:.3e}")
        ok = ok and gap <= options.atol and steps == list(range(1, options.steps))
    ok = ok and loss_gap <= options.atol + options.rtol * max(abs(v) for v in reference["losses"] or [1.0])
    return ok, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="runs/distributed_check")
    parser.add_argument("--family", default="qwen2_5_vl", choices=["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--use_cpu", action="store_true")
    parser.add_argument("--resume", action="store_true", help="also save at step 1, resume from there, compare")
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("--reference", type=int, default=0, help=argparse.SUPPRESS)  # internal: N processes to mimic
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    options = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    options.training_flags = extra
    warnings.simplefilter("ignore")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    work = Path(options.workdir).resolve()

    if options.reference:  # the single-process run, started by the first process below
        result = train(work, "single", 0, options, accumulation=options.reference)
        torch.save(result, work / "single.pt")
        return

    if os.environ.get("ACCELERATE_MIXED_PRECISION", "no") not in ("no", ""):
        sys.exit("FAIL: launch with --mixed_precision no: the check compares float32 runs")
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 2:
        sys.exit("FAIL: run under `accelerate launch` with --num_processes 2 or more (see the docstring)")
    distributed = train(work, "multi", rank, options, accumulation=1)
    if distributed is None:
        # A non-main rank is done once the process group is down. Leave without the interpreter's
        # teardown, where a native thread still joinable aborted the process now and then on CPU
        # ("terminate called without an active exception", after the check had passed), which the
        # launcher then reports as a failed run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_NAMES and not k.startswith(_LAUNCHER_PREFIXES)}
    if torch.cuda.is_available() and not options.use_cpu:
        env["CUDA_VISIBLE_DEVICES"] = str(torch.cuda.current_device()) if "CUDA_VISIBLE_DEVICES" not in os.environ \
            else os.environ["CUDA_VISIBLE_DEVICES"].split(",")[0]
    command = [sys.executable, str(Path(__file__).resolve()), "--reference", str(world), *sys.argv[1:]]
    single = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    if single.returncode != 0:
        print(single.stderr[-4000:], file=sys.stderr)
        print("FAIL: the single-process reference run failed (its error is above)", flush=True)
        sys.exit(1)
    reference = torch.load(work / "single.pt", weights_only=False)
    ok, lines = compare(distributed, reference, options)
    for line in lines:
        print(f"  {line}")
    print(("PASS" if ok else "FAIL") + f": {distributed['engine']} training equals single-process training", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
