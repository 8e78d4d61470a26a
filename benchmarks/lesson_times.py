"""How long the lessons take to run, one after the other, as CI and the autograder run them.

    python benchmarks/lesson_times.py                 # every lesson, quick mode
    python benchmarks/lesson_times.py 03 12 --mode full
    python benchmarks/lesson_times.py --solutions     # the teacher's notebooks, as graded

Each lesson is executed top to bottom by a fresh Jupyter kernel (nbclient, kernel
``python3``), exactly as ``tests/test_lessons.py`` does: ``TINYVAE_LESSON_MODE`` set, this
checkout's tinyvae first on ``PYTHONPATH``, no thread variables set (each lesson's
``settings()`` makes the automatic choice of ``tinyvae/tools/threads.py``, as a student's
kernel does). ``--busy N`` runs the lessons beside N processes that each keep one CPU busy,
started before the first lesson and stopped after the last. For each lesson it prints the
wall-clock seconds and the CPU seconds of the kernel process (user + system, read from
``getrusage(RUSAGE_CHILDREN)`` once the kernel has exited), then the totals, the machine
(CPU model, cores) and the load average before and after. On a machine shared with other
jobs the wall-clock time grows with the load while the CPU time hardly does, so the CPU
time is the figure to compare between machines; on a quiet machine the two agree.
With ``--solutions`` it runs the instructor notebooks that ``course/build.py`` makes (the
lessons with every exercise solved, what the autograder runs on a correct submission)
instead of the lessons as committed (every exercise untouched).
``--json`` ends the output with one JSON line of all of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_contention import THREAD_VARIABLES, start_busy, stop_busy  # noqa: E402


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what platform says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_lesson(path: Path) -> tuple[float, float]:
    """Execute one notebook in a fresh kernel, in its folder: (wall seconds, kernel CPU seconds)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    cpu, start = children_cpu_seconds(), time.perf_counter()
    NotebookClient(
        nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()  # returns after the kernel has been shut down and reaped
    return time.perf_counter() - start, children_cpu_seconds() - cpu


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers or names (default: all)")
    parser.add_argument("--mode", default="quick", choices=("quick", "full"))
    parser.add_argument("--solutions", action="store_true", help="run the instructor notebooks")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="beside N processes that each keep one CPU busy (default 0)")  # fmt: skip
    args = parser.parse_args(argv)

    paths = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
    if args.lessons:
        paths = [p for p in paths if p.stem[:2] in args.lessons or p.stem in args.lessons]
    if not paths:
        print(f"no lesson matches {' '.join(args.lessons)}", file=sys.stderr)
        return 2
    os.environ["TINYVAE_LESSON_MODE"] = args.mode
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    if not 0 <= args.busy <= 64:
        parser.error(f"--busy takes 0 to 64 processes, not {args.busy}")
    for variable in THREAD_VARIABLES:  # the lessons choose their threads themselves
        os.environ.pop(variable, None)
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")

    if args.solutions:  # the instructor notebooks, each in its folder beside the helpers
        sys.path.insert(0, str(ROOT / "course"))
        import build

        folder = tempfile.mkdtemp(prefix="tinyvae-course-")
        paths = build.build(folder, tuple(p.stem for p in paths))

    load_before = os.getloadavg()
    busy = start_busy(args.busy, seconds=6 * 3600)  # they end by themselves if this is killed
    rows = []
    print(f"{'lesson':24s} {'wall s':>8s} {'CPU s':>8s}")
    try:
        for path in paths:
            wall, cpu = run_lesson(path)
            rows.append({"lesson": path.stem, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)})
            print(f"{path.stem:24s} {wall:8.1f} {cpu:8.1f}", flush=True)
        load_after = os.getloadavg()
    finally:
        stop_busy(busy)
    if args.solutions:
        shutil.rmtree(folder, ignore_errors=True)
    wall = sum(r["wall_s"] for r in rows)
    cpu = sum(r["cpu_s"] for r in rows)
    print(f"{'total':24s} {wall:8.1f} {cpu:8.1f}")
    machine = f"{cpu_model()}, {os.cpu_count()} logical cores, Python {platform.python_version()}"
    what = "instructor notebooks (solved)" if args.solutions else "lessons as committed"
    print(f"mode {args.mode}, {what}, beside {args.busy} busy processes; {machine}")
    print("load average (1, 5, 15 min): before " + ", ".join(f"{v:.1f}" for v in load_before)
          + "; after " + ", ".join(f"{v:.1f}" for v in load_after))  # fmt: skip
    if args.json:
        print(json.dumps({"mode": args.mode, "solutions": args.solutions, "busy": args.busy,
                          "machine": machine, "lessons": rows,
                          "total_wall_s": round(wall, 1), "total_cpu_s": round(cpu, 1),
                          "load_before": load_before, "load_after": load_after}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
