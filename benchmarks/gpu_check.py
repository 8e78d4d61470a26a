"""One command that proves ``--backend cupy`` on a GPU, in at most five minutes.

    PYTHONPATH=. python benchmarks/gpu_check.py --out DIR [--data FOLDER]

It writes ``DIR/report.json`` (a status and the measurements of every part) and
``DIR/gpu_check.log`` (everything the parts printed), and ends with one line per part:

  environment  Python, NumPy, CuPy, the GPU, its driver and CUDA, PyTorch, the data
  gpu_tests    ``pytest -m gpu`` with TINYVAE_REQUIRE_GPU=1, so a GPU that cannot run fails
  sync         read-backs per training step over a whole epoch; steps queued while the GPU
               is kept busy, which shows that none of them waits for it
  cli          ``python -m tinyvae.train``, ``sample`` and ``evaluate --backend cupy``, on the
               digits and on 60,000 images, and the pictures they write (copied to DIR)
  speed        a CuPy epoch against PyTorch eager on CUDA, batch 128 and 1024, warm-up
               epoch first (``bench_train.py``)
  loglik       ``log_likelihood`` with k = 5000 on 1,000 images, warmed up (``bench_eval.py``)
  lesson08     lesson 8 run top to bottom in quick mode, its CuPy cells included
  conv         a CuPy epoch of the convolutional recipe (``--arch conv``)

Where no GPU can be used, every part but the first is skipped with a one-line reason and
the report is still written (``tests/test_gpu_check.py`` runs it so on every commit, so it
does not rot). ``--stand-in`` runs the GPU parts on ``tests/fake_cupy.py`` instead, to
rehearse this script on a CPU: its numbers mean nothing, and it is never a GPU run.

Each part runs in its own process, under a time limit; a part that would start with too
little of ``--budget`` left is skipped and says so. The environment part always runs first,
also when ``--parts`` leaves it out, since it decides whether there is a GPU; a budget
smaller than what the chosen parts need to start, an unknown part or an ``--out`` that is
not a folder ends the script with one line, ``error: ...``, and exit status 2. Nothing is installed: it runs with the
Python it is started with, from the checkout (PYTHONPATH=.).

Data: Fashion-MNIST's four ``.gz`` files, from ``--data FOLDER``, else ``.gpu-data/`` in the
checkout, else Debian's ``/usr/share/datasets/fashion-mnist``, else random images of the
same shape. For a machine without them: ``mkdir -p .gpu-data && cp
/usr/share/datasets/fashion-mnist/*.gz .gpu-data/`` (the folder is ignored by git; carry it).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tinyvae
from tinyvae.errors import UserError  # noqa: E402
from tinyvae.tools import cli  # noqa: E402
from tinyvae.tools.files import atomic_write, refuse_link  # noqa: E402
from tinyvae.tools.flags import Parser  # noqa: E402

HERE = ROOT / "benchmarks"
TESTS = ROOT / "tests"
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # fmt: skip
DATA_FOLDERS = (ROOT / ".gpu-data", Path("/usr/share/datasets/fashion-mnist"))


@dataclass
class Part:
    run: object  # run(args, out) -> its result, a dict (the part_... functions below)
    needs_gpu: bool
    budget: float  # seconds it may take at most
    least: float  # seconds it needs to be worth starting



# --- the driver: runs each part in a process of its own ---------------------------------------


def budget_seconds(text: str) -> float:
    """An argparse type: a finite, positive number of seconds (``--budget``)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds; got {text!r}")
    return value


def chosen_parts(text) -> list:
    """``--parts`` -> the parts to run, in the script's order, the environment first."""
    asked = list(PARTS) if text is None else [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in asked if p not in PARTS]
    if unknown or not asked:
        raise UserError(
            f"unknown --parts {', '.join(unknown) or repr(text)}: choose from {', '.join(PARTS)}, "
            "separated by commas"
        )
    return [name for name in PARTS if name in asked or name == "environment"]


def check_budget(budget: float, wanted: list) -> None:
    """A budget too small to start every chosen part is refused before anything runs."""
    least = sum(PARTS[name].least for name in wanted)
    if budget < least:
        raise UserError(
            f"--budget {budget:g} is less than the {least:.0f} s that {', '.join(wanted)} need "
            f"to start: give --budget {least:.0f} or more, or fewer --parts"
        )


