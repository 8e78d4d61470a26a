"""Training speed on a busy machine: an epoch idle, and beside 1 and 2 busy processes.

Each contestant is a real command, started fresh for every measurement (so that the
automatic thread choice sees the machine as it is then), and the time is the training time
of its last epoch (the first one also loads Numba's compiled loop and warms the caches):

* ``auto``: ``python -m tinyvae.train`` as a user runs it, the BLAS threads chosen when the
  run starts (``tinyvae/tools/threads.py``);
* ``1 thread`` and ``N threads``: the same with ``--threads 1`` and ``--threads N``, N being
  every CPU this process may use: what tinyvae did before it chose (OpenBLAS's default);
* ``torch N``, ``torch 1``: ``torch_reference.py`` (PyTorch eager, the same recipe) with
  ``torch.set_num_threads``, when ``--torch-python`` names an interpreter that has PyTorch.

A busy process is a Python loop that spins on one CPU. Each one is started just before one
measurement and stopped right after it, and carries its own deadline (``--busy-seconds``,
longer than one measurement may take): it ends by itself then, even if this script is
killed. The contestants take turns, in an order that alternates between repeats, and the
table shows medians.

    python benchmarks/bench_contention.py --torch-python PATH/TO/python --json
    python benchmarks/bench_contention.py --quick          # digits, a smoke test of the script

It needs a machine that nothing else uses: other programs are competing processes too.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # the checkout: measure this tinyvae, not an installed one
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from bench_train import seconds  # noqa: E402

from tinyvae.errors import UserError  # noqa: E402
from tinyvae.tools.cli import run  # noqa: E402
from tinyvae.tools.flags import Parser, bounded_int  # noqa: E402
from tinyvae.tools.threads import cpus_allowed  # noqa: E402

SPIN = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass\n"
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def start_busy(count: int, seconds: float) -> list:
    """``count`` processes that each keep one CPU busy, and stop by themselves after
    ``seconds`` (or when :func:`stop_busy` ends them first)."""
    procs = [subprocess.Popen([sys.executable, "-c", SPIN, str(seconds)]) for _ in range(count)]
    time.sleep(1.0 if procs else 0.0)  # running before the contestant starts
    return procs


def stop_busy(procs) -> None:
    for proc in procs:  # only the processes started above, each by its own id
        if proc.poll() is None:
            proc.terminate()
        proc.wait()


def environment() -> dict:
    """This environment without thread-count variables: each contestant sets its own."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_tinyvae(args, threads, scratch) -> dict:
    """One ``tinyvae.train`` run; the last epoch's training seconds and the threads it used."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    command = [sys.executable, "-m", "tinyvae.train", "--dataset", args.dataset, "--epochs",
               str(args.epochs), "--no-progress", "--out", str(out), "--seed", "1"]  # fmt: skip
    if threads is not None:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment(),
                          timeout=args.busy_seconds)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    why = next((line for line in done.stdout.splitlines() if line.startswith("BLAS threads")), "")
    return {"seconds": rows[-1]["train_seconds"], "threads": rows[-1].get("threads"), "why": why}


def run_torch(args, threads) -> dict:
    """One ``torch_reference.py`` run: the last epoch's training seconds."""
    command = [args.torch_python, str(HERE / "torch_reference.py"), "--epochs", str(args.epochs),
               "--threads", str(threads), "--json", "--seed", "1"]  # fmt: skip
    env = environment() | {v: str(threads) for v in THREAD_VARIABLES}
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=args.busy_seconds)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": result["history"][-1]["train_s"], "threads": threads, "why": ""}


def contestants(args, cpus) -> dict:
    """name -> a function (scratch folder) -> result."""
    found = {
        "auto": lambda scratch: run_tinyvae(args, None, scratch),
        "1 thread": lambda scratch: run_tinyvae(args, 1, scratch),
        f"{cpus} threads": lambda scratch: run_tinyvae(args, cpus, scratch),
    }
    if args.torch_python and args.dataset == "fashion-mnist":  # the reference has no digits
        found[f"torch {cpus}"] = lambda scratch: run_torch(args, cpus)
        found["torch 1"] = lambda scratch: run_torch(args, 1)
    return found


