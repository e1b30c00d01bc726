"""``videoktr rollout-server``: start the vLLM rollout server in the engine's own environment."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

NAME = "rollout-server"
HELP = "serve rollouts with vLLM for `videoktr train --rollout_backend vllm` (needs make vllm-env)"
DESCRIPTION = (
    "Starts the vLLM rollout server (src/videoktr/rollout/vllm_server.py) with the Python of the "
    "engine's environment, which `make vllm-env` builds in .venv-vllm (vLLM pins a transformers "
    "older than videoktr's). Train against it with --rollout_backend vllm --vllm_server_port PORT. "
    "Further arguments go to the server (--dtype, --max-model-len, --gpu-memory-utilization, "
    "--cpu-kv-cache-gib, --enforce-eager, --seed)."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="local checkpoint directory of the policy")
    parser.add_argument("--python", default=".venv-vllm/bin/python",
                        help="the engine environment's Python (default: .venv-vllm/bin/python)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    parser.set_defaults(takes_config_flags=True)  # the rest go to the server


def run(args: argparse.Namespace) -> int:
    from videoktr.rollout.vllm_backend import server_script

    python = Path(args.python)
    if not python.exists():
        raise FileNotFoundError(f"{python} does not exist: build the engine's environment with `make vllm-env`, "
                                "or pass --python with an environment that has vLLM")
    if not Path(args.model).is_dir():
        raise FileNotFoundError(f"--model {args.model} is not a directory (a checkpoint saved with save_pretrained)")
    command = [str(python), str(server_script()), "--model", args.model, "--host", args.host, "--port",
               str(args.port), *getattr(args, "config_flags", [])]
    os.execv(command[0], command)  # the server takes over this process: its output, its Ctrl-C
    return 0  # not reached