def out_folder(text: str) -> Path:
    """``--out``: a folder (made if missing), whose report files are not links."""
    if not text.strip():
        raise UserError("--out is empty: give a folder for the report, such as gpu-check")
    out = Path(text).resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {text} is a file, not a folder: give a folder for the report")
    try:
        (out / "parts").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot make the folder {text} ({error.strerror or error}): choose another --out"
        ) from None
    for name in ("report.json", "gpu_check.log"):
        refuse_link(out / name)
    return out


def main(argv=None) -> int:
    parser = Parser(prog="python benchmarks/gpu_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, metavar="DIR", help="where the report goes")
    parser.add_argument("--data", metavar="FOLDER", help="Fashion-MNIST's four .gz files")
    parser.add_argument(
        "--budget", type=budget_seconds, default=290, help="seconds in all (default 290)"
    )
    parser.add_argument("--parts", help="comma-separated parts to run (default: all)")
    parser.add_argument("--stand-in", action="store_true", help="rehearse on tests/fake_cupy.py")
    parser.add_argument("--quick", action="store_true", help="small sizes: a rehearsal only")
    parser.add_argument("--pytest-k", help="gpu_tests: only the tests matching this -k")
    parser.add_argument("--torch-python", default=sys.executable, help="a Python with torch")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # a child: one part
    args = parser.parse_args(argv)
    args.data = str(Path(args.data).resolve()) if args.data else None
    if args.part:
        return child(args, Path(args.out))
    wanted = chosen_parts(args.parts)
    check_budget(args.budget, wanted)
    if args.data and data_folder(args) != Path(args.data):  # named, so never replaced by noise
        raise UserError(
            f"--data {args.data} lacks some of {', '.join(FASHION_FILES)}: give the folder "
            "that holds all four, or leave --data out"
        )
    out = out_folder(args.out)
    args.out = str(out)  # the parts run from the checkout's root
    log = open(out / "gpu_check.log", "w", encoding="utf-8")
    start, deadline = time.time(), time.time() + args.budget
    mode = "stand-in" if args.stand_in else "not known: the environment part did not finish"
    report = {
        "command": " ".join(["python", "benchmarks/gpu_check.py", *(argv or sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": mode,
        "budget_s": args.budget,
        "note": ("stand-in: the GPU parts ran on tests/fake_cupy.py, NumPy on the CPU; this "
                 "rehearses the script and proves nothing about a GPU") if args.stand_in else "",
        "parts": {},
    }  # fmt: skip
    env = child_env(args, out)
    say(
        log,
        f"gpu_check{' on the stand-in for CuPy' if args.stand_in else ''}: budget "
        f"{args.budget:.0f} s, report in {out}",
    )
    gpu_reason = "the environment part did not run"
    for name in PARTS:
        part, left = PARTS[name], deadline - time.time()
        if name not in wanted:
            continue
        if part.needs_gpu and gpu_reason:
            result = {"status": "skipped", "reason": f"no usable GPU: {gpu_reason}"}
        elif left < part.least:
            result = {"status": "skipped", "reason": f"out of time: {left:.0f} s of the "
                      f"budget left, this part needs {part.least:.0f} s or more"}  # fmt: skip
        else:
            result = run_part(name, args, out, env, log, min(part.budget, left))
        report["parts"][name] = result
        if name == "environment":
            gpu_reason = result.get("cupy_unavailable_reason") or ""
            if not args.stand_in:
                report["mode"] = (
                    "cpu: no usable GPU, the GPU parts skipped" if gpu_reason else "gpu"
                )
            if result.get("status") != "passed":
                gpu_reason = result.get("reason", "the environment part failed")
        report["seconds"] = round(time.time() - start, 1)
        write_json(out / "report.json", report)
        say(log, summary_line(name, result))
    ran = [n for n, r in report["parts"].items() if PARTS[n].needs_gpu and r["status"] != "skipped"]
    if report["mode"] == "gpu" and not ran:
        report["mode"] = "gpu, but no GPU part ran: see each part's reason"
        write_json(out / "report.json", report)
    failed = [n for n, r in report["parts"].items() if r["status"] == "failed"]
    say(log, f"done in {time.time() - start:.0f} s: " + (f"FAILED: {', '.join(failed)}" if failed
        else "no part failed") + f"; report: {out / 'report.json'}")  # fmt: skip
    log.close()
    return 1 if failed else 0


def child_env(args, out) -> dict:
    """The environment of every part: this checkout first on the path (and the stand-in
    before it, as ``cupy``, with --stand-in), pictures drawn without a display."""
    paths = [str(ROOT)]
    if args.stand_in:
        sys.path.insert(0, str(TESTS))
        import fake_cupy

        paths.insert(0, str(fake_cupy.install(Path(tempfile.mkdtemp(prefix="gpu-check-")))))
    old = os.environ.get("PYTHONPATH")
    return os.environ | {
        "PYTHONPATH": os.pathsep.join(paths + ([old] if old else [])),
        "MPLBACKEND": "Agg",
        "TINYVAE_REQUIRE_GPU": "1",
        "PYTHONUNBUFFERED": "1",
    }


def run_part(name, args, out, env, log, seconds) -> dict:
    """``python gpu_check.py --part NAME``, at most ``seconds``; its result file, or why not."""
    command = [sys.executable, str(Path(__file__).resolve()), "--part", name, *child_args(args)]
    say(log, f"--- {name} (at most {seconds:.0f} s)")
    start, result_file = time.time(), out / "parts" / f"{name}.json"
    result_file.unlink(missing_ok=True)
    # A session of its own, so that a part out of time goes with everything it started
    # (pytest, the benchmark's workers, the tools), not only its first process.
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    try:
        status = process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        status = None
    log.flush()
    elapsed = round(time.time() - start, 1)
    if status is None:
        return {
            "status": "failed",
            "reason": f"timed out after {seconds:.0f} s",
            "seconds": elapsed,
        }
    if not result_file.exists():
        return {"status": "failed", "reason": f"the part exited with status {status} and no "
                "result (see the log)", "seconds": elapsed}  # fmt: skip
    return json.loads(result_file.read_text()) | {"seconds": elapsed}


def child_args(args) -> list:
    flags = ["--out", str(args.out), "--torch-python", args.torch_python]
    flags += ["--data", args.data] if args.data else []
    flags += ["--stand-in"] if args.stand_in else []
    flags += ["--quick"] if args.quick else []
    flags += ["--pytest-k", args.pytest_k] if args.pytest_k else []
    return flags


def summary_line(name, result) -> str:
    status, seconds = result["status"], result.get("seconds")
    text = f"{name:12s} {status:7s}" + (f" {seconds:6.1f} s" if seconds is not None else " " * 9)
    return text + "  " + (result.get("summary") or result.get("reason") or "")


def say(log, text):
    print(text, flush=True)
    log.write(text + "\n")
    log.flush()


def write_json(path, value):
    text = json.dumps(value, indent=2, default=str) + "\n"
    atomic_write(path, lambda f: f.write(text), mode="w")


# --- a child: one part -------------------------------------------------------------------------


def child(args, out) -> int:
    """Run one part; write its result (status, summary, measurements) as parts/NAME.json."""
    sys.path.insert(0, str(TESTS))  # device_checks.py, fake_cupy.py
    try:
        result = PARTS[args.part].run(args, out)
        result.setdefault("status", "passed")
    except Exception as error:
        traceback.print_exc()
        result = {"status": "failed", "reason": f"{type(error).__name__}: {error}".splitlines()[0]}
    write_json(out / "parts" / f"{args.part}.json", result)
    return 0


def data_folder(args):
    """The folder with Fashion-MNIST's four files, or None (then the parts use random images)."""
    for folder in ([Path(args.data)] if args.data else []) + list(DATA_FOLDERS):
        if all((folder / name).is_file() for name in FASHION_FILES):
            return folder
    return None


def data_source(args) -> str:
    folder = data_folder(args)
    if args.data and folder is None:
        return f"random images: --data {args.data} lacks {', '.join(FASHION_FILES)}"
    return f"Fashion-MNIST from {folder}" if folder else "random images (no Fashion-MNIST found)"


def idx_folder(args, work: Path, n_train: int):
    """A folder of four IDX files for ``--data-dir``: Fashion-MNIST, or random images."""
    folder = data_folder(args)
    if folder is not None and not args.quick:
        return folder
    import numpy as np

    from tinyvae.tools.idx import write_idx

    folder, rng = work / "images", np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", max(n_train // 6, 100))):
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), np.uint8)
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    return folder


def run_tool(command, log_name, check=True):
    """A subprocess whose output is echoed as it comes (so a part out of time still leaves
    it in the log) and returned; raises when it fails, unless ``check`` is False (then
    returns its exit status too)."""
    command, start, lines = [str(c) for c in command], time.time(), []
    print(f"$ {' '.join(command)}", flush=True)
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as process:  # fmt: skip
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    print(f"({log_name}: {time.time() - start:.1f} s, status {process.returncode})", flush=True)
    if not check:
        return process.returncode, "".join(lines)
    if process.returncode != 0:
        last = lines[-1].strip() if lines else "no output"
        raise RuntimeError(f"{log_name} exited with status {process.returncode}: {last}")
    return "".join(lines)


def last_json(text) -> dict:
    """The last line of ``text`` that is a JSON object (the benchmarks end with one)."""
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def part_environment(args, out) -> dict:
    import importlib.metadata
    import importlib.util

    import numpy as np

    from tinyvae import cupy_check
    from tinyvae.core import backend

    cupy = backend.cupy
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
        "cupy": getattr(cupy, "__version__", None),
        "stand_in": bool(getattr(cupy, "STAND_IN", False)),
        "cupy_unavailable_reason": cupy_check.cupy_unavailable_reason(),
        "data": data_source(args),
        "nbformat": importlib.util.find_spec("nbformat") is not None,
    }
    for name in ("torch", "matplotlib", "pytest", "numba"):
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = None
    if cupy is not None and not info["stand_in"] and info["cupy_unavailable_reason"] is None:
        runtime = cupy.cuda.runtime
        props = runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["gpu_memory_gib"] = round(props["totalGlobalMem"] / 2**30, 1)
        info["compute_capability"] = f"{props['major']}.{props['minor']}"
        info["cuda_driver"] = runtime.driverGetVersion()
        info["cuda_runtime"] = runtime.runtimeGetVersion()
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT, timeout=10).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        commit = ""
    info["commit"] = commit or None
    device = info.get("gpu") or ("stand-in" if info["stand_in"] else "no GPU")
    info["summary"] = (f"{device}; Python {info['python']}, NumPy {info['numpy']}, CuPy "
                       f"{info['cupy']}, torch {info['torch']}; {info['data']}")  # fmt: skip
    return info


