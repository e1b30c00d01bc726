"""The vLLM rollout server: an inference engine in its own environment and process that samples
completions for videoktr's trainer and takes the trainer's weights after every optimizer step.

vLLM pins a transformers older than the one videoktr needs, so the engine cannot live in
videoktr's environment: ``make vllm-env`` builds ``.venv-vllm`` for it, and this file runs there
as a script. It imports nothing of videoktr, and nothing outside the standard library until it
starts the engine, so videoktr's side imports the wire helpers below from it too.

    .venv-vllm/bin/python src/videoktr/rollout/vllm_server.py --model PATH [--port 8765]
    videoktr rollout-server --model PATH            (from videoktr's environment: starts the above)

The wire is ``multiprocessing.connection``: length-prefixed pickled messages, the connection
authenticated by HMAC with a shared key (``VIDEOKTR_ROLLOUT_AUTHKEY``, default ``videoktr``).
Unpickling runs code, so bind to a loopback or private address, and set the key, on any host
others can reach. Each message is a dict with an ``op``; each reply ``{"ok": True, ...}`` or
``{"ok": False, "error": message}``:

* ``info``: the engine's model, device, vLLM version and weights version.
* ``generate``: ``prompts`` (each ``prompt_token_ids`` with one placeholder per media item, the
  ``media`` as a uint8 array, its ``metadata`` and ``processor_kwargs``, and a ``seed``) and
  ``sampling`` (``n``, ``temperature``, ``top_p``, ``max_tokens``, ``stop_token_ids``); replies
  with ``completions``: per prompt, ``n`` of ``{"token_ids", "logprobs"}``, the log-probs
  being the sampler's after temperature (vLLM's ``processed_logprobs``).
* ``load_weights``: ``path`` (a directory of safetensors in the model's checkpoint format) and
  ``version``; reloads the weights in place and resets every cache that holds results of the
  old ones (the processor cache, the encoder cache, the prefix cache).
* ``open_weight_group``: ``backend`` (``gloo`` for weights on CPU, ``nccl`` on GPUs) and
  ``timeout``; hosts the store of a two-member process group (this server rank 0, the
  trainer's main process rank 1), replies with the store's ``port`` at once and joins the group
  in the background while the trainer joins it (``host_weight_group``).
* ``receive_weights``: ``buckets`` (each a ``dtype``, a ``numel`` and its ``tensors``, names in
  the checkpoint's format with shapes) and ``version``; takes each bucket as one flat tensor
  broadcast by the trainer over that group (``receive_buckets``), then reloads and resets the
  caches as ``load_weights`` does. Nothing touches a disk.
* ``shutdown``: stops the server.

Requests from several trainer processes (one connection each) are served one at a time.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener

PROTOCOL_VERSION = 2
DEFAULT_PORT = 8765
AUTHKEY_ENV = "VIDEOKTR_ROLLOUT_AUTHKEY"
READY_LINE = "videoktr rollout server ready on"


def authkey() -> bytes:
    """The shared key both ends authenticate the connection with."""
    return os.environ.get(AUTHKEY_ENV, "videoktr").encode()


def connect(host: str, port: int, timeout: float) -> Connection:
    """A connection to the server at ``host:port``, retried until ``timeout`` seconds pass (the
    server may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client((host, port), authkey=authkey())
        except OSError as error:  # refused, or not yet listening
            if time.monotonic() >= deadline:
                raise ConnectionError(
                    f"no videoktr rollout server answers at {host}:{port} after {timeout:.0f} s ({error}); "
                    "start one with `videoktr rollout-server --model PATH` (see the README's vLLM section)"
                ) from None
            time.sleep(0.5)


def request(connection: Connection, message: dict) -> dict:
    """Send one message and return the reply; a server-side failure raises ``RuntimeError``."""
    connection.send(message)
    return receive_reply(connection, message)


def receive_reply(connection: Connection, message: dict) -> dict:
    """The reply to ``message``, already sent; a server-side failure raises ``RuntimeError``."""
    reply = connection.recv()
    if not reply.get("ok"):
        raise RuntimeError(f"the rollout server failed on {message.get('op')!r}: {reply.get('error')}")
    return reply


# ---------------------------------------------------------------- weights by broadcast
# Used by both ends (torch is imported inside, so this file still imports without it). The
# group is built from a store rather than torch.distributed's default group, which the engine
# may hold itself and the trainer's processes hold for training.

WEIGHT_SOURCE_RANK = 1  # the trainer's main process; the server is rank 0


def weight_process_group(backend: str, store, rank: int, timeout: float):
    """This end's member of the two-process group weights are broadcast over."""
    from datetime import timedelta

    import torch.distributed as dist

    if backend == "gloo":
        return dist.ProcessGroupGloo(store, rank, 2, timedelta(seconds=timeout))
    if backend == "nccl":
        options = dist.ProcessGroupNCCL.Options()
        options._timeout = timedelta(seconds=timeout)
        return dist.ProcessGroupNCCL(store, rank, 2, options)
    raise ValueError(f"weight group backend must be 'gloo' or 'nccl', got {backend!r}")


def host_weight_group(host: str, backend: str, timeout: float) -> tuple[int, Callable[[], object]]:
    """Host the group's store on ``host`` (a free port) and start joining the group as rank 0 in
    the background; returns the port and a function that waits for the group and returns it."""
    from datetime import timedelta

    import torch.distributed as dist

    store = dist.TCPStore(host, 0, world_size=2, is_master=True, timeout=timedelta(seconds=timeout),
                          wait_for_workers=False)
    joined: dict = {}

    def join() -> None:
        try:
            joined["group"] = weight_process_group(backend, store, 0, timeout)
        except Exception as error:  # reported to the op that needs the group
            joined["error"] = error

    thread = threading.Thread(target=join, daemon=True)
    thread.start()

    def wait():
        thread.join()
        if "error" in joined:
            raise RuntimeError(f"the weight group was not formed: {joined['error']}")
        return joined["group"]

    return store.port, wait


def receive_buckets(group, buckets: list[dict], device: str) -> list[tuple[str, object]]:
    """The tensors of ``buckets`` (``send_buckets``' plan), each bucket taken as one flat tensor
    broadcast from the trainer, returned as ``(name, tensor)`` views of it."""
    import math

    import torch
    import torch.distributed as dist

    options = dist.BroadcastOptions()
    options.rootRank = WEIGHT_SOURCE_RANK
    weights = []
    for bucket in buckets:
        flat = torch.empty(bucket["numel"], dtype=getattr(torch, bucket["dtype"]), device=device)
        group.broadcast([flat], options).wait()
        offset = 0
        for name, shape in bucket["tensors"]:
            size = math.prod(shape)
            weights.append((name, flat[offset : offset + size].view(shape)))
            offset += size
    return weights


class RolloutEngine:
    """The vLLM engine and the operations the trainer asks of it (one at a time, under a lock)."""

    def __init__(self, args: argparse.Namespace) -> None:
        # In-process engine core: weights reload and cache resets reach the model directly.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        import torch

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(args.cpu_kv_cache_gib))
        import vllm
        from vllm import LLM

        memory = args.gpu_memory_utilization
        if memory is None:  # on CPU vLLM reads it as the share of host memory to reserve
            memory = 0.9 if self.device == "cuda" else 0.2
        self.model = args.model
        self.vllm_version = vllm.__version__
        self.llm = LLM(
            model=args.model,
            dtype=args.dtype,
            max_model_len=args.max_model_len,
            enforce_eager=args.enforce_eager or self.device == "cpu",
            gpu_memory_utilization=memory,
            limit_mm_per_prompt={"video": 1, "image": 1},
            logprobs_mode="processed_logprobs",
            seed=args.seed,
        )
        self.weights_version = -1
        self.host = args.host
        self.lock = threading.Lock()
        self.wait_for_weight_group: Callable[[], object] | None = None
        self.weight_group_backend: str | None = None

    def info(self, message: dict) -> dict:
        return {"protocol": PROTOCOL_VERSION, "model": self.model, "device": self.device,
                "vllm_version": self.vllm_version, "weights_version": self.weights_version}

    def generate(self, message: dict) -> dict:
        from vllm import SamplingParams

        sampling = message["sampling"]
        prompts, params = [], []
        for prompt in message["prompts"]:
            media = prompt["media"]
            item = (media, prompt["metadata"]) if prompt["media_type"] == "video" else media
            prompts.append({
                "prompt_token_ids": prompt["prompt_token_ids"],
                "multi_modal_data": {prompt["media_type"]: item},
                "mm_processor_kwargs": prompt.get("processor_kwargs") or {},
            })
            params.append(SamplingParams(
                n=sampling["n"],
                temperature=max(float(sampling["temperature"]), 0.0),
                top_p=sampling["top_p"],
                max_tokens=sampling["max_tokens"],
                stop_token_ids=sampling.get("stop_token_ids"),
                logprobs=0,
                seed=prompt["seed"],
            ))
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        completions = [
            [
                {"token_ids": list(choice.token_ids),
                 "logprobs": [entry[token].logprob for token, entry in zip(choice.token_ids, choice.logprobs)]}
                for choice in output.outputs
            ]
            for output in outputs
        ]
        return {"completions": completions, "weights_version": self.weights_version}

    def load_weights(self, message: dict) -> dict:
        from pathlib import Path

        from safetensors.torch import load_file

        start = time.perf_counter()
        files = sorted(Path(message["path"]).glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no *.safetensors in {message['path']} (is it on a file system this server sees?)")
        # Passed as tensors, not as a path: given a path, the engine would take it for the
        # model's directory and look there for the processor too.
        weights = [item for file in files for item in load_file(file).items()]
        self._reload(weights, message["version"])
        return {"seconds": time.perf_counter() - start, "weights_version": self.weights_version}

    def open_weight_group(self, message: dict) -> dict:
        backend = message["backend"]
        if backend == "nccl" and self.device != "cuda":
            raise ValueError("the trainer's weights are on GPUs (nccl) but this engine runs on CPU")
        port, self.wait_for_weight_group = host_weight_group(self.host, backend, float(message["timeout"]))
        self.weight_group_backend = backend
        return {"port": port}

    def receive_weights(self, message: dict) -> dict:
        if self.wait_for_weight_group is None:
            raise RuntimeError("receive_weights before open_weight_group")
        start = time.perf_counter()
        group = self.wait_for_weight_group()
        device = "cuda" if self.weight_group_backend == "nccl" else "cpu"
        weights = receive_buckets(group, message["buckets"], device)
        self._reload(weights, message["version"])
        return {"seconds": time.perf_counter() - start, "weights_version": self.weights_version}

    def _reload(self, weights: list, version: int) -> None:
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        # Every cache keyed by inputs alone still holds what the old weights computed.
        self.llm.reset_mm_cache()
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()
        self.weights_version = int(version)

    def handle(self, message: dict) -> dict:
        operation = {"info": self.info, "generate": self.generate, "load_weights": self.load_weights,
                     "open_weight_group": self.open_weight_group,
                     "receive_weights": self.receive_weights}.get(message.get("op"))
        if operation is None:
            return {"ok": False, "error": f"unknown op {message.get('op')!r}"}
        with self.lock:
            try:
                return {"ok": True, **operation(message)}
            except Exception as error:  # the trainer gets the message; the server stays up
                traceback.print_exc()
                return {"ok": False, "error": f"{type(error).__name__}: {error}"}


def _serve_connection(engine: RolloutEngine, connection: Connection, stop: threading.Event) -> None:
    with connection:
        while not stop.is_set():
            try:
                message = connection.recv()
            except (EOFError, OSError):
                return
            if message.get("op") == "shutdown":
                connection.send({"ok": True})
                stop.set()
                return
            connection.send(engine.handle(message))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve rollouts for videoktr's trainer with vLLM.")
    parser.add_argument("--model", required=True, help="local checkpoint directory of the policy")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one, printed when ready)")
    parser.add_argument("--dtype", default="auto", help="weights' dtype in the engine (default: the checkpoint's)")
    parser.add_argument("--max-model-len", type=int, default=8192, help="longest prompt + completion, in tokens")
    parser.add_argument("--gpu-memory-utilization", type=float, default=None,
                        help="share of GPU memory for the engine (on CPU: of host memory; default 0.9 / 0.2)")
    parser.add_argument("--cpu-kv-cache-gib", type=int, default=1, help="KV cache size on CPU, in whole GiB")
    parser.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs (always so on CPU)")
    parser.add_argument("--seed", type=int, default=0, help="the engine's seed")
    return parser.parse_args(argv)


def _accept(listener: Listener, engine: RolloutEngine, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            connection = listener.accept()
        except OSError as error:  # a client that failed authentication, say
            print(f"rejected a connection: {error}", file=sys.stderr, flush=True)
            continue
        threading.Thread(target=_serve_connection, args=(engine, connection, stop), daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    # Run as a script, this file's folder leads sys.path, where its siblings would shadow
    # installed packages of the same name.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    args = parse_args(argv)
    engine = RolloutEngine(args)
    stop = threading.Event()
    listener = Listener((args.host, args.port), authkey=authkey())
    host, port = listener.address
    # Connections are served on daemon threads; the process ends when a client asks it to.
    threading.Thread(target=_accept, args=(listener, engine, stop), daemon=True).start()
    print(f"{READY_LINE} {host}:{port} (model {args.model}, {engine.device}, vLLM {engine.vllm_version})",
          flush=True)
    stop.wait()
    listener.close()


if __name__ == "__main__":
    main()
