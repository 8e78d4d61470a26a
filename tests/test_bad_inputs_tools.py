"""Every tool beyond train, sample and evaluate, given the inputs a user might give it.

Like ``tests/test_bad_inputs.py``, each case runs a real command in a subprocess (the export
tool, the course kit, the benchmarks, the GPU check, the site builder, and the training
tools on the newer surfaces: the conv VAE, symbolic links, sizes) and asserts exit status 2,
exactly one line on stderr that starts with ``error:`` and holds the expected words, and no
traceback. Then it checks that no case changed a file of the runs it found in the workspace,
nor the files that links pointed at. The workspace is made in a temporary folder.
"""

import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from conftest import assert_refused_in_one_line

from tinyvae.tools.cli import run
from tinyvae.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
TINY = ["--dataset", "digits", "--no-progress", "--epochs", "1"]


@dataclass
class Case:
    """One bad command line: the arguments after ``python``; ``{w}`` is the workspace."""

    name: str
    args: list
    words: list  # fragments the one-line message must hold
    env: dict = field(default_factory=dict)


TRAIN = ["-m", "tinyvae.train", *TINY]
SAMPLE, EVALUATE = ["-m", "tinyvae.sample"], ["-m", "tinyvae.evaluate"]
EXPORT = ["-m", "tinyvae.tools.export"]
BUILD, REPAIR = [str(ROOT / "course/build.py")], [str(ROOT / "course/repair.py")]
COMPARE = [str(ROOT / "benchmarks/compare_runs.py")]
BENCH_TRAIN, BENCH_EVAL = (
    [str(ROOT / "benchmarks/bench_train.py")],
    [str(ROOT / "benchmarks/bench_eval.py")],
)
CONTENTION = [str(ROOT / "benchmarks/bench_contention.py")]
GPU_CHECK, SITE = [str(ROOT / "benchmarks/gpu_check.py")], [str(ROOT / "docs/site/build.py")]
LINK = ["symbolic link", "remove the link"]

