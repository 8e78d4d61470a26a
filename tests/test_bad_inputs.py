"""Every bad input a student can give tinyvae, and the one-line answer each one gets.

The command-line table runs each case as a user would, ``python -m tinyvae.<tool> ...`` in a
subprocess, and asserts exit status 2, exactly one line on stderr (``error: ...``) holding
the expected words (what was wrong, and what to do), and no traceback. Data files, runs,
a local HTTP mirror and a stand-in ``cupy`` package are made in a temporary folder; nothing
touches the internet. The Python API table below checks that the library itself raises a
``ValueError`` or ``TypeError`` naming the argument.
"""

import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from conftest import assert_refused_in_one_line

import tinyvae
from tinyvae.cupy_check import cupy_unavailable_reason
from tinyvae.errors import Diverged
from tinyvae.tools import checkpoint
from tinyvae.tools.cli import run
from tinyvae.tools.config import TrainConfig, check
from tinyvae.tools.data import Batches, load
from tinyvae.tools.idx import DataError, write_idx
from tinyvae.tools.training import make_model, make_optimizer, train_epoch
from tinyvae.train import main as train_main

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = ["--dataset", "digits", "--no-progress"]


@dataclass
class Case:
    """One bad command line. ``{w}`` in an argument is the workspace folder."""

    name: str
    args: list
    words: list  # fragments the one-line message must hold
    tool: str = "train"
    env: dict = field(default_factory=dict)

    def argv(self, w) -> list:
        args = [a.format(w=w) for a in self.args]
        if self.tool == "train" and "--out" not in args:
            args += [*TINY, "--out", f"{w}/out/{self.name.replace(' ', '-')}"]
        return args


SIZES = "--hidden must be positive layer sizes separated by commas, like 400 or 512,256"
FAKE_CUPY = {"PYTHONPATH": "{w}/fakecupy"}

