"""The MPI world: `init`, `rank`, `size`, `barrier`, and aborting the job when a rank fails.

    comm = dist.init()      # mpi4py's COMM_WORLD; idempotent; rank() etc. call it themselves

Started without mpiexec or srun, MPI runs the process as a job of one rank (a "singleton").
MPI has no way to tell the other ranks that one of them died in Python: they would wait in
their next collective for ever. So in a job of several ranks `init` chains a `sys.excepthook`
that prints the traceback as usual, then calls `COMM_WORLD.Abort(1)`, which ends every rank.
"""
from __future__ import annotations

import sys
import time

EXTRA_HINT = ("lepton.distributed needs mpi4py and an MPI library: pip install 'lepton[mpi]' "
              "(mpi4py and the mpich wheel, which brings mpiexec)")

_world = None


def mpi():
    """mpi4py's MPI module (importing it initialises MPI); ImportError naming the extra when
    mpi4py or the MPI library it needs is missing."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as e:  # no mpi4py, or no libmpi it can load
        raise ImportError(f"{EXTRA_HINT}; {type(e).__name__}: {e}") from None
    return MPI


def init():
    """Initialises MPI once and returns mpi4py's COMM_WORLD."""
    global _world
    if _world is None:
        world = mpi().COMM_WORLD
        if world.Get_size() > 1:
            sys.excepthook = _aborting(sys.excepthook, world)
        _world = world
    return _world


def _aborting(previous, world):
    def excepthook(kind, value, tb):
        try:
            previous(kind, value, tb)  # the traceback, as without MPI
            sys.stderr.write(f"lepton.distributed: rank {world.Get_rank()} of "
                             f"{world.Get_size()} raised {kind.__name__}: aborting the job\n")
            sys.stderr.flush()
            # the abort also ends the launcher's forwarding of this rank's output: give it a
            # moment to pass on what was just written (the message was lost 1 run in 5)
            time.sleep(0.2)
        finally:
            world.Abort(1)
    return excepthook


def rank() -> int:
    """This process's rank, 0 .. size() - 1."""
    return init().Get_rank()


def size() -> int:
    """The number of ranks in the job (1 without a launcher)."""
    return init().Get_size()


def barrier() -> None:
    """Waits until every rank has called barrier()."""
    init().Barrier()
