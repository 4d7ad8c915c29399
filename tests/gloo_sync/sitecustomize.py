"""Test-harness shims for DeepSpeed ZeRO-3 on CPU with the gloo backend (tests/test_train.py only).

DeepSpeed's CPU accelerator reports itself as a synchronized device (``resolves_data_dependency()``
is True), so ZeRO-3 skips the stream synchronisations that make an ``async_op=True`` collective's
result safe to read. That holds for DeepSpeed's own CPU backends (oneCCL, shm), not for gloo,
which runs async collectives on a background thread: under CPU load ZeRO-3 then reads gathered
parameters and reduced gradients before they arrive (seen here: a NaN loss, and a grad norm of
1.5e15 where 1.87 is right). This shim completes every torch.distributed collective before it
returns, which is what the accelerator promises. GPUs (NCCL, CUDA streams) never load it.
"""

import functools

import torch
import torch.distributed as dist
import torch.distributed.distributed_c10d as _c10d


class _Done:
    """The handle of a collective that has already completed."""

    def wait(self, *args, **kwargs):
        return True

    def is_completed(self):
        return True

    def get_future(self):
        fut = torch.futures.Future()
        fut.set_result(None)
        return fut


def _coalescing() -> bool:
    # inside torch's _coalescing_manager the ops are queued and run together at its exit
    return any(_c10d._world.pg_coalesce_state.values())


def _synchronous(fn):
    @functools.wraps(fn)
    def call(*args, **kwargs):
        if kwargs.get("async_op") and not _coalescing():
            kwargs["async_op"] = False
            fn(*args, **kwargs)
            return _Done()
        return fn(*args, **kwargs)

    return call


for _name in ("all_gather_into_tensor", "all_gather", "reduce_scatter_tensor", "reduce_scatter",
              "all_reduce", "broadcast", "reduce", "all_to_all_single", "all_to_all", "gather", "scatter",
              "all_reduce_coalesced", "all_gather_coalesced", "_all_gather_base", "_reduce_scatter_base",
              "broadcast_object_list"):
    if hasattr(_c10d, _name):
        _wrapped = _synchronous(getattr(_c10d, _name))
        setattr(_c10d, _name, _wrapped)
        if hasattr(dist, _name):
            setattr(dist, _name, _wrapped)


# PyTorch's CUDA build on a machine without a GPU (what PyPI serves for Python 3.12) raises
# RuntimeError("Found no NVIDIA driver ...") from can_device_access_peer, where axolotl's peer-to-peer
# check (axolotl.utils.environment.check_cuda_p2p_support) expects the AssertionError of the CPU
# build. Without a GPU there is no peer access to report: say so, as the CPU build's answer means.
if not torch.cuda.is_available():
    torch.cuda.can_device_access_peer = lambda device, peer_device: False
