"""The lessons as the website shows them: run with the course's solutions, read without them.

A reader of the website cannot run a cell, so a lesson run as it is (every exercise still
``raise NotImplementedError``) would show "not attempted yet" under each exercise, "0 of N
exercises correct" at its end, and the capstone without its payoff. The site shows instead
what a worked run gives, without giving the code away:

1. :func:`worked` fills each exercise with its solution from ``course/solutions/`` (the
   course kit's own merge, ``course/build.py``; its hidden grading lines are left out);
2. :func:`run` executes that notebook in one mode, or reuses the copy in
   ``build/site-lessons/`` made from exactly the same cells, helpers and package
   (:func:`fingerprint`);
3. :func:`for_the_page` puts the lesson's own exercise cell (its ``raise
   NotImplementedError  # your code here``) back in place of the solution, after a "Your turn"
   box that says where to do the exercise, and keeps the worked run's outputs: the checks'
   "[ok] ... correct" lines, the figures the solved lesson draws, the score.

A stderr output or an error in the run stops the build (:func:`check_clean`): a warning the
lesson's text does not explain would show on the page with the build machine's paths in it.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import json
import os
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
LESSONS = ROOT / "lessons"
SOLUTIONS = ROOT / "course" / "solutions"
CACHE = ROOT / "build" / "site-lessons"
MODE_VARIABLE = "TINYVAE_LESSON_MODE"
KEY = "tinyvae_site"  # where a worked notebook records how it was made
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN = re.compile(r"\n*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


def _course_build():
    spec = importlib.util.spec_from_file_location("course_build", ROOT / "course" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lesson_paths() -> list:
    """Every lesson, in order: lessons/NN_name.ipynb."""
    return sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def worked(lesson: Path):
    """The lesson with every exercise solved (the instructor's notebook of the course kit,
    without its grading metadata and hidden tests)."""
    course = _course_build()
    solutions = SOLUTIONS / f"{lesson.stem}.py"
    if not solutions.is_file():
        raise SystemExit(f"error: {lesson.name} has no solutions file {solutions}")
    nb = course.instructor_notebook(lesson, solutions)
    for cell in nb.cells:
        grading = cell.metadata.pop("nbgrader", {})
        if grading.get("grade"):
            cell.source = HIDDEN.sub("\n", cell.source).rstrip()
        if grading.get("solution") and cell.cell_type == "markdown":  # a written answer:
            cell.source = course.ANSWER_STUB  # left to the reader, as in the lesson
        elif grading.get("solution"):
            cell.metadata["tinyvae_exercise"] = True
    return nb


def fingerprint(nb, mode: str) -> str:
    """SHA-256 of the mode, the cells of the worked notebook ``nb`` (the lesson with its
    solutions), the lessons' helpers and every file of the tinyvae package."""
    digest = hashlib.sha256(f"{mode}\n".encode())
    digest.update(json.dumps([c.source for c in nb.cells]).encode())
    for path in [*sorted(LESSONS.glob("*.py")), *sorted((ROOT / "tinyvae").rglob("*.py"))]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()