def part_gpu_tests(args, out) -> dict:
    import importlib.util
    import xml.etree.ElementTree as ET

    xml = out / "gpu_tests.xml"
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-v", "-p", "no:cacheprovider",
               "--durations=15", f"--junitxml={xml}", "tests"]  # fmt: skip
    if importlib.util.find_spec("nbformat") is None:  # test_lessons.py needs it (no GPU tests)
        command.append("--ignore=tests/test_lessons.py")
    if args.pytest_k:
        command += ["-k", args.pytest_k]
    returncode, _ = run_tool(command, "pytest -m gpu", check=False)  # streamed to the log
    if not xml.exists():
        return {"status": "failed", "reason": f"pytest exited with {returncode} and no report"}
    suite = ET.parse(xml).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    problems = []
    for case in suite.iter("testcase"):
        for kind in ("failure", "error"):
            for node in case.findall(kind):
                message = (node.get("message") or "").strip().splitlines()
                problems.append(f"{case.get('name')}: {message[0][:300] if message else kind}")
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    ok = returncode == 0 and counts["tests"] > 0 and not problems
    result = {"status": "passed" if ok else "failed", "exit_status": returncode,
              **counts, "passed": passed, "problems": problems[:50],
              "summary": f"{passed} passed, {counts['failures'] + counts['errors']} failed, "
                         f"{counts['skipped']} skipped of {counts['tests']} GPU tests"}  # fmt: skip
    if not ok:
        result["reason"] = problems[0] if problems else f"pytest exited with {returncode}"
    return result