CASES = [
    # --- flags: names -----------------------------------------------------------------------
    Case("unknown backend", ["--backend", "tpu"], ["unknown --backend 'tpu'", "numpy, cupy"]),
    Case("unknown dataset", ["--dataset", "cifar10"], ["unknown --dataset", "mnist, fashion"]),
    Case("unknown activation", ["--activation", "swish"], ["unknown --activation", "relu"]),
    Case("unknown likelihood", ["--likelihood", "poisson"], ["bernoulli, gaussian"]),
    Case("unknown optimizer", ["--optimizer", "rmsprop"], ["unknown --optimizer", "adam, sgd"]),
    Case("misspelt flag", ["--epocs", "3"], ["unrecognized arguments: --epocs 3", "--epochs?"]),
    # --- flags: numbers ---------------------------------------------------------------------
    Case("zero epochs", ["--epochs", "0"], ["--epochs must be a positive integer", "got 0"]),
    Case("negative epochs", ["--epochs", "-3"], ["--epochs must be a positive integer"]),
    Case("word epochs", ["--epochs", "ten"], ["--epochs must be a positive integer", "'ten'"]),
    Case("fractional epochs", ["--epochs", "2.5"], ["--epochs must be a positive integer"]),
    Case("zero batch size", ["--batch-size", "0"], ["--batch-size must be a positive integer"]),
    Case(  # one step per epoch, and nothing learned: refused once the data are loaded
        "batch larger than the data",
        ["--batch-size", "100000"],
        ["--batch-size 100000 is more than the 1,500 training images of digits", "at most 1500"],
    ),
    Case(
        "negative value taken for a flag",
        ["--likelihood", "gaussian", "--gaussian-logvar", "-1e3"],
        ["--gaussian-logvar: expected one argument", "written --gaussian-logvar=VALUE"],
    ),
    Case("word batch size", ["--batch-size", "big"], ["--batch-size must be a positive integer"]),
    Case("zero latent size", ["--latent-dim", "0"], ["--latent-dim must be a positive integer"]),
    Case("fractional latent", ["--latent-dim", "1.5"], ["--latent-dim must be a positive"]),
    Case("zero learning rate", ["--lr", "0"], ["--lr must be a positive number", "0.001"]),
    Case("negative learning rate", ["--lr", "-0.01"], ["--lr must be a positive number"]),
    Case("word learning rate", ["--lr", "fast"], ["--lr must be a positive number", "'fast'"]),
    Case("nan learning rate", ["--lr", "nan"], ["--lr must be a positive number", "nan"]),
    Case("infinite learning rate", ["--lr", "inf"], ["--lr must be a positive number"]),
    # --- flags: --hidden --------------------------------------------------------------------
    Case("hidden with a hole", ["--hidden", "400,,x"], [SIZES, "'400,,x'"]),
    Case("hidden empty", ["--hidden", ""], [SIZES]),
    Case("hidden zero", ["--hidden", "64,0"], [SIZES]),
    Case("hidden semicolons", ["--hidden", "64;32"], [SIZES]),
    Case("hidden too big", ["--hidden", "100000000000000"], ["out of memory", "smaller --hidden"]),
    Case("hidden beyond any array", ["--hidden", str(2**63)], ["out of memory", "--hidden"]),
    Case(  # refused by its bound, before anything is allocated
        "samples beyond any array",
        ["--run", "{w}/run", "--n", str(2**63)],
        ["--n must be a positive integer, at most 10,000"],
        tool="sample",
    ),
    # --- data -------------------------------------------------------------------------------
    Case("missing data dir", ["--data-dir", "{w}/nowhere"], ["does not exist", "give a folder"]),
    Case("empty data dir", ["--data-dir", "{w}/empty"], ["has no train-images-idx3", "needs"]),
    Case("data dir is a file", ["--data-dir", "{w}/afile"], ["is a file, not a folder"]),
    Case("truncated data file", ["--data-dir", "{w}/truncated"], ["truncated", "fetch it again"]),
    Case("truncated gzip", ["--data-dir", "{w}/truncated-gz"], ["damaged gzip", "fetch it again"]),
    Case("corrupted gzip", ["--data-dir", "{w}/crc"], ["damaged gzip data (CRC check failed"]),
    Case("foreign data file", ["--data-dir", "{w}/foreign"], ["not an IDX file", "replace it"]),
    Case("labels for images", ["--data-dir", "{w}/swapped"], ["uint8 images", "right file"]),
    Case("counts disagree", ["--data-dir", "{w}/counts"], ["60 images but", "59 labels", "same"]),
    Case(
        "checksum mismatch",
        ["--dataset", "mnist", "--no-progress", "--out", "{w}/out/checksum"],
        ["train-images-idx3-ubyte.gz from $TINYVAE_MIRRORS", "checksum mismatch", "'digits'"],
        env={"TINYVAE_MIRRORS": "{mirror}"},
    ),
    Case(
        "mirror unreachable",
        ["--dataset", "mnist", "--no-progress", "--out", "{w}/out/offline"],
        ["could not download", "--data-dir FOLDER", "/cache/mnist by hand", "TINYVAE_MIRRORS"],
        env={"TINYVAE_MIRRORS": "{dead}"},
    ),
    # --- output -----------------------------------------------------------------------------
    Case(
        "out inside a file", ["--out", "{w}/afile/run"], ["afile is a file, not a folder"]
    ),
    Case("out is a file", ["--out", "{w}/afile"], ["is a file, not a folder", "another --out"]),
    Case("out holds a run", ["--out", "{w}/run"], ["already holds a run", "add --resume"]),
    Case(
        "sample into a missing folder",
        ["--run", "{w}/run", "--out", "{w}/nowhere/grid.png"],
        ["cannot write", "choose an --out"],
        tool="sample",
    ),
    Case(
        "sample into a folder",
        ["--run", "{w}/run", "--out", "{w}/empty"],
        ["is a folder: give a file name", "samples.png"],
        tool="sample",
    ),
    Case(
        "sample as text",
        ["--run", "{w}/run", "--out", "{w}/grid.txt"],
        ["cannot write a picture named grid.txt", ".png", "choose a name"],
        tool="sample",
    ),
    Case(
        "sample over the run's latent picture",
        ["--run", "{w}/run", "--out", "{w}/run/latent.png"],
        ["one of the files training wrote into the run", "choose another name"],
        tool="sample",
    ),
    Case(
        "sample over the run's samples of an epoch",
        ["--run", "{w}/run", "--out", "{w}/run/samples_epoch01.png"],
        ["one of the files training wrote into the run"],
        tool="sample",
    ),
    Case(  # renaming over it would replace the pipe (or a device: /dev/full) with a file
        "sample onto a pipe",
        ["--run", "{w}/run", "--out", "{w}/fifo.png"],
        ["fifo.png: it is not a regular file", "another name"],
        tool="sample",
    ),
    # --- resume and checkpoints -------------------------------------------------------------
    Case("resume nothing", ["--resume", "--out", "{w}/nowhere"], ["no checkpoint to", "without"]),
    Case(
        "resume truncated checkpoint",
        ["--resume", "--out", "{w}/run-truncated"],
        ["truncated or corrupt", "use an earlier copy"],
    ),
    Case(
        "resume foreign file",
        ["--resume", "--out", "{w}/run-garbage"],
        ["not a tinyvae checkpoint", "run folder"],
    ),
    Case(
        "resume other architecture",
        ["--resume", "--out", "{w}/run-arch", "--epochs", "2"],
        ["written for a 20-8-2 relu bernoulli", "not this 36-8-2", "start a new run"],
    ),
    Case(
        "resume other recipe",
        ["--resume", "--out", "{w}/run", "--hidden", "16"],
        ["--hidden 16 differs from this run's 8", "keeps its recipe", "another --out"],
    ),
    Case(
        "resume pickle payload",
        ["--resume", "--out", "{w}/run-pickle"],
        ["pickled objects", "will not load them"],
    ),
    Case("sample pickle payload", ["--run", "{w}/evil.npz"], ["pickled objects"], tool="sample"),
    Case("evaluate pickle", ["--run", "{w}/evil.npz"], ["pickled objects"], tool="evaluate"),
    Case("evaluate truncated", ["--run", "{w}/run-truncated"], ["truncated"], tool="evaluate"),
    Case(
        "evaluate on other data",
        ["--run", "{w}/run-arch", "--k", "2"],
        ["the test images have 36 pixels but this model takes 20", "trained on"],
        tool="evaluate",
    ),
    Case("sample zero", ["--run", "{w}/run", "--n", "0"], ["--n must be a positive"], "sample"),
    Case(
        "sample seed", ["--run", "{w}/run", "--seed", "-1"], ["--seed must be a non-neg"], "sample"
    ),
    Case("sample label", ["--run", "{w}/run", "--label", "3"], ["leave it out"], "sample"),
    Case("evaluate k", ["--run", "{w}/run", "--k", "many"], ["--k must be a positive"], "evaluate"),
    Case("no run", ["--run", "{w}/nowhere"], ["no such checkpoint"], tool="evaluate"),
    Case(
        "labels out of range",
        ["--run", "{w}/run-labels", "--k", "2"],
        ["the test labels hold classes 0 to 5, but this conditional model knows 0 to 2"],
        tool="evaluate",
    ),
    # --- backends ---------------------------------------------------------------------------
    Case(
        "no GPU visible",
        ["--backend", "cupy"],
        ["no CUDA device is visible", "numpy"],
        env=FAKE_CUPY,
    ),
    Case(
        "GPU runtime fails",
        ["--backend", "cupy"],
        ["the CUDA runtime cannot start (CUDARuntimeError: cudaErrorInsufficientDriver)",
         "check the NVIDIA driver", "--backend numpy"],
        env={**FAKE_CUPY, "FAKE_CUPY": "no-driver"},
    ),
    Case(
        "sample without GPU",
        ["--run", "{w}/run", "--backend", "cupy"],
        ["no CUDA device"],
        tool="sample",
        env=FAKE_CUPY,
    ),
    # --- training that diverges -------------------------------------------------------------
    Case(
        "diverges",
        [*TINY, "--out", "{w}/diverged", "--optimizer", "sgd", "--lr", "1e12"]
        + ["--epochs", "2", "--checkpoint-every", "1"],
        ["in epoch 1 by step", "lower --lr", "the last good checkpoint is kept in", "another --out"],
    ),
]
if cupy_unavailable_reason() is not None and cupy_unavailable_reason().startswith("CuPy is not"):
    CASES.append(
        Case("cupy not installed", ["--backend", "cupy"], ["CuPy is not installed", ".[gpu]"])
    )
    CASES.append(  # the backend is checked before MNIST's download is even tried
        Case(
            "cupy not installed, default data",
            ["--backend", "cupy", "--out", "{w}/out/cupy-mnist"],
            ["CuPy is not installed"],
            env={"TINYVAE_MIRRORS": "{dead}"},
        )
    )


