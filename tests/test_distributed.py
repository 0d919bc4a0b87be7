"""lepton.distributed on two real MPI ranks: `mpiexec -n 2` (the mpich wheel of the [mpi] extra,
in the test extra) runs tests/distributed_worker.py on loopback, one process per rank, and each
check there aborts the job when it fails. A timeout only guards against a hang."""
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKER = str(ROOT / "tests" / "distributed_worker.py")
TIMEOUT = 300  # seconds; the jobs take a few on an idle machine, far more on a loaded one


def _mpiexec() -> str:
    # The mpich wheel installs mpiexec beside this Python's scripts, which may not be on PATH.
    beside = Path(sysconfig.get_path("scripts")) / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    assert found, "no mpiexec: pip install -e '.[mpi]' (mpi4py and the mpich wheel)"
    return found


def _run(args, timeout=TIMEOUT, env=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEPTON_NUM_THREADS": "1", **(env or {})}
    # A session of its own, so a hang is ended with every rank, not only the launcher.
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"{args} hung for {timeout} s\n{out}\n{err}") from None
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _ranks(name: str) -> subprocess.CompletedProcess:
    return _run([_mpiexec(), "-n", "2", "-launcher", "fork", "-iface", "lo",
                 sys.executable, WORKER, name])


def test_two_ranks_train_as_one_process_on_the_whole_batch():
    # SGD with momentum and Adam, 4 steps each: parameters broadcast from rank 0, bit-identical
    # on both ranks, equal to one process on the whole batch; a buffer broadcast, then updated
    # by each rank from its own shard.
    res = _ranks("train")
    assert res.returncode == 0, res.stderr
    assert "OK SGD" in res.stdout and "OK Adam" in res.stdout, res.stdout


def test_predict_scatters_uneven_shards_and_gathers_on_rank_0():
    res = _ranks("predict")
    assert res.returncode == 0, res.stderr
    assert "OK predict" in res.stdout, res.stdout


def test_a_rank_that_raises_aborts_the_job_with_its_traceback():
    res = _ranks("fail")
    assert res.returncode != 0
    assert "ValueError: rank 1 fails on purpose" in res.stderr, res.stderr
    assert "rank 1 of 2 raised ValueError: aborting the job" in res.stderr, res.stderr
    assert "passed the barrier" not in res.stdout


def test_without_a_launcher_one_rank():
    res = _run([sys.executable, WORKER, "alone"])
    assert res.returncode == 0, res.stderr
    assert "OK alone" in res.stdout, res.stdout


def test_without_mpi4py_the_error_names_the_extra():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import lepton.distributed as dist\n"
            "dist.size()")
    res = _run([sys.executable, "-c", code])
    assert res.returncode != 0
    assert "ImportError: lepton.distributed needs mpi4py" in res.stderr, res.stderr
    assert "pip install 'lepton[mpi]'" in res.stderr, res.stderr


def test_example_trains_on_two_ranks_and_rank_0_prints_the_accuracy():
    res = _run([_mpiexec(), "-n", "2", "-launcher", "fork", "-iface", "lo", sys.executable,
                str(ROOT / "examples" / "train_mpi.py"), "--epochs", "3"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("test accuracy") == 1, res.stdout
    assert float(res.stdout.split("test accuracy")[1].split()[0]) > 0.8, res.stdout