def training_data(args, n):
    """(n, 784) float32 images in [0, 1] and (n,) labels: Fashion-MNIST, or random."""
    import numpy as np

    folder = data_folder(args)
    if folder is not None and not args.quick:
        from tinyvae.tools.data import read_idx_folder

        (x, y), _, _ = read_idx_folder(folder)
        return x[:n], y[:n], "fashion-mnist"
    rng = np.random.default_rng(0)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n), "random"


def part_sync(args, out) -> dict:
    """Over a whole epoch of the default recipe: how often the host reads back or waits."""
    from device_checks import HostWaited, gpu_stays_busy, started, train_steps

    from tinyvae.core.backend import Backend, get_backend
    from tinyvae.tools.config import TrainConfig, check
    from tinyvae.tools.data import Batches
    from tinyvae.tools.training import make_model, make_optimizer, train_epoch

    be = get_backend("cupy")
    stand_in = getattr(be.xp, "STAND_IN", False)
    x, y, source = training_data(args, 3000 if args.quick else 60000)
    config = check(TrainConfig(backend="cupy", no_progress=True))  # the default recipe
    model = make_model(config, x.shape[1], 10, be)
    optimizer = make_optimizer(model, config)
    batches = Batches(x, y, be, config.batch_size, config.seed)
    warm = train_epoch(model, optimizer, batches, config, 1)  # compiles every kernel
    counted = {"to_host": 0, "synchronize": 0}
    originals = {m: getattr(Backend, m) for m in counted}
    for method, original in originals.items():

        def counting(self, *a, _original=original, _method=method):
            counted[_method] += 1
            return _original(self, *a)

        setattr(Backend, method, counting)
    try:
        second = train_epoch(model, optimizer, batches, config, 2)
    finally:
        for method, original in originals.items():
            setattr(Backend, method, original)
    steps, every = len(batches), config.progress_every
    expected = steps // every + (1 if steps % every else 0) + 1  # progress reads, the sums
    result = {
        "data": source, "steps": steps, "progress_every": every,
        "read_backs": counted["to_host"], "waits": counted["synchronize"],
        "expected_read_backs": expected, "expected_waits": 1,
        "per_step": (counted["to_host"] + counted["synchronize"]) / steps,
        "first_epoch_seconds": warm["train_seconds"], "second_epoch_seconds": second["train_seconds"],
    }  # fmt: skip
    no_wait, rng = {}, be.rng(3)
    epoch = started(batches.epoch(3))
    try:
        if stand_in:
            with be.xp.forbid_read_back():
                train_steps(model, optimizer, epoch, config, 5, rng)
            no_wait["gpu_still_busy"] = "stand-in: no read-back in 5 steps"
        else:
            with gpu_stays_busy(be.xp, 2.0, no_wait):
                train_steps(model, optimizer, epoch, config, 5, rng)
        result["five_steps_without_waiting"] = True
    except (HostWaited, AssertionError) as error:
        result["five_steps_without_waiting"] = False
        result["reason"] = f"a step waited for the device: {error}"
    result["no_wait_check"] = no_wait
    if stand_in:
        result["stand_in_counts"] = dict(be.xp.counts)  # every read-back of any kind
    if not stand_in:  # does starting an epoch (the shuffle's sort) wait? Once per epoch.
        start_report = {}
        try:
            with gpu_stays_busy(be.xp, 2.0, start_report):
                started(batches.epoch(4))
            result["epoch_start_waits"] = False
        except HostWaited:
            result["epoch_start_waits"] = True
    timed = min(100, steps)  # host time to queue each step, against the time to run it
    epoch = started(batches.epoch(5))
    be.synchronize()
    t0 = time.perf_counter()
    train_steps(model, optimizer, epoch, config, timed, rng)
    host = time.perf_counter() - t0
    be.synchronize()
    result["host_ms_per_step"] = round(host * 1000 / timed, 3)
    result["wall_ms_per_step"] = round((time.perf_counter() - t0) * 1000 / timed, 3)
    ok = (counted["to_host"] == expected and counted["synchronize"] == 1
          and result["five_steps_without_waiting"])  # fmt: skip
    result["status"] = "passed" if ok else "failed"
    if not ok and "reason" not in result:
        result["reason"] = (f"{counted['to_host']} read-backs and {counted['synchronize']} waits "
                            f"in {steps} steps; expected {expected} and 1")  # fmt: skip
    result["summary"] = (f"{result['per_step']:.3f} read-backs or waits per step ({steps} steps, "
                         f"progress every {every}); 5 steps queued with no wait: "
                         f"{result['five_steps_without_waiting']}")  # fmt: skip
    return result