CASES = [
    # --- train: the architecture's flags, the environment, links, sizes -------------------
    Case(
        "channels with mlp",
        [*TRAIN, "--channels", "16", "--out", "{w}/new-a"],
        ["--channels applies only to --arch conv", "--arch mlp"],
    ),
    Case(
        "hidden with conv",
        [*TRAIN, "--arch", "conv", "--hidden", "16", "--out", "{w}/new-b"],
        ["--hidden applies only to --arch mlp", "--channels"],
    ),
    Case(
        "channels too big",
        [*TRAIN, "--arch", "conv", "--channels", "99999999999,2", "--out", "{w}/new-c"],
        ["out of memory", "--channels"],
    ),
    Case(
        "bogus MPLBACKEND",
        [*TRAIN, "--out", "{w}/new-d"],
        ["MPLBACKEND", "unset"],
        env={"MPLBACKEND": "bogus"},
    ),
    Case(
        "resume through a linked checkpoint",
        ["-m", "tinyvae.train", "--out", "{w}/linked", "--resume", "--epochs", "2"],
        LINK,
    ),
    Case(
        "resume with linked metrics",
        ["-m", "tinyvae.train", "--out", "{w}/linked-metrics", "--resume", "--epochs", "2"],
        LINK,
    ),
    Case("new run with a linked config", [*TRAIN, "--out", "{w}/linked-config"], LINK),
    Case(
        "resume an mlp run with channels",
        ["-m", "tinyvae.train", "--out", "{w}/run", "--resume", "--epochs", "2", "--channels", "4"],
        ["--channels applies only to --arch conv, and this run is --arch mlp"],
    ),
    Case(
        "resume a conv run with hidden",
        ["-m", "tinyvae.train", "--out", "{w}/conv", "--resume", "--epochs", "2", "--hidden", "9"],
        ["--hidden applies only to --arch mlp, and this run is --arch conv"],
    ),
    Case(
        "resume with a linked picture",
        ["-m", "tinyvae.train", "--out", "{w}/linked-picture", "--resume", "--epochs", "2"],
        LINK,
    ),
    Case(
        "out is a dangling link",
        [*TRAIN, "--out", "{w}/dangling"],
        ["symbolic link", "does not exist", "another --out"],
    ),
    # --- sample and evaluate: sizes are bounded before anything is allocated ---------------
    Case(
        "sample ten million",
        [*SAMPLE, "--run", "{w}/run", "--n", "10000000"],
        ["--n must be a positive integer, at most 10,000"],
    ),
    Case(
        "sample huge ncols",
        [*SAMPLE, "--run", "{w}/run", "--ncols", "1000000000"],
        ["--ncols must be a positive integer, at most 10,000"],
    ),
    Case(
        "sample every class, too many",
        [*SAMPLE, "--run", "{w}/cvae", "--label", "all", "--n", "5000"],
        ["--label all with --n 5000", "give --n"],
    ),
    Case(
        "sample through a link",
        [*SAMPLE, "--run", "{w}/run", "--out", "{w}/picture-link.png"],
        LINK,
    ),
    Case(
        "evaluate endless k",
        [*EVALUATE, "--run", "{w}/run", "--k", "99999999999999999999", "--n", "1"],
        ["--k must be a positive integer, at most 100,000"],
    ),
    # --- the export tool -------------------------------------------------------------------
    Case(
        "export a conv run",
        [*EXPORT, "--run", "{w}/conv", "--out", "{w}/conv.json"],
        ["convolutional", "--arch mlp"],
    ),
    Case(
        "export a conditional run",
        [*EXPORT, "--run", "{w}/cvae", "--out", "{w}/cvae.json"],
        ["conditional", "without --conditional"],
    ),
    Case(
        "export through a link", [*EXPORT, "--run", "{w}/run", "--out", "{w}/json-link.json"], LINK
    ),
    Case(
        "export no run",
        [*EXPORT, "--run", "{w}/nowhere", "--out", "{w}/x.json"],
        ["no such checkpoint"],
    ),
    Case(
        "export codes word",
        [*EXPORT, "--run", "{w}/run", "--out", "{w}/x.json", "--codes", "many"],
        ["--codes must be a non-negative integer"],
    ),
    Case("export without out", [*EXPORT, "--run", "{w}/run"], ["--out", "required"]),
    Case("export into a folder", [*EXPORT, "--run", "{w}/run", "--out", "{w}/run"], [".json"]),
    Case(
        "export over the run's checkpoint",
        [*EXPORT, "--run", "{w}/run", "--out", "{w}/run/checkpoint.npz"],
        ["a decoder file is JSON"],
    ),
    Case(
        "export over the run's config",
        [*EXPORT, "--run", "{w}/run", "--out", "{w}/run/config.json"],
        ["is not a decoder file", "choose another --out"],
    ),
    # --- the course kit --------------------------------------------------------------------
    Case("build unknown lesson", [*BUILD, "99", "--course-dir", "{w}/c1"], ["no lesson '99'"]),
    Case(
        "build misspelt lesson",
        [*BUILD, "03_elbow", "--course-dir", "{w}/c2"],
        ["no lesson '03_elbow'", "names such as"],
    ),
    Case(
        "build into a file",
        [*BUILD, "03", "--course-dir", "{w}/afile"],
        ["cannot make the folder", "--course-dir"],
    ),
    Case("build bad flag", [*BUILD, "--lesson", "3"], ["unrecognized arguments: --lesson"]),
    Case(
        "repair no course",
        [*REPAIR, "03_toy", "--course-dir", "{w}/nowhere"],
        ["no course folder", "--course-dir"],
    ),
    Case(
        "repair misspelt assignment",
        [*REPAIR, "03_tyo", "--course-dir", "{w}/course"],
        ["has no assignment '03_tyo'", "03_toy"],
    ),
    Case(
        "repair bad submissions",
        [*REPAIR, "03_toy", "--course-dir", "{w}/course"],
        ["2 of 3 submissions could not be repaired", "alice"],
    ),
    Case(
        "repair nothing submitted",
        [*REPAIR, "03_toy", "--course-dir", "{w}/uncollected"],
        ["holds no submission of '03_toy'", "collect"],
    ),
    Case(
        "repair a path for an assignment",
        [*REPAIR, "../03_toy", "--course-dir", "{w}/course"],
        ["must be a folder name"],
    ),
    Case("repair no assignment", [*REPAIR], ["required: assignment"]),
    # --- the benchmarks --------------------------------------------------------------------
    Case(
        "compare zero last",
        [*COMPARE, "{w}/run", "--last", "0"],
        ["--last must be a positive integer"],
    ),
    Case("compare through a link", [*COMPARE, "{w}/run", "--out", "{w}/picture-link.png"], LINK),
    Case("compare damaged metrics", [*COMPARE, "{w}/damaged-metrics"], ["cannot be read"]),
    Case("compare not a run", [*COMPARE, "{w}/empty"], ["not found", "tinyvae.train wrote"]),
    Case(
        "compare labels",
        [*COMPARE, "{w}/run", "--label", "a", "--label", "b"],
        ["1 run folder(s) but 2 --label"],
    ),
    Case(
        "compare text picture",
        [*COMPARE, "{w}/run", "--out", "{w}/curves.txt"],
        ["cannot write a picture named curves.txt"],
    ),
    Case(
        "bench_train missing data",
        [*BENCH_TRAIN, "--data-dir", "{w}/nowhere"],
        ["--data-dir", "has no train-images-idx3-ubyte.gz", "--synthetic"],
    ),
    Case("bench_train zero epochs", [*BENCH_TRAIN, "--epochs", "0"], ["--epochs must be"]),
    Case("bench_train nan pause", [*BENCH_TRAIN, "--pause", "nan"], ["--pause must be"]),
    Case("bench_train unknown skip", [*BENCH_TRAIN, "--skip", "torch"], ["name contestants to skip"]),
    Case(
        "bench_train bad channels",
        [*BENCH_TRAIN, "--arch", "conv", "--channels", "3,,x"],
        ["--channels must be positive layer sizes"],
    ),
    Case(
        "bench_train batch over images",
        [*BENCH_TRAIN, "--images", "100", "--batch-size", "1000"],
        ["--batch-size must be at most --images"],
    ),
    Case(
        "bench_train no torch python",
        [*BENCH_TRAIN, "--torch-python", "{w}/nowhere"],
        ["--torch-python", "--no-torch"],
    ),
    Case("bench_eval zero k", [*BENCH_EVAL, "--k", "0"], ["--k must be a positive integer"]),
    Case("bench_eval huge images", [*BENCH_EVAL, "--images", "100000"], ["--images must be"]),
    Case(
        "bench_eval missing data",
        [*BENCH_EVAL, "--data-dir", "{w}/nowhere"],
        ["has no train-images"],
    ),
    Case("bench_contention zero epochs", [*CONTENTION, "--epochs", "0"], ["--epochs must be"]),
    Case("bench_contention inf pause", [*CONTENTION, "--pause", "inf"], ["--pause must be"]),
    Case(
        "bench_contention no torch python",
        [*CONTENTION, "--torch-python", "{w}/nowhere"],
        ["--torch-python", "leave it out"],
    ),
    # --- the GPU check ---------------------------------------------------------------------
    Case(
        "gpu_check out is a file", [*GPU_CHECK, "--out", "{w}/afile"], ["is a file, not a folder"]
    ),
    Case(
        "gpu_check tiny budget",
        [*GPU_CHECK, "--out", "{w}/gc", "--budget", "3"],
        ["--budget 3 is less than the 165 s", "fewer --parts"],
    ),
    Case(
        "gpu_check negative budget",
        [*GPU_CHECK, "--out", "{w}/gc", "--budget", "-5"],
        ["--budget must be a positive number"],
    ),
    Case(
        "gpu_check unknown part",
        [*GPU_CHECK, "--out", "{w}/gc", "--parts", "cli,spede"],
        ["unknown --parts spede", "speed"],
    ),
    Case(
        "gpu_check data without the files",
        [*GPU_CHECK, "--out", "{w}/gc", "--data", "{w}/empty"],
        ["--data", "lacks some of train-images-idx3-ubyte.gz", "leave --data out"],
    ),
    Case("gpu_check empty out", [*GPU_CHECK, "--out", ""], ["--out is empty"]),
    Case("gpu_check no out", [*GPU_CHECK], ["--out", "required"]),
    Case("gpu_check log through a link", [*GPU_CHECK, "--out", "{w}/gc-linked"], LINK),
    # --- the site builder ------------------------------------------------------------------
    Case("site unknown mode", [*SITE, "--mode", "slow"], ["invalid choice: 'slow'"]),
    Case(
        "site mode from the environment",
        [*SITE],
        ["TINYVAE_LESSON_MODE", "quick or full"],
        env={"TINYVAE_LESSON_MODE": "fast"},
    ),
    Case("site explorer unknown", [*SITE, "--explorer", "huge"], ["--explorer", "quick"]),
]

