"""Training speed of tinyvae against PyTorch eager, epoch by epoch, on the same machine.

The recipe is the PyTorch example's (``torch_reference.py``): 784-400-20-400-784, ReLU,
Bernoulli decoder, Adam lr 1e-3, batch 128, 60,000 images (Fashion-MNIST from Debian's
package, or uniform noise of the same shape when it is absent or with ``--synthetic``).
With ``--arch conv`` it is the convolutional recipe instead (``--arch conv`` of
``tinyvae.train``, channels 32,64, and ``torch_reference.py --arch conv``).

Up to four contestants run, each in its own process so that peak memory is its own:

* ``tinyvae``: the plain loop a user writes, ``model.loss_and_grads(xb, validate=False)``
  then ``opt.step()``, over batches gathered by a shuffled index;
* ``tinyvae-np``: the same loop on NumPy alone (``TINYVAE_KERNELS=numpy``): Adam's NumPy
  passes (``tinyvae/fast/adam.py``) and, for the conv recipe, ``conv.py``'s NumPy
  im2col and col2im, instead of the compiled loops of ``tinyvae/fast/``: what a user
  without Numba runs (only when Numba is installed: without it, ``tinyvae`` is that);
* ``torch``: ``torch_reference.train_epoch``, PyTorch eager on the same device
  (skipped when ``torch`` cannot be imported);
* ``jax``: ``jax_reference.py``, the same recipe with the whole step (forward, autodiff's
  backward, optax's Adam) compiled by ``jax.jit``, on the CPU only, with ``--jax-python``
  (an interpreter that has JAX and optax); XLA sizes its own thread pool to the CPUs (with
  ``--threads 1`` it is told to use one);
* ``halves``: the same loop with each step as ``--threads`` shares of the batch, one per
  thread, each with one BLAS thread (``tinyvae/tools/halves.py``): what ``tinyvae.train``
  runs for ``--arch conv`` on more than one thread (only with ``--threads`` 2 or more, on
  the CPU);
* ``matmuls``: only the matrix products of tinyvae's forward and backward passes for one
  epoch (11 for the MLP, 17 for the conv recipe), same shapes, on the same backend: the
  floor an epoch cannot go below.

They take turns, one epoch each, after ``--warmup`` epochs each, with a short idle pause
between turns, so that load from other programs hits all of them alike; the table shows
medians. Where the machine's speed drifts (a shared VM), the ratio of two contestants'
epochs within each round is steadier than the ratio of their medians: the table also gives
the median over the rounds of tinyvae's epoch over JAX's and PyTorch's, and in how many
rounds tinyvae was the faster. ``--skip`` leaves contestants out, to fit more rounds in.
Thread counts are set equally for both libraries (``--threads``: OMP/OpenBLAS/MKL
variables and ``torch.set_num_threads``). benchmarks/README.md has the measured results.

    python benchmarks/bench_train.py                          # NumPy, and CuPy with a GPU
    python benchmarks/bench_train.py --epochs 7 --json        # table, then one JSON line
    python benchmarks/bench_train.py --torch-python PATH/TO/venv/bin/python   # torch elsewhere
    python benchmarks/bench_train.py --no-torch --jax-python PATH/TO/jaxvenv/bin/python
    python benchmarks/bench_train.py --no-torch --skip tinyvae-np,halves --jax-python PATH --epochs 21
    python benchmarks/bench_train.py --arch conv --epochs 3   # the convolutional recipe

Without a GPU only the NumPy rows appear; with one, the CuPy rows follow, also at batch 1024.
A bad number or a ``--data-dir`` without the training images ends it with one line,
``error: ...``, and exit status 2, before anything is timed.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # the checkout: the benchmark measures this tinyvae, not an installed one
sys.path.insert(0, str(ROOT))
from tinyvae.errors import UserError  # noqa: E402
from tinyvae.tools.cli import run  # noqa: E402
from tinyvae.tools.config import parse_sizes  # noqa: E402
from tinyvae.tools.flags import Parser, bounded_int, nonnegative_int, positive_int  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
N_TRAIN, D, H, L = 60000, 784, 400, 20
OPTIONAL = ("tinyvae-np", "halves", "matmuls")  # the contestants --skip may leave out


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more (``--pause``)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a number of seconds, 0 or more; got {text!r}")
    return value


def contestant_names(text: str) -> tuple:
    """--skip's value: names from OPTIONAL, comma separated."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in OPTIONAL]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r}: name contestants to skip from {', '.join(OPTIONAL)} (tinyvae always runs; "
            "--no-torch skips PyTorch)"
        )
    return names


