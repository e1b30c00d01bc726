"""The ``vllm`` rollout backend: the trainer's side of the vLLM rollout server.

Each trainer process connects to the server (``rollout.vllm_server``) and sends its own prompts:
the prompt's tokens with one placeholder per video or image, the same decoded frames with the
same timing metadata and pixel budget the trainer scores (``data.prompts.build_engine_prompt``),
and a seed per prompt. It gets back its own completions and the log-probs the engine sampled
them with, from which the trainer computes the truncated importance weights
(``core.importance``).

After every optimizer step the policy's weights go to the engine before the next rollout, by
one of two paths (``weight_sync``), and the server reloads them in place and resets its caches:

* ``collective`` (the default, as TRL and verl do it): the trainer's main process and the server
  form a two-member process group of their own (its store hosted by the server) and the main
  process broadcasts the weights over it in flat buckets, named as the checkpoint names them
  (``models.checkpoint_state_dict``): ``gloo`` for weights on CPU, ``nccl`` for weights on GPUs.
* ``safetensors``: the main process writes the policy with ``save_pretrained`` to a directory the
  server can read (the same machine or a shared file system) and the server loads it.

The trainer logs the path in each log line's key (``time/weight_sync_gloo_broadcast_s``,
``time/weight_sync_nccl_broadcast_s``, ``time/weight_sync_safetensors_s``).
"""

from __future__ import annotations

import datetime
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..data.pixels import PixelBudget
from ..data.prompts import build_engine_prompt
from ..models.generation import eos_token_ids
from ..models.loading import checkpoint_state_dict
from ..models.lora import base_model, is_peft_model, merged_weights
from . import vllm_server
from .base import RolloutRequest, SampledCompletions, SamplingSettings

__all__ = ["WEIGHT_SYNC_PATHS", "VLLMRolloutBackend", "launch_rollout_server", "server_script"]

WEIGHT_SYNC_PATHS = ("collective", "safetensors")


def server_script() -> Path:
    """The server's script file, to run with the engine environment's Python."""
    return Path(vllm_server.__file__).resolve()


def launch_rollout_server(
    model: str | Path,
    python: str | Path = ".venv-vllm/bin/python",
    port: int = 0,
    timeout: float = 600.0,
    extra_args: Sequence[str] = (),
    log_path: str | Path | None = None,
) -> tuple[subprocess.Popen, int]:
    """Start the rollout server for ``model`` with the engine environment's ``python`` and wait
    until it listens. Returns ``(process, port)``; stop it with ``VLLMRolloutBackend.shutdown``
    or ``process.terminate()``. ``port=0`` takes any free port. The server's output goes to
    ``log_path`` (else to this process's stderr).
    """
    python = Path(python)
    if not python.exists():
        raise FileNotFoundError(
            f"{python} does not exist: build the vLLM environment first with `make vllm-env` "
            "(see the README's vLLM section), or pass the Python of an environment that has vLLM"
        )
    command = [str(python), str(server_script()), "--model", str(model), "--port", str(port), *extra_args]
    sink = open(log_path, "w") if log_path is not None else sys.stderr  # noqa: SIM115 - the server outlives this call
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # A thread passes the server's output on (to the log) for as long as it runs, and hands
    # this call the ready line; the wait below then never blocks on a silent server.
    ready: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in process.stdout:
            sink.write(line)
            sink.flush()
            if line.startswith(vllm_server.READY_LINE):
                ready.put(line)
        ready.put("")  # the server exited

    threading.Thread(target=pump, daemon=True).start()
    try:
        line = ready.get(timeout=timeout)
    except queue.Empty:
        line = None
    if line:
        address = line[len(vllm_server.READY_LINE):].split()[0]
        return process, int(address.rsplit(":", 1)[1])
    process.terminate()
    what = f"exited with code {process.wait(timeout=30)}" if line == "" else f"did not start within {timeout:.0f} s"
    raise RuntimeError(f"the rollout server for {model} {what}"
                       + (f"; its log is {log_path}" if log_path else "; its output is above"))