# --- the workspace -------------------------------------------------------------------------


def idx_folder(folder, n_train=60, n_test=20, shape=(4, 5), seed=0):
    """Four small MNIST-format files: 0..255 images, labels 0..2."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 3, n, dtype=np.uint8))
    return folder


class Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickle_checkpoint(path, marker):
    """A checkpoint-shaped .npz whose arrays are pickles that would create ``marker``."""
    params = np.array([Payload(marker)], dtype=object)
    np.savez(path, params=params, meta=np.array([Payload(marker)], dtype=object))


def fake_cupy(folder):
    """A stand-in ``cupy`` package that imports but sees no GPU (as on a machine without one)."""
    (folder / "cupy").mkdir(parents=True)
    (folder / "cupy" / "__init__.py").write_text(
        "import os\n"
        "class ndarray: pass\n"
        "class ElementwiseKernel:\n"
        "    def __init__(self, *args, **kwargs): pass\n"
        "class CUDARuntimeError(RuntimeError): pass\n"
        "class runtime:\n"
        "    @staticmethod\n"
        "    def getDeviceCount():\n"
        "        if os.environ.get('FAKE_CUPY') == 'no-driver':\n"
        "            raise CUDARuntimeError('cudaErrorInsufficientDriver')\n"
        "        return 0\n"
        "class cuda:\n"
        "    runtime = runtime\n"
    )


def serve_wrong_bytes():
    """An HTTP mirror on 127.0.0.1 whose every file fails its checksum; returns (url, stop)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"not the file you are looking for"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/{{name}}/", server