def part_cli(args, out) -> dict:
    work = Path(tempfile.mkdtemp(prefix="gpu-check-cli-"))
    python, runs, result = sys.executable, {}, {}
    common = ["--backend", "cupy", "--no-progress"]
    start = time.time()
    run_tool([python, "-m", "tinyvae.train", "--dataset", "digits", "--epochs", "2", *common,
              "--out", work / "digits"], "train on the digits")  # fmt: skip
    runs["digits"] = metrics(work / "digits")
    n = 3000 if args.quick else 60000
    folder = idx_folder(args, work, n)
    result["images_from"] = str(folder) if data_folder(args) == folder else f"random, {n}"
    run_tool([python, "-m", "tinyvae.train", "--data-dir", folder, "--epochs", "2", *common,
              "--out", work / "big"], "train on 60,000 images")  # fmt: skip
    runs["big"] = metrics(work / "big")
    run_tool([python, "-m", "tinyvae.sample", "--run", work / "big", "--backend", "cupy",
              "--out", work / "big" / "samples.png"], "sample")  # fmt: skip
    k, images = (50, 50) if args.quick else (1000, 500)
    evaluation = last_json(run_tool([python, "-m", "tinyvae.evaluate", "--run", work / "big",
                                     "--k", k, "--n", images, "--json", *common], "evaluate"))  # fmt: skip
    pictures = ["samples_epoch02.png", "reconstructions_epoch02.png", "loss.png", "latent.png",
                "interpolation.png", "samples.png"]  # fmt: skip
    missing = [p for p in pictures if not (work / "big" / p).is_file()]
    (out / "pictures").mkdir(exist_ok=True)
    for picture in pictures:
        if picture not in missing:
            data = (work / "big" / picture).read_bytes()
            atomic_write(out / "pictures" / picture, lambda f, data=data: f.write(data))
    shutil.rmtree(work, ignore_errors=True)
    big = runs["big"][-1]
    result |= {"digits": runs["digits"], "big": runs["big"], "evaluate": evaluation,
               "missing_pictures": missing, "tool_seconds": round(time.time() - start, 1)}  # fmt: skip
    result["status"] = "failed" if missing else "passed"
    if missing:
        result["reason"] = f"pictures not written: {', '.join(missing)}"
    result["summary"] = (f"digits {runs['digits'][-1]['test_loss']:.2f}, big {big['test_loss']:.2f} "
                         f"nats (epoch 2 at {big['images_per_s']:,.0f} img/s); evaluate: -log p(x) "
                         f"{evaluation['nll']:.2f} with k={k}; pictures in {out / 'pictures'}")  # fmt: skip
    return result