# --- the workspace -------------------------------------------------------------------------


def tree_digest(folder: Path) -> dict:
    """{relative path: sha256} of every file under ``folder`` (links followed)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def toy_assignment(course: Path) -> None:
    """A released notebook with one answer and one checker, and three submissions: one good,
    one that is not a notebook, and one that is a link to the good one."""
    answer = nbformat.v4.new_code_cell("def f():\n    raise NotImplementedError")
    answer.metadata["nbgrader"] = {"grade_id": "f", "solution": True, "grade": False,
                                   "locked": False, "schema_version": 3}  # fmt: skip
    checker = nbformat.v4.new_code_cell("assert f() == 1")
    checker.metadata["nbgrader"] = {"grade_id": "check_f", "solution": False, "grade": True,
                                    "locked": True, "points": 1, "schema_version": 3}  # fmt: skip
    release = nbformat.v4.new_notebook(cells=[answer, checker])
    (course / "release/03_toy").mkdir(parents=True)
    nbformat.write(release, course / "release/03_toy/03_toy.ipynb")
    for student in ("alice", "bob", "carol"):
        (course / "submitted" / student / "03_toy").mkdir(parents=True)
    nbformat.write(release, course / "submitted/bob/03_toy/03_toy.ipynb")
    (course / "submitted/alice/03_toy/03_toy.ipynb").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    os.symlink(course / "submitted/bob/03_toy/03_toy.ipynb",
               course / "submitted/carol/03_toy/03_toy.ipynb")  # fmt: skip


def train(folder: Path, *more) -> None:
    args = [*TINY, "--hidden", "8", "--latent-dim", "2", "--out", str(folder), *more]
    assert run(train_main, args) == 0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    w = tmp_path_factory.mktemp("tools")
    (w / "empty").mkdir()
    (w / "afile").write_text("a file, not a folder\n")
    train(w / "run")
    train(w / "cvae", "--conditional")
    assert run(train_main, [*TINY, "--arch", "conv", "--channels", "2,4", "--latent-dim", "2",
                            "--out", str(w / "conv")]) == 0  # fmt: skip
    for name, linked in (("linked", "checkpoint.npz"), ("linked-metrics", "metrics.jsonl")):
        shutil.copytree(w / "run", w / name)
        (w / name / linked).unlink()
        os.symlink(w / "run" / linked, w / name / linked)
    shutil.copytree(w / "run", w / "linked-picture")
    (w / "linked-picture/loss.png").unlink()
    os.symlink(w / "run/loss.png", w / "linked-picture/loss.png")
    (w / "linked-config").mkdir()
    os.symlink(w / "run/config.json", w / "linked-config/config.json")
    os.symlink(w / "nowhere/run", w / "dangling")
    os.symlink(w / "run/config.json", w / "picture-link.png")
    os.symlink(w / "run/metrics.jsonl", w / "json-link.json")
    (w / "damaged-metrics").mkdir()
    (w / "damaged-metrics/metrics.jsonl").write_text('{"epoch": 1, "train_loss": 3')
    (w / "gc-linked").mkdir()
    os.symlink(w / "run/metrics.jsonl", w / "gc-linked/gpu_check.log")
    toy_assignment(w / "course")
    shutil.copytree(w / "course/release", w / "uncollected/release")
    return w


KEPT = (
    "run",
    "cvae",
    "conv",
    "linked",
    "linked-metrics",
    "linked-picture",
)  # runs no case may change


@pytest.fixture(scope="module")
def outcomes(workspace):
    """Every case, run in subprocesses three at a time: name -> process; and the runs'
    digests before and after."""
    w = workspace
    before = {name: tree_digest(w / name) for name in KEPT}
    base = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "TINYVAE_LESSON_MODE")}
    base |= ONE_THREAD | {"PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}

    def launch(case):
        command = [sys.executable, *(a.format(w=w) for a in case.args)]
        env = base | case.env
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=w)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        done = dict(zip([c.name for c in CASES], pool.map(launch, CASES)))
    after = {name: tree_digest(w / name) for name in KEPT}
    return done, before, after


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_bad_input_gets_one_line_and_status_2(case, outcomes):
    assert_refused_in_one_line(outcomes[0][case.name], case.words)


def test_no_case_changed_a_file_of_a_run(outcomes):
    _, before, after = outcomes
    assert before == after


def test_refused_new_runs_leave_no_folder(workspace, outcomes):
    assert not list(workspace.glob("new-*"))  # channels, hidden, MPLBACKEND, out of memory
    assert os.readlink(workspace / "dangling") == str(workspace / "nowhere/run")


def test_repair_repairs_the_good_submission_and_names_the_bad_ones(workspace, outcomes):
    done = outcomes[0]["repair bad submissions"]
    course = workspace / "course/submitted"
    assert "skipped" in done.stdout and "alice" in done.stdout and "carol" in done.stdout
    bob = nbformat.read(course / "bob/03_toy/03_toy.ipynb", as_version=4)
    assert bob.metadata["repaired_by"] == "course/repair.py"
    assert (course / "alice/03_toy/03_toy.ipynb").read_bytes().startswith(b"\x89PNG")
    assert (course / "carol/03_toy/03_toy.ipynb").is_symlink()  # left as it was


def test_a_lesson_cut_off_mid_json_is_named_in_one_line(tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(ROOT / "course"))
    import build

    lessons = tmp_path / "lessons"
    lessons.mkdir()
    text = (ROOT / "lessons/03_elbo.ipynb").read_text()
    (lessons / "03_elbo.ipynb").write_text(text[: len(text) // 2])
    monkeypatch.setattr(build, "LESSONS", lessons)
    assert run(build.main, ["--course-dir", str(tmp_path / "course")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "03_elbo.ipynb" in err, err
    assert "not a readable notebook" in err and not (tmp_path / "course").exists()


def test_a_conv_model_saved_without_a_training_state_keeps_its_image_shape(tmp_path, monkeypatch):
    import tinyvae
    from tinyvae.sample import main as sample_main
    from tinyvae.tools import checkpoint, plots

    model = tinyvae.VAE(28 * 20, latent_dim=2, arch="conv", channels=(2,), image_shape=(28, 20))
    path = tmp_path / "it.npz"
    checkpoint.save(path, model, tinyvae.Adam(model.flat), state={"epoch": 3})
    assert tinyvae.load_run(path).image_shape == (28, 20)
    shapes = []
    monkeypatch.setattr(plots, "save_grid", lambda out, images, shape, **kw: shapes.append(shape))
    assert run(sample_main, ["--run", str(path), "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert shapes == [(28, 20)]


def test_a_picture_too_wide_is_drawn_as_wide_as_its_images(tmp_path, monkeypatch, workspace):
    from tinyvae.sample import main as sample_main
    from tinyvae.tools import plots

    columns = []
    monkeypatch.setattr(plots, "save_grid", lambda *a, ncols, **kw: columns.append(ncols))
    argv = ["--run", str(workspace / "run"), "--n", "5", "--ncols", "10000"]
    assert run(sample_main, [*argv, "--out", str(tmp_path / "s.png")]) == 0
    assert columns == [5]


def test_writes_refuse_links_but_replace_regular_files(tmp_path):
    from tinyvae.errors import UserError
    from tinyvae.tools.files import atomic_write

    target = tmp_path / "theirs.txt"
    target.write_text("another run's data\n")
    os.symlink(target, tmp_path / "mine.txt")
    with pytest.raises(UserError, match="symbolic link"):
        atomic_write(tmp_path / "mine.txt", lambda f: f.write("mine\n"), mode="w")
    assert target.read_text() == "another run's data\n" and (tmp_path / "mine.txt").is_symlink()
    atomic_write(target, lambda f: f.write("new\n"), mode="w")
    assert target.read_text() == "new\n"
