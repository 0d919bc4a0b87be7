"""`lepton.distributed`: data-parallel training and sharded inference on MPI (mpi4py).

    mpiexec -n 4 python train.py                 # or srun; without a launcher: one rank
    import lepton.distributed as dist
    dist.init(); dist.rank(); dist.size(); dist.barrier()
    opt = dist.DataParallel(lp.optim.Adam(1e-3))  # wraps any lp.optim optimiser
    loss = opt.step(model, loss_fn, x_shard, y_shard)   # the loss averaged over the ranks
    y = dist.predict(model, x)                   # x on rank 0, None elsewhere; y on rank 0

Needs the optional `[mpi]` extra (mpi4py and an MPI library); without it these functions raise
ImportError naming the extra. Once `init()` ran in a job of several ranks, an exception that no
code catches on any rank prints its traceback and aborts the whole job instead of leaving the
other ranks waiting in a collective for ever.
"""
from .comm import barrier, init, rank, size
from .data_parallel import DataParallel
from .predict import predict

__all__ = ["init", "rank", "size", "barrier", "DataParallel", "predict"]