def metrics(folder) -> list:
    rows = [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]
    keep = ("epoch", "train_loss", "test_loss", "active_units", "train_seconds", "images_per_s")
    return [{k: r[k] for k in keep} for r in rows]


def part_speed(args, out) -> dict:
    folder = data_folder(args)
    command = [sys.executable, HERE / "bench_train.py", "--backend", "cupy", "--json",
               "--epochs", "1" if args.quick else "3", "--warmup", "1", "--pause", "0.1",
               "--torch-python", args.torch_python]  # fmt: skip
    command += ["--data-dir", folder] if folder is not None else ["--synthetic"]
    if args.quick:
        command += ["--batch-size", "1024", "--images", "2048"]
    runs = last_json(run_tool(command, "bench_train.py"))["runs"]
    result, lines = {"runs": runs}, []
    for run in runs:
        r, batch = run["results"], run["batch_size"]
        tv, torch = r["tinyvae"], r.get("torch")
        result[f"batch_{batch}"] = {
            "tinyvae_seconds_per_epoch": tv["seconds_per_epoch"],
            "tinyvae_images_per_s": tv["images_per_second"],
            "torch_seconds_per_epoch": torch and torch["seconds_per_epoch"],
            "ratio_tinyvae_over_torch": run.get("ratio_tinyvae_over_torch"),
            "matmuls_seconds_per_epoch": r.get("matmuls", {}).get("seconds_per_epoch"),
        }
        ratio = run.get("ratio_tinyvae_over_torch")
        lines.append(f"batch {batch}: {tv['images_per_second']:,.0f} img/s"
                     + (f", {ratio:.2f} x PyTorch's epoch" if ratio else ", no PyTorch"))  # fmt: skip
    ratio_128 = result.get("batch_128", {}).get("ratio_tinyvae_over_torch")
    result["target_ratio_at_128"] = 0.8
    result["target_met"] = None if ratio_128 is None else ratio_128 <= 0.8
    result["summary"] = "; ".join(lines) + (f"; target <= 0.8 at batch 128: "
                                            f"{'met' if result['target_met'] else 'NOT met'}"
                                            if ratio_128 else "")  # fmt: skip
    return result


