"""Data-parallel training across processes and machines with torchrun and DistributedDataParallel.

    torchrun --nproc_per_node=4 train.py vqvae ...        # 4 GPUs (NCCL) or 4 CPU processes (gloo)
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --master_port=29500 --nproc_per_node=8 train.py bert ...

Reference: "PyTorch Distributed: Experiences on Accelerating Data Parallel Training", Li et al., 2020
(arXiv:2006.15704). Every rank holds a full copy of the model and trains on its own shard of the
data; DDP averages the gradients in `backward`, so all copies take the same step. The global batch is
`--batch-size` x ranks; only rank 0 logs, evaluates and saves. Without torchrun this is a no-op.
"""
import gc
import os

import torch
import torch.distributed as dist


def setup(device):
    """Join the process group if torchrun started us; returns (rank, world_size, device). On CUDA
    each rank takes the GPU of its LOCAL_RANK and talks NCCL; on CPUs, gloo."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world_size, device


def active():
    """Whether this process is one rank of a process group (started by torchrun)."""
    return dist.is_available() and dist.is_initialized()


def wrap(model, device):
    """The model as DDP sees it (gradients averaged across ranks), or the model itself alone."""
    if not active():
        return model
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def any_rank(flag, device):
    """True on every rank if `flag` is True on any (e.g. Ctrl-C seen by one), so all stop together."""
    if not active():
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def broadcast_from_main(tensor):
    """Overwrite `tensor` on every rank with rank 0's copy (in place)."""
    if active():
        dist.broadcast(tensor, src=0)


def weights_agree(model):
    """Whether every rank holds exactly the same parameters (all of them gathered and compared)."""
    if not active():
        return True
    mine = torch.nn.utils.parameters_to_vector(model.parameters()).detach().float()
    gathered = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine)
    return all(torch.equal(g, gathered[0]) for g in gathered)


def cleanup():
    """Leave the process group. Drop the DDP wrapper first (`del`): a DDP still alive when the group
    is destroyed can make the process abort at exit ("terminate called without an active exception").
    """
    if active():
        gc.collect()  # free the dropped wrapper now, while the group still exists
        dist.barrier()
        dist.destroy_process_group()


def finish(model, log):
    """End a run of several ranks: log whether every rank holds the same weights, leave the process
    group; True on rank 0, which goes on to validate and save. Drop the DDP wrapper (`del`) before."""
    log(f"{dist.get_world_size()} ranks hold identical weights: {weights_agree(model)}")
    rank = dist.get_rank()
    cleanup()
    return rank == 0