class VLLMRolloutBackend:
    """Samples with a vLLM rollout server and keeps its weights those of the policy.

    Args:
        processor: the policy's processor (the prompts' tokens and the end-token ids).
        pixels: the pixel budget the trainer processes media with.
        host, port, timeout: where the server is and how long to wait for it to answer.
        weight_sync: ``collective`` (broadcast over a process group with the server) or
            ``safetensors`` (files the server reads); see the module docstring.
        weights_dir: with ``safetensors``, where the main process writes the policy's weights for
            the server (a directory the server can read: the same machine, or a shared file system).
        device: where the policy's weights live (``cuda``: the collective is ``nccl``, else ``gloo``).
        bucket_mb: with ``collective``, the largest flat bucket broadcast at once (one extra copy
            of that much memory on each end).
        is_main_process: whether this process sends the weights (one process does).
        wait_for_everyone: a barrier across the trainer's processes (``accelerator.wait_for_everyone``),
            so no process samples before the new weights are in.
        eos_token_ids: the ids that end a completion (default: the model's, from the processor's
            tokenizer when not given).
    """

    name = "vllm"
    needs_weights = True

    def __init__(
        self,
        processor,
        pixels: PixelBudget | int | None = None,
        host: str = "127.0.0.1",
        port: int = vllm_server.DEFAULT_PORT,
        timeout: float = 240.0,
        weight_sync: str = "collective",
        weights_dir: str | Path = "rollout_weights",
        device: torch.device | str = "cpu",
        bucket_mb: float = 512.0,
        is_main_process: bool = True,
        wait_for_everyone: Callable[[], None] | None = None,
        eos_token_ids: Sequence[int] | None = None,
    ) -> None:
        if weight_sync not in WEIGHT_SYNC_PATHS:
            raise ValueError(f"weight_sync must be one of {', '.join(WEIGHT_SYNC_PATHS)}; got {weight_sync!r}")
        self.processor = processor
        self.pixels = pixels
        self.address = (host, port)
        self.connection = vllm_server.connect(host, port, timeout)
        self.server = vllm_server.request(self.connection, {"op": "info"})
        if self.server["protocol"] != vllm_server.PROTOCOL_VERSION:
            raise RuntimeError(f"the rollout server at {host}:{port} speaks protocol {self.server['protocol']}, "
                               f"this videoktr speaks {vllm_server.PROTOCOL_VERSION}: run the same videoktr on both")
        self.weight_sync = weight_sync
        self.timeout = timeout
        self.weights_dir = Path(weights_dir)
        self.device = torch.device(device)
        self.weight_group_backend = "nccl" if self.device.type == "cuda" else "gloo"
        self.bucket_bytes = int(bucket_mb * 2**20)
        self.weight_group = None
        self.is_main_process = is_main_process
        self.wait_for_everyone = wait_for_everyone or (lambda: None)
        tokenizer = processor.tokenizer
        self.eos_token_ids = list(eos_token_ids) if eos_token_ids is not None else [tokenizer.eos_token_id]
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_ids[0]
        self.weights_version: int | None = None
        self.last_sync_s = 0.0

    @classmethod
    def for_model(cls, model, processor, **kwargs) -> VLLMRolloutBackend:
        """A backend whose end tokens are ``model``'s (its generation config's, as ``hf`` uses)."""
        return cls(processor, eos_token_ids=eos_token_ids(model, processor), **kwargs)

    def describe(self) -> str:
        host, port = self.address
        path = ("safetensors files" if self.weight_sync == "safetensors"
                else f"{self.weight_group_backend} broadcast")
        return (f"rollouts: vLLM {self.server['vllm_version']} server at {host}:{port} ({self.server['model']}, "
                f"{self.server['device']}); weights: {path} after every optimizer step, then reloaded in place")

    # ------------------------------------------------------------------ sampling

    def sample(self, requests: Sequence[RolloutRequest], settings: SamplingSettings) -> list[SampledCompletions]:
        if not requests:
            return []
        prompts = []
        for request in requests:
            prompt = build_engine_prompt(self.processor, request.sample, request.media, self.pixels)
            prompt["seed"] = int(request.seed % (2**31))
            prompts.append(prompt)
        completions = self._generate(prompts, settings.num_generations, settings.temperature, settings.top_p,
                                     settings.max_completion_length)
        return [self._completions(choices) for choices in completions]

    def generate_texts(self, engine_prompts: Sequence[dict], max_new_tokens: int, temperature: float = 0.0,
                       top_p: float = 1.0, seed: int = 0) -> list[str]:
        """One answer per prompt (evaluation: ``data.build_engine_questions``), decoded as
        ``models.generation.generate_texts`` decodes (special tokens skipped); greedy when
        ``temperature <= 0``."""
        if not engine_prompts:
            return []
        prompts = [{**prompt, "seed": seed} for prompt in engine_prompts]
        ids = [choices[0]["token_ids"] for choices in self._generate(prompts, 1, temperature, top_p, max_new_tokens)]
        return self.processor.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _generate(self, prompts: list[dict], n: int, temperature: float, top_p: float, max_tokens: int) -> list:
        """The server's ``completions`` for ``prompts`` (each with its seed), stopping at the end tokens."""
        sampling = {"n": n, "temperature": temperature, "top_p": top_p, "max_tokens": max_tokens,
                    "stop_token_ids": self.eos_token_ids}
        reply = vllm_server.request(self.connection, {"op": "generate", "prompts": prompts, "sampling": sampling})
        return reply["completions"]

    def _completions(self, choices: list[dict]) -> SampledCompletions:
        """Right-pad one prompt's completions to ``[G, T]``; the mask ends at the end token."""
        length = max(1, max(len(choice["token_ids"]) for choice in choices))
        ids = torch.full((len(choices), length), self.pad_token_id, dtype=torch.long)
        logps = torch.zeros((len(choices), length), dtype=torch.float32)
        mask = torch.zeros((len(choices), length), dtype=torch.bool)
        for row, choice in enumerate(choices):
            count = len(choice["token_ids"])
            ids[row, :count] = torch.tensor(choice["token_ids"], dtype=torch.long)
            logps[row, :count] = torch.tensor(choice["logprobs"], dtype=torch.float32)
            mask[row, :count] = True  # the engine stops at (and returns) the end token
        return SampledCompletions(ids, mask, logps)

    # ------------------------------------------------------------------ weights

    def sync_weights(self, model: torch.nn.Module, step: int, state_dict: dict | None = None) -> str:
        """Send ``model``'s weights (or ``state_dict``, a full one, e.g. gathered from FSDP
        shards) from the main process and have the server reload them; every process then waits
        until they are in. A ``peft`` model sends its merged weights (``models.lora.merged_weights``).
        Returns the path they took: ``gloo_broadcast``, ``nccl_broadcast`` or ``safetensors``."""
        start = time.perf_counter()
        if is_peft_model(model):  # the engine serves the base architecture: send the merged weights
            if state_dict is not None:
                raise ValueError("LoRA adapters with weights gathered from FSDP / ZeRO-3 shards are not supported "
                                 "by the vllm rollout backend")
            state_dict, model = merged_weights(model), base_model(model)
        if self.weight_sync == "safetensors":
            path = "safetensors"
            if self.is_main_process:
                self._write_safetensors(model, step, state_dict)
        else:
            path = f"{self.weight_group_backend}_broadcast"
            if self.is_main_process:
                self._broadcast(model, step, state_dict)
        self.wait_for_everyone()
        self.weights_version = step
        self.last_sync_s = time.perf_counter() - start
        return path

    def _write_safetensors(self, model, step: int, state_dict: dict | None) -> None:
        target = self.weights_dir / f"step-{step:06d}"
        if target.exists():
            shutil.rmtree(target)
        model.save_pretrained(target, state_dict=state_dict, max_shard_size="100GB")
        vllm_server.request(self.connection, {"op": "load_weights", "path": str(target.resolve()), "version": step})
        for old in self.weights_dir.glob("step-*"):  # the server has read them
            if old != target:
                shutil.rmtree(old, ignore_errors=True)

    def _broadcast(self, model, step: int, state_dict: dict | None) -> None:
        if self.weight_group is None:  # formed once, on the first sync
            message = {"op": "open_weight_group", "backend": self.weight_group_backend, "timeout": self.timeout}
            port = vllm_server.request(self.connection, message)["port"]
            store = torch.distributed.TCPStore(self.address[0], port, world_size=2, is_master=False,
                                               timeout=datetime.timedelta(seconds=self.timeout))
            self.weight_group = vllm_server.weight_process_group(
                self.weight_group_backend, store, vllm_server.WEIGHT_SOURCE_RANK, self.timeout)
        with torch.no_grad():
            buckets = weight_buckets(checkpoint_state_dict(model, state_dict), self.bucket_bytes)
            message = {"op": "receive_weights", "version": step, "buckets": [
                {"dtype": str(bucket[0][1].dtype).removeprefix("torch."),
                 "numel": sum(tensor.numel() for _, tensor in bucket),
                 "tensors": [(name, list(tensor.shape)) for name, tensor in bucket]}
                for bucket in buckets
            ]}
            self.connection.send(message)
            options = torch.distributed.BroadcastOptions()
            options.rootRank = vllm_server.WEIGHT_SOURCE_RANK
            for bucket in buckets:
                flat = torch.cat([tensor.detach().reshape(-1).to(self.device) for _, tensor in bucket])
                self.weight_group.broadcast([flat], options).wait()
                del flat
        vllm_server.receive_reply(self.connection, message)

    def shutdown(self) -> None:
        """Stop the server (for a server this run started)."""
        try:
            self.connection.send({"op": "shutdown"})
            self.connection.recv()
        except (EOFError, OSError):
            pass
        self.close()

    def close(self) -> None:
        self.connection.close()


def weight_buckets(weights: dict[str, torch.Tensor], bucket_bytes: int) -> list[list[tuple[str, torch.Tensor]]]:
    """``weights`` in order, cut into buckets of one dtype and at most ``bucket_bytes`` each (a
    tensor larger than that is a bucket of its own): each bucket travels as one flat tensor."""
    buckets: list[list[tuple[str, torch.Tensor]]] = []
    size = 0
    for name, tensor in weights.items():
        nbytes = tensor.numel() * tensor.element_size()
        if not buckets or buckets[-1][0][1].dtype != tensor.dtype or size + nbytes > bucket_bytes:
            buckets.append([])
            size = 0
        buckets[-1].append((name, tensor))
        size += nbytes
    return buckets