def dead_url():
    """An address on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def train_run(folder, data, *more):
    args = ["--data-dir", str(data), "--out", str(folder), "--epochs", "1", "--no-progress"]
    assert run(train_main, [*args, "--hidden", "8", "--latent-dim", "2", *more]) == 0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    w = tmp_path_factory.mktemp("bad")
    (w / "empty").mkdir()
    (w / "afile").write_text("a file, not a folder\n")
    os.mkfifo(w / "fifo.png")
    good = idx_folder(w / "good")
    for name in ("truncated", "truncated-gz", "crc", "foreign", "swapped", "counts"):
        shutil.copytree(good, w / name)
    labels = (good / "train-labels-idx1-ubyte").read_bytes()
    (w / "truncated/train-labels-idx1-ubyte").write_bytes(labels[:-7])
    packed = (good / "train-images-idx3-ubyte.gz").read_bytes()
    (w / "truncated-gz/train-images-idx3-ubyte.gz").write_bytes(packed[: len(packed) // 2])
    (w / "crc/train-images-idx3-ubyte.gz").write_bytes(packed[:-8] + bytes(4) + packed[-4:])
    (w / "foreign/t10k-images-idx3-ubyte.gz").write_bytes(b"<html>404 Not Found</html>\n")
    shutil.copy(good / "train-labels-idx1-ubyte", w / "swapped/train-images-idx3-ubyte.gz")
    write_idx(w / "counts/train-labels-idx1-ubyte", np.zeros(59, np.uint8))

    train_run(w / "run", good)
    shutil.copytree(w / "run", w / "run-truncated")
    ckpt = (w / "run/checkpoint.npz").read_bytes()
    (w / "run-truncated/checkpoint.npz").write_bytes(ckpt[: len(ckpt) * 2 // 3])
    (w / "run-garbage").mkdir()
    (w / "run-garbage/checkpoint.npz").write_bytes(b"GIF89a" + bytes(100))
    (w / "run-pickle").mkdir()
    pickle_checkpoint(w / "run-pickle/checkpoint.npz", w / "pwned")
    pickle_checkpoint(w / "evil.npz", w / "pwned")
    # a run whose data folder later holds images of another size
    moving = shutil.copytree(good, w / "moving")
    train_run(w / "run-arch", moving)
    shutil.rmtree(moving)
    idx_folder(moving, shape=(6, 6))
    # a conditional run (classes 0 to 2) whose test labels later reach 5
    relabelled = shutil.copytree(good, w / "relabelled")
    train_run(w / "run-labels", relabelled, "--conditional")
    write_idx(relabelled / "t10k-labels-idx1-ubyte", np.arange(20, dtype=np.uint8) % 6)

    fake_cupy(w / "fakecupy")
    url, server = serve_wrong_bytes()
    yield w, {"mirror": url, "dead": dead_url()}
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def outcomes(workspace):
    """Every case of the table, run in subprocesses, three at a time: name -> process."""
    w, urls = workspace
    base = {k: v for k, v in os.environ.items() if k not in ("TINYVAE_MIRRORS", "PYTHONPATH")}
    base |= ONE_THREAD | {"TINYVAE_DATA": str(w / "cache")}
    project = os.path.dirname(os.path.dirname(os.path.abspath(tinyvae.__file__)))

    def launch(case):
        env = base | {k: v.format(w=w, **urls) for k, v in case.env.items()}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), project) if p)
        command = [sys.executable, "-m", f"tinyvae.{case.tool}", *case.argv(w)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        return dict(zip([c.name for c in CASES], pool.map(launch, CASES)))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.slow
def test_each_bad_command_line_gets_one_line_and_status_2(case, outcomes):
    assert_refused_in_one_line(outcomes[case.name], case.words)


def test_the_pickle_payload_was_refused_and_never_ran(workspace, outcomes):
    w, _ = workspace
    assert not (w / "pwned").exists()
    # ... yet it is live: NumPy with allow_pickle=True would have run it.
    with np.load(w / "evil.npz", allow_pickle=True) as stored:
        stored["meta"]
    assert (w / "pwned").exists()
    (w / "pwned").unlink()


def test_a_diverged_run_keeps_its_last_good_checkpoint(workspace, outcomes):
    w, _ = workspace
    ckpt = checkpoint.load(w / "diverged")  # loads: complete, and finite weights
    message = outcomes["diverges"].stderr
    diverged_at = int(message.split("by step ")[1].split(":")[0])
    assert ckpt.state["epoch"] == 0 and ckpt.state["step"] < diverged_at
    assert not list(w.glob("diverged/.*.tmp"))


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(workspace, outcomes):
    w, _ = workspace
    assert outcomes["batch larger than the data"].returncode == 2
    assert outcomes["mirror unreachable"].returncode == 2
    left = [p.name for p in (w / "out").glob("*")] if (w / "out").exists() else []
    assert [name for name in left if not (w / "out" / name / "checkpoint.npz").exists()] == []


def test_the_data_of_a_failed_download_is_not_kept(workspace, outcomes):
    w, _ = workspace
    left = [p.name for p in (w / "cache").rglob("*") if p.is_file()]
    assert left == []


# --- the Python API ------------------------------------------------------------------------

D = 12  # pixels of the model below
GOOD = np.full((3, D), 0.5, dtype=np.float32)


def with_value(value, row=1, col=2):
    x = GOOD.copy()
    x[row, col] = value
    return x


API_CASES = [  # (what, x, error, words): the message names x and says what to do
    (
        "wrong width",
        np.zeros((3, D + 1), np.float32),
        ValueError,
        ["x must have shape (batch, 12)"],
    ),
    ("one image", np.zeros(D, np.float32), ValueError, ["x.reshape(1, -1)"]),
    ("unflattened", np.zeros((3, 3, 4), np.float32), ValueError, ["x.reshape(len(x), -1)"]),
    ("NaN", with_value(np.nan), ValueError, ["x contains NaN or Inf", "clean or drop"]),
    ("Inf", with_value(np.inf), ValueError, ["x contains NaN or Inf"]),
    ("above 1", with_value(1.5), ValueError, ["x has values outside [0, 1]", "gaussian"]),
    ("below 0", with_value(-0.1), ValueError, ["x has values outside [0, 1]"]),
    ("float64", GOOD.astype(np.float64), TypeError, ["x has dtype float64", "astype('float32')"]),
    ("uint8", (GOOD * 255).astype(np.uint8), TypeError, ["x has dtype uint8", "/ 255"]),
    ("a list", GOOD.tolist(), TypeError, ["x must be a numpy array", "model.backend.asarray(x)"]),
]


@pytest.mark.parametrize("what, x, error, words", API_CASES, ids=[c[0] for c in API_CASES])
@pytest.mark.parametrize("method", ["loss_and_grads", "encode", "reconstruct", "log_likelihood"])
def test_the_model_names_the_bad_argument(method, what, x, error, words):
    model = tinyvae.VAE(D, hidden=(5,), latent_dim=2)
    with pytest.raises(error) as info:
        getattr(model, method)(x)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_the_encoder_input_is_checked_under_its_own_name():
    model = tinyvae.VAE(D, hidden=(5,), latent_dim=2)
    with pytest.raises(ValueError, match="x_input contains NaN"):
        model.loss_and_grads(GOOD, x_input=with_value(np.nan))


def test_a_gaussian_model_takes_any_finite_values():
    model = tinyvae.VAE(D, hidden=(5,), latent_dim=2, likelihood="gaussian")
    assert np.isfinite(model.loss_and_grads(with_value(7.0))[0])
    with pytest.raises(ValueError, match="x contains NaN"):
        model.loss_and_grads(with_value(np.inf))


def test_a_backend_mix_is_refused():
    """A NumPy model given another library's array (on a GPU machine, a CuPy array)."""

    class ForeignArray:  # an array-like from some other library
        shape, dtype, ndim = (3, D), np.dtype("float32"), 2

    model = tinyvae.VAE(D, hidden=(5,), latent_dim=2)
    with pytest.raises(TypeError, match=r"x must be a numpy array .*ForeignArray"):
        model.encode(ForeignArray())