def execute(nb, name: str, mode: str, timeout: int = 900):
    """Run ``nb`` top to bottom in a ``python3`` kernel in ``mode``, in lessons/; a failing
    cell raises SystemExit naming the lesson, the cell and the error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    os.environ[MODE_VARIABLE] = mode  # the kernel inherits this process's environment
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(LESSONS)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        last = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise SystemExit(f"error: lesson {name}, run with its solutions, failed: {last}") from None
    return nb


def check_clean(nb, name: str) -> None:
    """Stop the build on any stderr output or error in the run, naming the cell and the text."""
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" or output.get("name") == "stderr":
                text = output.get("text") or f"{output.get('ename')}: {output.get('evalue')}"
                first = "\n".join(cell.source.splitlines()[:3])
                raise SystemExit(
                    f"error: lesson {name}, cell {index}, wrote to stderr; the website would "
                    f"show it with this machine's paths. Fix its cause (or explain and silence "
                    f"it in the lesson).\n--- the cell starts:\n{first}\n--- stderr:\n{text}"
                )


def run(lesson: Path, mode: str, cache: Path = CACHE):
    """(worked notebook, "reused" or "executed"): the copy in ``cache`` when it was made in
    ``mode`` from the same sources, else a new run (saved there)."""
    nb = worked(lesson)
    key = fingerprint(nb, mode)
    copy = cache / lesson.name
    if copy.is_file():
        cached = nbformat.read(copy, as_version=4)
        if cached.metadata.get(KEY, {}).get("fingerprint") == key:
            return cached, "reused"
    nb = execute(nb, lesson.name, mode)
    check_clean(nb, lesson.name)
    import tinyvae

    nb.metadata[KEY] = {
        "mode": mode,
        "fingerprint": key,
        "date": datetime.date.today().isoformat(),
        "tinyvae": tinyvae.__version__,
    }
    cache.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, copy)
    return nb, "executed"


def _stub(source: str) -> str:
    """An exercise cell as the lesson has it: each solution block back to the placeholder."""
    lines, out, skipping = source.split("\n"), [], False
    for line in lines:
        if line.strip() == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}raise NotImplementedError  # your code here")
            skipping = True
        elif line.strip() == END:
            skipping = False
        elif not skipping:
            out.append(line)
    return "\n".join(out)


YOUR_TURN = (
    '<div class="admonition tip tv-your-turn">\n'
    '<p class="admonition-title">Your turn, in your own notebook</p>\n'
    '<p>Write the body of {names} in your copy of the lesson (<a href="{download}" '
    "download>download it</a>), in place of <code>raise NotImplementedError</code>; the "
    "cell after it checks your answer. Here, the check's verdict and what follows are those "
    "of a correct answer, whose code is not shown.</p>\n"
    "</div>"
)


def for_the_page(nb, lesson: Path):
    """The worked run as the page shows it: each exercise cell as the lesson has it, after a
    "Your turn" box; everything else, outputs included, as the worked run made it."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells = []
    for cell in nb.cells:
        if cell.metadata.pop("tinyvae_exercise", False):
            cell.source = _stub(cell.source)
            names = re.findall(r"^\s*def (\w+)\(", cell.source, re.M)
            shown = ", ".join(f"<code>{n}</code>" for n in names) or "the function below"
            box = YOUR_TURN.format(names=shown, download=f"notebooks/{lesson.name}")
            cells.append(nbformat.v4.new_markdown_cell(box))
        if cell.cell_type == "code" and re.search(r"^\w+\.summary\(", cell.source, re.M):
            # the score's printed lines stay; the (correct, total) it returns is for a program
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "execute_result"]
        cells.append(cell)
    nb.cells = cells
    return nb


def _stream_text(nb) -> str:
    return "".join(
        o.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
        if o.get("output_type") == "stream"
    )


def run_note(nb, lesson: Path, repo_url: str | None) -> str:
    """The box at the top of a lesson's page: which mode and data made its outputs (as the
    lesson printed them), and how to get and run the notebook. HTML, for a markdown cell."""
    text, made = _stream_text(nb), nb.metadata.get(KEY, {})
    mode = re.search(r"Lesson mode '(\w+)'", text)
    mode = mode.group(1) if mode else made.get("mode", "?")
    loaded = re.search(
        r"Loaded '([\w-]+)': (\d+) training and (\d+) test images of (\d+)x(\d+)", text
    )
    if loaded:
        name, n_train, n_test, h, w = loaded.groups()
        data = (
            f" on the <strong>{name}</strong> data set: {int(n_train):,} training and "
            f"{int(n_test):,} test images of {h}&times;{w} pixels"
        )
    else:
        data = ", loading no data set (it printed none)"
    notes = "".join(f" {line.strip()}" for line in text.splitlines() if line.startswith("NOTE:"))
    other = (
        "In full mode (the default) the lessons train longer, on MNIST where they load "
        "data, so their numbers and figures differ from these."
        if mode == "quick"
        else f"With <code>{MODE_VARIABLE}=quick</code> they train briefly, on the bundled "
        "8&times;8 digits where they load data, and give other numbers and figures."
    )
    checkout = (
        f'a checkout of <a href="{repo_url}">the tinyvae repository</a>'
        if repo_url
        else 'a tinyvae checkout (the <a href="../index.html#install">home page</a> says how)'
    )
    name = lesson.name
    return (
        '<div class="admonition info tv-run-note">\n'
        '<p class="admonition-title">How these outputs were made</p>\n'
        f"<p>This page is <code>lessons/{name}</code> run from top to bottom in "
        f"<strong>{mode} mode</strong> (<code>{MODE_VARIABLE}={mode}</code>){data}, "
        f"with tinyvae {made.get('tinyvae', '?')} on {made.get('date', '?')}, its exercises "
        f"solved: each shows what a correct answer gives, not its code.{notes} {other}</p>\n"
        f'<p><strong>Do the exercises yourself:</strong> <a href="notebooks/{name}" download>'
        f"download {name}</a> (without outputs or answers). It runs inside {checkout}, "
        'beside the helpers in <code>lessons/</code>: <code>pip install -e ".[dev]" '
        f"jupyterlab</code>, then <code>jupyter lab lessons/{name}</code> (add "
        f"<code>{MODE_VARIABLE}=quick</code> in front for the short runs on the bundled "
        "digits).</p>\n"
        "</div>"
    )
