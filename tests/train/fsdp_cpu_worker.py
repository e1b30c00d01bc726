"""benchmarks/distributed_check.py with accelerate's FSDP2, on CPU processes (gloo).

accelerate will not run FSDP on CPU: with ``use_cpu`` its state is MULTI_CPU (DDP) whatever
the config says. Its FSDP2 code itself (``fully_shard`` with the transformer-block auto-wrap,
the carved-out embedding and lm_head units, the optimizer parameter swap, ``get_state_dict``)
is device-agnostic, so this worker switches the state to FSDP after accelerate has set up the
CPU processes, with the plugin accelerate builds from the ``FSDP_*`` environment variables
(the test sets them from configs/accelerate/fsdp.yaml), then runs the check: 2 processes train
through the trainer's FSDP path, and the result is compared with one plain process. Used by
tests/train/test_fsdp_trainer.py.
"""

import sys
from pathlib import Path

import accelerate.state
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

_original_init = accelerate.state.AcceleratorState.__init__


def _fsdp2_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _original_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        # the plugin accelerate built from the launch environment (FSDP_* variables), as on GPUs
        self.fsdp_plugin = fsdp_plugin if fsdp_plugin is not None else FullyShardedDataParallelPlugin()


accelerate.state.AcceleratorState.__init__ = _fsdp2_on_cpu

import distributed_check

if __name__ == "__main__":
    distributed_check.main()