def test_the_python_data_api_names_data_dir(tmp_path):
    with pytest.raises(DataError, match="data_dir / --data-dir"):
        load("mine", data_dir=tmp_path / "nowhere")


def test_a_gradient_that_becomes_inf_stops_training_at_its_step():
    config = check(TrainConfig(dataset="digits", hidden=(16,), latent_dim=2, batch_size=100))
    data = load("digits")
    model = make_model(config, data.train_x.shape[1], data.num_classes)
    optimizer = make_optimizer(model, config)
    batches = Batches(data.train_x, data.train_y, model.backend, 100, config.seed)
    compute, calls = model.loss_and_grads, []

    def poisoned(*args, **kwargs):  # the third step's gradient holds an Inf
        result = compute(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            model.flat.grad[5] = np.inf
        return result

    model.loss_and_grads = poisoned
    with pytest.raises(Diverged) as info:
        train_epoch(model, optimizer, batches, config, epoch=1)
    message = str(info.value)
    assert "a gradient became NaN or Inf" in message and "in epoch 1 by step 3" in message
    assert "--lr" in message and "\n" not in message


def test_a_checkpoint_whose_training_state_was_damaged_is_not_resumed(tmp_path):
    folder = tmp_path / "run"
    assert run(train_main, [*TINY, "--out", str(folder), "--epochs", "1", "--hidden", "8"]) == 0
    with np.load(folder / "checkpoint.npz") as stored:
        arrays = dict(stored)
    meta = json.loads(str(arrays["meta"]))
    meta["state"]["epoch"] = "one"  # edited by hand
    arrays["meta"] = np.asarray(json.dumps(meta))
    np.savez(folder / "checkpoint.npz", **arrays)
    before = hashlib.sha256((folder / "checkpoint.npz").read_bytes()).hexdigest()
    with pytest.raises(checkpoint.CheckpointError, match="training state is damaged"):
        train_main(["--out", str(folder), "--resume", "--epochs", "2", "--no-progress"])
    assert hashlib.sha256((folder / "checkpoint.npz").read_bytes()).hexdigest() == before