def measure(args) -> dict:
    cpus = cpus_allowed()
    found = contestants(args, cpus)
    results = {}  # busy count -> name -> list of results
    with tempfile.TemporaryDirectory(prefix="bench-contention-") as scratch:
        for busy in args.busy:
            results[busy] = {name: [] for name in found}
            for repeat in range(args.repeats):
                order = list(found) if repeat % 2 == 0 else list(found)[::-1]
                for name in order:
                    procs = start_busy(busy, args.busy_seconds)
                    try:
                        results[busy][name].append(found[name](scratch))
                    finally:
                        stop_busy(procs)
                    time.sleep(args.pause)  # idle BLAS threads stop spinning
                    print(f"  {busy} busy, {name}: {results[busy][name][-1]['seconds']:.3f} s",
                          file=sys.stderr, flush=True)  # fmt: skip
    return {"cpus": cpus, "dataset": args.dataset, "epochs": args.epochs, "results": results}


def summarise(measured) -> list:
    """One row per number of busy processes: median seconds per contestant, and how the
    automatic choice compares with the best fixed thread count of tinyvae."""
    rows = []
    for busy, by_name in measured["results"].items():
        medians = {n: statistics.median(r["seconds"] for r in rs) for n, rs in by_name.items()}
        fixed = [n for n in medians if n != "auto" and not n.startswith("torch")]
        best = min(fixed, key=medians.get)
        chosen = sorted({r["threads"] for r in by_name["auto"]})
        all_threads = f"{measured['cpus']} threads"
        rows.append({"busy": busy, "medians": medians, "auto_threads": chosen, "best_fixed": best,
                     "auto_over_best_fixed": medians["auto"] / medians[best],
                     "auto_over_all_threads": medians["auto"] / medians[all_threads]})  # fmt: skip
    return rows


def print_table(measured, rows) -> None:
    names = list(rows[0]["medians"])
    print(f"seconds per epoch (median), {measured['dataset']}, last of {measured['epochs']} "
          f"epochs, {measured['cpus']} CPUs")  # fmt: skip
    print(
        f"{'busy':>4}  " + "  ".join(f"{n:>10}" for n in names) + "  auto threads  auto/best fixed"
    )
    for row in rows:
        cells = "  ".join(f"{row['medians'][n]:10.3f}" for n in names)
        print(f"{row['busy']:>4}  {cells}  {','.join(map(str, row['auto_threads'])):>12}  "
              f"{row['auto_over_best_fixed']:6.2f} ({row['best_fixed']})")  # fmt: skip


def main(argv=None) -> int:
    parser = Parser(
        prog="python benchmarks/bench_contention.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "digits"])
    parser.add_argument(
        "--epochs", type=bounded_int(1, 1000), default=2, help="per run; the last one is timed"
    )
    parser.add_argument("--busy", type=bounded_int(0, 64), action="append",
                        help="busy processes beside the epoch, repeatable (default: 0, 1, 2)")  # fmt: skip
    parser.add_argument(
        "--repeats", type=bounded_int(1, 100), default=3, help="runs of each contestant"
    )
    parser.add_argument("--busy-seconds", type=seconds, default=600.0,
                        help="deadline of each busy process and of each run")  # fmt: skip
    parser.add_argument("--pause", type=seconds, default=1.0, help="idle seconds between runs")
    parser.add_argument("--torch-python", help="a Python that has PyTorch, for the torch rows")
    parser.add_argument("--quick", action="store_true",
                        help="digits, 2 epochs, 0 and 1 busy, once: checks the script runs")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    if args.torch_python and not os.access(args.torch_python, os.X_OK):
        raise UserError(f"--torch-python {args.torch_python} is not a program that can be run: "
                        "give the path of a Python that has torch, or leave it out")  # fmt: skip
    if args.quick:
        args.dataset, args.epochs, args.busy, args.repeats = "digits", 2, [0, 1], 1
        args.busy_seconds, args.pause = 120.0, 0.2
    args.busy = args.busy or [0, 1, 2]
    measured = measure(args)
    rows = summarise(measured)
    print_table(measured, rows)
    if args.json:
        print(json.dumps({**measured, "summary": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