def part_loglik(args, out) -> dict:
    folder = data_folder(args)
    images, k = (20, 100) if args.quick else (1000, 5000)
    command = [sys.executable, HERE / "bench_eval.py", "--backend", "cupy", "--json",
               "--images", images, "--k", k]  # fmt: skip
    command += ["--data-dir", folder] if folder is not None else ["--synthetic"]
    command += ["--train-epochs", "0"] if args.quick else []
    run = last_json(run_tool(command, "bench_eval.py"))["runs"][0]
    pool = run.get("device_pool_bytes")
    return {"run": run, "summary": f"k={k}, {images} images: {run['seconds']:.2f} s, "
            f"mean log p(x) {run['mean_log_px']:.2f}"
            + (f", CuPy pool {pool / 2**20:.0f} MiB" if pool else "")}  # fmt: skip


def part_lesson08(args, out) -> dict:
    """Lesson 8's code cells, in order, in one namespace, as a kernel would run them."""
    lessons = ROOT / "lessons"
    os.environ["TINYVAE_LESSON_MODE"] = "quick"
    os.chdir(lessons)
    sys.path.insert(0, str(lessons))
    notebook = json.loads((lessons / "08_speed.ipynb").read_text())
    cells = [("".join(c["source"])) for c in notebook["cells"] if c["cell_type"] == "code"]
    namespace, outputs, failure = {"__name__": "__main__"}, [], None
    import matplotlib.pyplot as plt

    for number, source in enumerate(cells, start=1):
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                exec(compile(source, f"lesson 8, code cell {number}", "exec"), namespace)
        except Exception:
            failure = f"code cell {number}: " + traceback.format_exc().strip().splitlines()[-1]
            buffer.write(traceback.format_exc())
        plt.close("all")
        outputs.append(f"--- code cell {number}\n{buffer.getvalue()}")
        if failure:
            break
    text = "\n".join(outputs)
    (out / "lesson08_outputs.txt").write_text(text)
    ran_cupy = "(CuPy)" in text and "gather on the GPU" in text and "No GPU" not in text
    result = {"cells": len(cells), "cells_run": len(outputs), "cupy_cells_ran": ran_cupy,
              "outputs": str(out / "lesson08_outputs.txt")}  # fmt: skip
    if failure or not ran_cupy:
        result |= {"status": "failed", "reason": failure or "the CuPy cells did not run"}
    comparison = [line for line in text.splitlines() if "same weights, batch and noise" in line]
    result["summary"] = (f"{len(outputs)} of {len(cells)} code cells ran"
                         + (f"; {comparison[0].strip()}" if comparison else ""))  # fmt: skip
    return result


def part_conv(args, out) -> dict:
    work = Path(tempfile.mkdtemp(prefix="gpu-check-conv-"))
    folder = idx_folder(args, work, 3000 if args.quick else 60000)
    run_tool([sys.executable, "-m", "tinyvae.train", "--arch", "conv", "--data-dir", folder,
              "--epochs", "2", "--backend", "cupy", "--no-progress", "--out", work / "conv"],
             "train --arch conv")  # fmt: skip
    rows = metrics(work / "conv")
    shutil.rmtree(work, ignore_errors=True)
    return {"epochs": rows, "summary": f"epoch 2 (warm): {rows[-1]['train_seconds']:.2f} s, "
            f"{rows[-1]['images_per_s']:,.0f} img/s, test loss {rows[-1]['test_loss']:.2f}"}  # fmt: skip


PARTS = {  # in the order they run
    "environment": Part(part_environment, False, 60, 5),
    "gpu_tests": Part(part_gpu_tests, True, 150, 30),
    "sync": Part(part_sync, True, 45, 15),
    "cli": Part(part_cli, True, 80, 20),
    "speed": Part(part_speed, True, 100, 40),
    "loglik": Part(part_loglik, True, 50, 15),
    "lesson08": Part(part_lesson08, True, 70, 20),
    "conv": Part(part_conv, True, 50, 20),
}

if __name__ == "__main__":
    sys.exit(cli.run(main))