def checked_data_dir(given) -> str:
    """``--data-dir`` as given, which must hold the Fashion-MNIST files; without it, Debian's
    folder when it is there (else the benchmarks use noise and say so)."""
    if given is None:
        return DATA_DIR
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        if not (Path(given) / name).is_file():
            raise UserError(
                f"--data-dir {given} has no {name}: give a folder that holds Fashion-MNIST's "
                "gzip files, or --synthetic to time on noise"
            )
    return given


# --- shared helpers ----------------------------------------------------------------------


def train_file(data_dir):
    """Fashion-MNIST's training images in ``data_dir``, or None when absent."""
    path = Path(data_dir) / "train-images-idx3-ubyte.gz"
    return path if path.is_file() else None


def load_images(path):
    """An IDX image file (gzip) -> float32 (n, 784) in [0, 1], with NumPy alone.

    The same as ``torch_reference.load_images``, but importing that module imports PyTorch
    when it can (about 200 MiB), which would count in tinyvae's memory."""
    with gzip.open(path, "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return raw.reshape(-1, 784).astype(np.float32) / 255.0


def load_train_images(data_dir, synthetic, seed):
    """(N_TRAIN, 784) float32 in [0, 1] (60,000 unless --images), and where it came from."""
    path = train_file(data_dir)
    if synthetic or path is None:
        x = np.random.default_rng(seed).random((N_TRAIN, D), dtype=np.float32)
        return x, "synthetic"  # uniform noise: right shape for timing, meaningless as a loss
    return load_images(path)[:N_TRAIN], "fashion-mnist"


def load_test_images(data_dir, synthetic, seed):
    """The 10,000 test images (float32, in [0, 1]), or as many of uniform noise."""
    path = Path(data_dir) / "t10k-images-idx3-ubyte.gz"
    if synthetic or not path.is_file():
        return np.random.default_rng(seed + 1).random((10000, D), dtype=np.float32)
    return load_images(path)


def status_bytes(field):
    """One memory line of /proc/self/status (Linux), in bytes: "VmRSS" now, "VmHWM" peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak_rss():
    """Make the kernel forget this process's peak RSS so far (Linux: "5" into clear_refs),
    so that the peak read later belongs to what ran after the reset. False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes():
    """Highest resident memory of this process since the last reset (or since it started)."""
    return status_bytes("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def page_faults():
    """Minor page faults of this process so far: fresh memory taken from the kernel."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def steal_seconds():
    """CPU time the hypervisor gave to other machines, summed over this VM's CPUs, since boot
    (``/proc/stat``'s eighth column, in ticks of 1/100 s); 0.0 where it is not reported."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()  # cpu user nice system idle iowait irq softirq steal
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def thread_env(threads):
    """Environment that gives every BLAS/OpenMP runtime exactly ``threads`` threads."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class Worker:
    """A contestant in its own process: send "epoch", read back one JSON line."""

    def __init__(self, python, argv, env):
        command = [python, str(Path(__file__).resolve()), "--worker", *argv]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        self.hello = self._read()  # {"ok": true, ...} or {"ok": false, "error": ...}

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            return {"ok": False, "error": f"worker exited with status {self.proc.wait()}"}
        return json.loads(line)

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.poll() is None:
            result = self.ask("finish")
            self.proc.wait()
            return result
        return {}


# --- the contestants (each runs inside its own worker process) ----------------------------


def tinyvae_contestant(device, batch_size, seed, x, compiled=True, arch="mlp", channels=(32, 64),
                       parts=1):  # fmt: skip
    """The tinyvae training loop; returns ``run_epoch() -> mean loss`` and a sync function.
    ``parts`` > 1: each step as that many shares of the batch on as many threads, as
    ``tinyvae.train`` runs a conv model on more than one thread (``tinyvae/tools/halves.py``)."""
    import tinyvae
    from tinyvae.tools.halves import HalfBatches

    shape = dict(arch=arch, channels=channels, image_shape=(28, 28)) if arch == "conv" else {}
    model = tinyvae.VAE(D, hidden=(H,), latent_dim=L, backend=device, seed=seed, **shape)
    opt = tinyvae.Adam(model.flat, lr=1e-3, compiled=compiled)
    be = model.backend
    data = be.asarray(x)  # the whole training set on the device, copied once
    order_rng = np.random.default_rng(seed)
    halves = HalfBatches(model, opt, parts) if parts > 1 else None

    def run_epoch():
        order = be.asarray(order_rng.permutation(len(data)), dtype=np.int64)  # once per epoch
        total = 0.0
        for start in range(0, len(data), batch_size):
            xb = data[order[start : start + batch_size]]  # (B, 784), gathered on the device
            if halves is None:
                loss, _, _ = model.loss_and_grads(xb, validate=False)
                opt.step()
            else:
                loss, _ = halves(xb)
            total = total + loss * len(xb)  # stays a device scalar: no sync per step
        return float(total) / len(data)

    return run_epoch, be.synchronize, lambda: {}


def torch_contestant(device, batch_size, seed, threads, data_dir, synthetic, arch, channels):
    """``torch_reference.train_epoch`` on ``device`` ("cpu" or "cuda")."""
    import torch

    sys.path.insert(0, str(HERE))
    import torch_reference as ref

    torch.set_num_threads(threads)
    # Load as torch_reference.main does, test set included: this leaves glibc's malloc with
    # a raised mmap threshold, so PyTorch's per-step buffers come from the heap. Loading the
    # training set alone leaves it at 128 KB and costs PyTorch ~450,000 page faults and
    # 20-25 % more time per epoch here; the benchmark gives PyTorch its faster state.
    train, _ = ref.load_data(data_dir, synthetic, seed)
    data = train[:N_TRAIN].to(device)
    torch.manual_seed(seed)
    model = ref.build_model(arch, channels).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)

    def run_epoch():
        return ref.train_epoch(model, opt, data, batch_size, generator)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def memory():
        if device != "cuda":
            return {}
        return {"device_peak_bytes": int(torch.cuda.max_memory_reserved())}

    return run_epoch, sync, memory


def conv_products(B, channels, random):
    """The matrix products of one step of the conv recipe on 28x28 images, as (a, b) pairs
    shaped and laid out as ``tinyvae/core/conv.py`` multiplies them: a convolution is
    W^T (F, k*k*C) @ cols (k*k*C, N), N = output pixels * B; the conv1 input needs no gradient."""
    sizes = [28]
    for _ in channels:
        sizes.append(sizes[-1] // 2)
    ins, outs = (1, *channels[:-1]), channels
    pairs = []
    for i, (c, f) in enumerate(zip(ins, outs)):  # encoder convolutions
        n, kc = sizes[i + 1] ** 2 * B, 16 * c
        W, cols, dY = random(kc, f), random(kc, n), random(f, n)
        pairs += [(W.T, cols), (cols, dY.T)] + ([(W, dY)] if i > 0 else [])
    F = channels[-1] * sizes[-1] ** 2  # flattened features
    h, W_enc, dstats = random(B, F), random(F, 2 * L), random(B, 2 * L)
    z, W_dec, dh = random(B, L), random(L, F), random(B, F)
    pairs += [(h, W_enc), (h.T, dstats), (dstats, W_enc.T)]  # the encoder's linear layer
    pairs += [(z, W_dec), (z.T, dh), (dh, W_dec.T)]  # the decoder's linear layer
    for i, (c, f) in enumerate(zip(outs[::-1], ins[::-1])):  # transposed convolutions
        n, kf = sizes[-1 - i] ** 2 * B, 16 * f
        W, X, cols = random(c, kf), random(c, n), random(kf, n)
        pairs += [(W.T, X), (X, cols.T), (W, cols)]
    return pairs


def matmul_contestant(device, batch_size, seed, arch="mlp", channels=(32, 64)):
    """Only the matrix products of one tinyvae epoch (MLP: forward 4, backward 7), same shapes."""
    from tinyvae.core.backend import get_backend

    be = get_backend(device)
    xp, rng = be.xp, be.rng(seed)
    random = lambda *shape: rng.standard_normal(shape, dtype=np.float32)
    W1, W2, W3, W4 = random(D, H), random(H, 2 * L), random(L, H), random(H, D)

    def products_for(B):
        if arch == "conv":
            pairs = conv_products(B, channels, random)
            outs = [xp.empty((a.shape[0], b.shape[1]), dtype=np.float32) for a, b in pairs]

            def run_conv():
                for (a, b), out in zip(pairs, outs):
                    xp.matmul(a, b, out=out)

            return run_conv
        x, h1, z, h3 = random(B, D), random(B, H), random(B, L), random(B, H)  # activations
        d_out, d_h3, d_stats, d_h1 = random(B, D), random(B, H), random(B, 2 * L), random(B, H)
        pairs = [
            *[(x, W1), (h1, W2), (z, W3), (h3, W4)],  # forward
            *[(h3.T, d_out), (d_out, W4.T), (z.T, d_h3), (d_h3, W3.T)],  # decoder backward
            *[(h1.T, d_stats), (d_stats, W2.T), (x.T, d_h1)],  # encoder backward, no dX
        ]
        outs = [xp.empty((a.shape[0], b.shape[1]), dtype=np.float32) for a, b in pairs]

        def run():
            for (a, b), out in zip(pairs, outs):
                xp.matmul(a, b, out=out)

        return run

    full, last = products_for(batch_size), None
    if N_TRAIN % batch_size:
        last = products_for(N_TRAIN % batch_size)

    def run_epoch():
        for _ in range(N_TRAIN // batch_size):
            full()
        if last is not None:
            last()
        return float("nan")

    return run_epoch, be.synchronize, lambda: {}


def worker_main(args):
    """Set up one contestant, then answer "epoch" and "finish" on stdin/stdout."""
    out = sys.stdout
    sys.stdout = sys.stderr  # anything a library prints must not garble the protocol
    send = lambda obj: (out.write(json.dumps(obj) + "\n"), out.flush())
    try:
        source = "synthetic" if args.synthetic or not train_file(args.data_dir) else "fashion-mnist"
        channels = tuple(int(c) for c in args.channels.split(","))
        if args.worker == "matmuls":
            run_epoch, sync, memory = matmul_contestant(
                args.device, args.batch_size, args.seed, args.arch, channels
            )
        elif args.worker == "jax":
            x, source = load_train_images(args.data_dir, args.synthetic, args.seed)
            sys.path.insert(0, str(HERE))
            import jax_reference

            run_epoch, sync, memory = jax_reference.contestant(
                x, args.batch_size, args.seed, args.arch, channels
            )
        elif args.worker in ("tinyvae", "tinyvae-np", "halves"):
            x, source = load_train_images(args.data_dir, args.synthetic, args.seed)
            # The test set too, as tinyvae.train loads it and the torch contestant does (see
            # there), and kept, unused, on purpose: freeing the loader's temporaries raises
            # glibc's malloc thresholds, so a step's arrays come from the heap; loading the
            # training set alone cost the conv recipe ~290,000 page faults an epoch here
            # (~600 a step, each a fresh page of zeros; benchmarks/README.md).
            test_images = load_test_images(args.data_dir, args.synthetic, args.seed)  # noqa: F841
            compiled = args.worker != "tinyvae-np"
            parts = args.threads if args.worker == "halves" else 1
            run_epoch, sync, memory = tinyvae_contestant(
                args.device, args.batch_size, args.seed, x, compiled, args.arch, channels, parts
            )
        else:
            torch_device = "cuda" if args.device == "cupy" else "cpu"
            run_epoch, sync, memory = torch_contestant(
                torch_device,
                args.batch_size,
                args.seed,
                args.threads,
                args.data_dir,
                args.synthetic,
                args.arch,
                channels,
            )
    except Exception as error:  # e.g. no torch, no CuPy: reported, not fatal to the run
        send({"ok": False, "error": f"{type(error).__name__}: {error}"})
        return 0
    # Loading the data briefly needs twice its size (bytes -> float32 -> / 255); that peak
    # is not training's, so it is forgotten here. The peak reported then covers the epochs,
    # with the libraries, the model and the resident training set included.
    peak_reset = reset_peak_rss()
    torch_loaded = "torch" in sys.modules  # only the torch contestant may have it
    send({"ok": True, "data": source, "base_rss": status_bytes("VmRSS"), "peak_reset": peak_reset,
          "torch_loaded": torch_loaded})  # fmt: skip
    for line in sys.stdin:
        if line.strip() == "epoch":
            sync()
            faults, t0 = page_faults(), time.perf_counter()
            loss = run_epoch()
            sync()
            seconds, faults = time.perf_counter() - t0, page_faults() - faults
            send({"seconds": seconds, "loss": loss, "page_faults": faults})
        else:  # "finish"
            send({"peak_rss": peak_rss_bytes(), **memory()})
            return 0
    return 0


# --- the driver -----------------------------------------------------------------------------


def numba_present():
    from tinyvae.fast.adam import compiled_adam_loop

    return compiled_adam_loop() is not None


def gpu_present():
    from tinyvae.cupy_check import cupy_unavailable_reason

    return cupy_unavailable_reason() is None


def race(args, device, batch_size):
    """Run the contestants in turns on one device and batch size; a dict of results."""
    flags = dict(device=device, batch_size=batch_size, seed=args.seed, threads=args.threads,
                 images=args.images)  # fmt: skip
    flags.update(data_dir=args.data_dir, arch=args.arch, channels=args.channels)
    common = [f"--{name.replace('_', '-')}={value}" for name, value in flags.items()]
    common += ["--synthetic"] if args.synthetic else []
    adam = "cupy kernel" if device == "cupy" else "compiled" if numba_present() else "numpy"
    names = ["tinyvae", "matmuls"] + ([] if args.no_torch else ["torch"])
    names += ["jax"] if args.jax_python and device == "numpy" else []
    if device == "numpy" and args.threads > 1:  # what tinyvae.train runs for --arch conv
        names.insert(1, "halves")
    if adam == "compiled":  # "tinyvae" runs the compiled loop: time NumPy's passes too
        names.insert(1, "tinyvae-np")
    names = [name for name in names if name not in args.skip]
    workers = {}
    for name in names:
        python = {"torch": args.torch_python, "jax": args.jax_python}.get(name, sys.executable)
        numpy_only = {"TINYVAE_KERNELS": "numpy"} if name == "tinyvae-np" else {}
        one_thread = {"XLA_FLAGS": XLA_ONE_THREAD} if name == "jax" and args.threads == 1 else {}
        blas = 1 if name == "halves" else args.threads  # each share runs one BLAS thread
        w = Worker(python, [name, *common], thread_env(blas) | numpy_only | one_thread)
        if w.hello.get("ok"):
            workers[name] = w
        else:
            hint = {"torch": " (--torch-python names an interpreter that has it)",
                    "jax": " (--jax-python names an interpreter that has JAX and optax)"}.get(name, "")  # fmt: skip
            print(f"  {name} skipped: {w.hello.get('error')}{hint}", file=sys.stderr)
    times = {name: [] for name in workers}
    losses = {name: [] for name in workers}
    faults = {name: [] for name in workers}
    stolen = {name: [] for name in workers}  # CPU seconds taken by other VMs during each epoch
    load_before = os.getloadavg()[0]
    for round_ in range(args.warmup + args.epochs):
        turn = list(workers) if round_ % 2 == 0 else list(workers)[::-1]  # alternate who goes first
        for name in turn:
            time.sleep(
                args.pause
            )  # let the last contestant's idle BLAS/OpenMP threads stop spinning
            steal_before = steal_seconds()
            reply = workers[name].ask("epoch")
            if round_ >= args.warmup:
                stolen[name].append(steal_seconds() - steal_before)
                times[name].append(reply["seconds"])
                losses[name].append(reply["loss"])
                faults[name].append(reply["page_faults"])
    load_after = os.getloadavg()[0]
    results = {}
    for name, w in workers.items():
        end = w.close()
        median = statistics.median(times[name])
        results[name] = dict(
            seconds_per_epoch=median,
            fastest_epoch_seconds=min(times[name]),
            images_per_second=N_TRAIN / median,
            epoch_seconds=times[name],
            page_faults_per_epoch=faults[name],
            steal_seconds_per_epoch=stolen[name],
            peak_rss_bytes=end.get("peak_rss"),
            base_rss_bytes=w.hello.get("base_rss"),
            torch_loaded=w.hello.get("torch_loaded"),  # True only for "torch": its memory
            last_loss=losses[name][-1],
            **{k: v for k, v in end.items() if k.startswith("device")},
        )
    summary = dict(
        device=device,
        arch=args.arch,
        batch_size=batch_size,
        data=workers["tinyvae"].hello["data"],
        load_before=load_before,
        load_after=load_after,
        results=results,
    )
    summary["adam"] = adam
    torch_seconds = results["torch"]["seconds_per_epoch"] if "torch" in results else None
    jax_seconds = results["jax"]["seconds_per_epoch"] if "jax" in results else None
    matmuls = results.get("matmuls")
    for name, suffix in (("tinyvae", ""), ("tinyvae-np", "_numpy_adam"), ("halves", "_halves")):
        if name in results:
            tv = results[name]["seconds_per_epoch"]
            if matmuls:
                summary["ratio_epoch_over_matmuls" + suffix] = tv / matmuls["seconds_per_epoch"]
            if torch_seconds:
                summary["ratio_tinyvae_over_torch" + suffix] = tv / torch_seconds
            if jax_seconds:
                summary["ratio_tinyvae_over_jax" + suffix] = tv / jax_seconds
    for rival in ("torch", "jax"):  # round by round: each ratio from epochs run side by side
        if rival in results:
            ratios = [ours / theirs for ours, theirs in zip(times["tinyvae"], times[rival])]
            summary[f"round_ratios_tinyvae_over_{rival}"] = ratios
    return summary


def print_table(summaries):
    """One row per contestant: median and fastest epoch, images/s, peak RSS, last loss."""
    print(
        f"{'device':6} {'batch':>5} {'contestant':10} {'s/epoch':>8} {'fastest':>8} "
        f"{'images/s':>9} {'peak RSS MiB':>12} {'loss':>8}"
    )
    for s in summaries:
        for name, r in s["results"].items():
            peak = f"{r['peak_rss_bytes'] / 2**20:.0f}" if r["peak_rss_bytes"] else "-"
            loss = "" if r["last_loss"] != r["last_loss"] else f"{r['last_loss']:.2f}"  # nan: none
            print(
                f"{s['device']:6} {s['batch_size']:5d} {name:10} {r['seconds_per_epoch']:8.3f} "
                f"{r['fastest_epoch_seconds']:8.3f} {r['images_per_second']:9.0f} {peak:>12} "
                f"{loss:>8}"
            )
        for label, suffix in (("tinyvae", ""), ("tinyvae-np", "_numpy_adam"), ("halves", "_halves")):
            if label not in s["results"]:
                continue
            ratios = []
            if "ratio_epoch_over_matmuls" + suffix in s:
                ratios.append(f"epoch/matmuls = {s['ratio_epoch_over_matmuls' + suffix]:.2f}")
            if "ratio_tinyvae_over_torch" + suffix in s:
                ratios.insert(0, f"{label}/torch = {s['ratio_tinyvae_over_torch' + suffix]:.2f}")
            if "ratio_tinyvae_over_jax" + suffix in s:
                ratios.insert(0, f"{label}/jax = {s['ratio_tinyvae_over_jax' + suffix]:.2f}")
            if ratios:
                print(f"{'':13}{', '.join(ratios)}")
        for rival in ("torch", "jax"):
            rounds = s.get(f"round_ratios_tinyvae_over_{rival}")
            if rounds:
                faster = sum(r < 1 for r in rounds)
                print(f"{'':13}tinyvae/{rival} round by round: median {statistics.median(rounds):.2f} "
                      f"(from {min(rounds):.2f} to {max(rounds):.2f}); tinyvae faster in {faster} "
                      f"of {len(rounds)} rounds")  # fmt: skip
        stray = [n for n, r in s["results"].items() if n != "torch" and r["torch_loaded"]]
        if stray:
            print(f"{'':13}warning: PyTorch was loaded in {', '.join(stray)}: memory inflated")
        steal = {n: sum(r["steal_seconds_per_epoch"]) for n, r in s["results"].items()}
        if any(steal.values()):  # a VM whose hypervisor gave its CPUs' time to others
            taken = ", ".join(f"{n} {t:.1f} s" for n, t in steal.items())
            print(f"{'':13}CPU time taken by other machines (steal) during the epochs: {taken}")
        print(
            f"{'':13}({s['arch']} recipe; medians; tinyvae's Adam: {s['adam']}; data: {s['data']}; "
            f"load average {s['load_before']:.2f} -> {s['load_after']:.2f})"
        )


def main(argv=None):
    global N_TRAIN  # --images changes it (only to rehearse: the figures are for 60,000)
    parser = Parser(prog="python benchmarks/bench_train.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=bounded_int(1, 1000), default=5, help="timed epochs per contestant"
    )
    parser.add_argument("--warmup", type=nonnegative_int, default=1, help="untimed epochs first")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        action="append",
        help="repeatable; default 128, plus 1024 on a GPU",
    )
    parser.add_argument(
        "--backend",
        choices=["numpy", "cupy", "all"],
        default="all",
        help="'all': NumPy, and CuPy when a GPU is present",
    )
    parser.add_argument(
        "--threads", type=bounded_int(1, 1024), default=2, help="threads for both libraries"
    )
    parser.add_argument("--pause", type=seconds, default=0.5, help="seconds idle between turns")
    parser.add_argument("--seed", type=nonnegative_int, default=1)
    parser.add_argument(
        "--images",
        type=bounded_int(1, N_TRAIN),
        default=N_TRAIN,
        help="training images (fewer only to rehearse)",
    )
    parser.add_argument("--arch", choices=["mlp", "conv"], default="mlp", help="the recipe timed")
    parser.add_argument(
        "--channels", default="32,64", help="--arch conv: channels, comma separated"
    )
    parser.add_argument("--data-dir", help=f"Fashion-MNIST's gzip files (default: {DATA_DIR})")
    parser.add_argument("--synthetic", action="store_true", help="uniform noise instead of data")
    parser.add_argument(
        "--torch-python",
        default=sys.executable,
        help="interpreter that has torch (default: this one)",
    )
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch contestant")
    parser.add_argument(
        "--jax-python",
        help="interpreter that has JAX and optax: adds the jax.jit contestant (CPU only)",
    )
    parser.add_argument(
        "--skip",
        type=contestant_names,
        default=(),
        help=f"contestants to leave out, comma separated: {', '.join(OPTIONAL)}",
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="numpy", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    N_TRAIN = args.images
    args.data_dir = checked_data_dir(args.data_dir)
    args.channels = ",".join(map(str, parse_sizes(args.channels, "--channels")))
    if args.warmup > 100 or max(args.batch_size or [1]) > args.images:
        raise UserError(
            f"--batch-size must be at most --images ({args.images:,}) and --warmup at most 100"
        )
    if not args.worker and not args.no_torch and not os.access(args.torch_python, os.X_OK):
        raise UserError(
            f"--torch-python {args.torch_python} is not a program that can be run: give the "
            "path of a Python that has torch, or --no-torch"
        )
    if args.jax_python and not os.access(args.jax_python, os.X_OK):
        raise UserError(
            f"--jax-python {args.jax_python} is not a program that can be run: give the "
            "path of a Python that has JAX and optax, or leave it out"
        )
    if args.worker:
        args.batch_size = args.batch_size[0]
        return worker_main(args)

    sys.path.insert(0, str(ROOT))
    devices = ["numpy"] if args.backend == "numpy" else ["numpy", "cupy"]
    if args.backend == "cupy":
        devices = ["cupy"]
    if "cupy" in devices and not gpu_present():
        if args.backend == "cupy":
            raise UserError("no usable GPU for the CuPy backend: use --backend numpy or all")
        devices.remove("cupy")
    summaries = []
    for device in devices:
        sizes = args.batch_size or ([128, 1024] if device == "cupy" else [128])
        for batch_size in sizes:
            print(
                f"{args.arch}, {device}, batch {batch_size}: {args.warmup} warm-up + {args.epochs} timed "
                f"epochs per contestant, {args.threads} threads ...",
                file=sys.stderr,
                flush=True,
            )
            summaries.append(race(args, device, batch_size))
    print_table(summaries)
    if args.json:
        print(json.dumps(dict(threads=args.threads, nproc=os.cpu_count(), runs=summaries)))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
