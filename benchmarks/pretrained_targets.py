"""The shipped models' targets, measured: a sample command's time, the package's growth, the
size and smoothness of a 60-frame walk for each model.

    python benchmarks/pretrained_targets.py            # 3 timed runs of each command
    python benchmarks/pretrained_targets.py --repeat 5

Times are wall-clock seconds of the whole command as a user runs it, ``python -m
tinyvae.sample --pretrained fashion-conv --out s.png``, Python's start and every import
included, in a fresh process each time (the first run may be slower: files not yet in
the system's cache). The growth is the bytes of ``tinyvae/tools/weights/`` and of the two
modules that read them (``pretrained.py``, ``walk.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tinyvae.tools import pretrained

TOOLS = Path(pretrained.__file__).parent


def timed(argv, cwd) -> tuple:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", *argv], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr)
    return time.perf_counter() - start, done.stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    load, version = os.getloadavg()[0], sys.version.split()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.2f}, Python {version}")
    with tempfile.TemporaryDirectory() as folder:
        command = ["tinyvae.sample", "--pretrained", "fashion-conv", "--out", "s.png"]
        times = [timed(command, folder)[0] for _ in range(args.repeat)]
        print(
            f"python -m {' '.join(command)}: {min(times):.2f} s best, "
            f"{statistics.median(times):.2f} s median of {args.repeat}"
        )
        weights = sum(p.stat().st_size for p in pretrained.WEIGHTS.glob("*.npz"))
        code = sum((TOOLS / f).stat().st_size for f in ("pretrained.py", "walk.py"))
        print(f"package growth: {weights / 1e6:.2f} MB of weights + {code / 1e3:.1f} kB of code")
        for name in pretrained.names():
            out = Path(folder) / f"{name}.gif"
            walk = ["--pretrained", name, "--walk", "--frames", "60", "--out", str(out)]
            seconds, said = timed(["tinyvae.sample", *walk], folder)
            smooth = said.splitlines()[-1].removeprefix("smoothness: ")
            print(f"{name}: 60-frame walk of 16 tiles, {out.stat().st_size / 1e6:.2f} MB, "
                  f"{seconds:.1f} s; {smooth}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
