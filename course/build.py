"""Build the teacher's notebooks of the course from the lessons and their solutions.

The lessons (``lessons/NN_name.ipynb``) are the one copy of the text; each exercise is a
function whose body is ``raise NotImplementedError  # your code here``, in its own cell,
followed by a cell that calls its checker. The solutions (``course/solutions/NN_name.py``)
hold the same functions with their bodies written. This script puts the two together in
nbgrader's markup, one nbgrader assignment per lesson::

    python course/build.py --course-dir my-course          # every lesson
    python course/build.py --course-dir my-course 03 11    # lessons 3 and 11

writes ``my-course/source/NN_name/NN_name.ipynb`` (the instructor notebook), copies the
lessons' helper modules beside it, and writes ``my-course/nbgrader_config.py`` if there is
none. In each instructor notebook:

* an exercise cell is an nbgrader "autograded answer" whose solution sits between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``; ``nbgrader generate_assignment`` puts the
  lesson's ``raise NotImplementedError  # your code here`` back in its place;
* a checker cell is an "autograder tests" cell worth the points of its exercises (each
  checker's ``points``, weighted by the work); a hidden test, removed from the students' copy,
  runs the same checks again on other inputs and returns the points earned, which nbgrader
  takes as the cell's partial credit (half for the checks the student saw, half for the
  others);
* a markdown cell that is exactly ``ANSWER_STUB`` is a written answer, graded by hand
  ("manually graded answer"), with the model answer from the solutions file's ``WRITTEN``.

Everything else is the lesson unchanged, so the students' notebooks that nbgrader generates
are the lessons themselves (``tests/test_course.py`` checks that). docs/teaching.md has the
whole workflow. This script needs only nbformat; nbgrader is needed for the next steps.
Every mistake (a lesson that does not exist, a course folder that is a file, a damaged
notebook) ends it with one line, ``error: ...``, and exit status 2, as tinyvae's own tools
do; no file is written through a symbolic link.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import textwrap
from pathlib import Path

import nbformat

from tinyvae.errors import UserError
from tinyvae.tools.cli import run
from tinyvae.tools.files import atomic_write
from tinyvae.tools.flags import Parser

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
SOLUTIONS = ROOT / "course" / "solutions"
STUB = "raise NotImplementedError  # your code here"  # the lessons' placeholder line
CHECK = re.compile(r"^\w+\.check_(\w+)\(", re.M)  # a top-level checker call: C.check_name(...)
HIDDEN_TEST = (
    "### BEGIN HIDDEN TESTS\n"
    "import grading  # this cell's points: its {count} check(s) as shown, then on other inputs\n\n"
    "grading.points({count})\n"
    "### END HIDDEN TESTS"
)
ANSWER_STUB = "**Your answer:** write it here, in a few sentences."  # a written answer's cell
HELPERS = ("lesson_utils.py", "grading.py")  # beside every lesson, with its own checker
CONFIG = '''\
"""nbgrader's settings for the tinyvae course (written by course/build.py)."""

c = get_config()  # noqa: F821  (nbgrader defines it)
c.CourseDirectory.course_id = "tinyvae"
# The lessons' placeholder, so that generated notebooks are the lessons themselves.
c.ClearSolutions.code_stub = {"python": "raise NotImplementedError  # your code here"}
c.ClearSolutions.text_stub = "**Your answer:** write it here, in a few sentences."
c.Execute.timeout = 600  # seconds per cell: a lesson in full mode trains for minutes
# Feedback shows the students' cells, their outputs and the points, not the hidden tests.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests",
]
# grades.csv lists the submissions there are, not a 0 for every lesson a student skipped.
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
c.ExportApp.plugin_class = "grades_export.SubmittedOnly"
'''
GRADES_EXPORT = '''\
"""nbgrader export's plugin for the tinyvae course (written by course/build.py): grades.csv
with one row per submission, so a lesson a student did not hand in is not listed as a 0."""

from nbgrader.api import MissingEntry
from nbgrader.plugins import CsvExportPlugin


class SubmittedOnly(CsvExportPlugin):
    def export(self, gradebook):
        dest = self.to or "grades.csv"
        columns = ["assignment", "student_id", "timestamp", "raw_score", "score", "max_score"]
        rows = []
        for assignment in gradebook.assignments:
            if self.assignment and assignment.name not in self.assignment:
                continue
            for student in gradebook.students:
                if self.student and student.id not in self.student:
                    continue
                try:
                    sub = gradebook.find_submission(assignment.name, student.id)
                except MissingEntry:
                    continue
                score = max(0.0, sub.score - (sub.late_submission_penalty or 0.0))
                rows.append([assignment.name, student.id, sub.timestamp or "", sub.score,
                             score, assignment.max_score])  # fmt: skip
        with open(dest, "w") as fh:
            fh.write(",".join(columns) + "\\n")
            for row in rows:
                fh.write(",".join("" if v is None else str(v) for v in row) + "\\n")
        self.log.info("wrote %d submissions to %s", len(rows), dest)
'''


def lesson_paths(selection=()):
    """lessons/NN_*.ipynb, all or those whose number or name is in ``selection``; a
    UserError names any entry of ``selection`` that matches no lesson."""
    paths = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
    selection = tuple(s.zfill(2) if s.isdigit() else s for s in selection)  # 3 is 03
    unknown = [s for s in selection if not any(s in (p.stem[:2], p.stem) for p in paths)]
    if unknown:
        raise UserError(
            f"no lesson {' or '.join(map(repr, unknown))}: give lesson numbers (01 to "
            f"{paths[-1].stem[:2] if paths else '?'}) or names such as {paths[0].stem if paths else '?'}, "
            "or none for every lesson"
        )
    if selection:
        paths = [p for p in paths if p.stem[:2] in selection or p.stem in selection]
    return paths


def read_notebook(path):
    """A notebook file, or a UserError that names it (cut off, not JSON, not a notebook)."""
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, UnicodeDecodeError) as error:
        why = getattr(error, "strerror", None) or type(error).__name__
        raise UserError(f"{path}: cannot be read ({why})") from None
    except Exception as error:  # nbformat's NotJSONError, ValidationError, KeyError ...
        detail = str(error).splitlines()[0][:120] if str(error).strip() else "no detail"
        raise UserError(
            f"{path}: not a readable notebook ({type(error).__name__}: {detail}); restore it "
            "(git checkout, or a saved copy) and run again"
        ) from None


def write_file(path, data) -> None:
    """Write ``data`` (bytes or a notebook) to ``path`` atomically; never through a link."""
    if not isinstance(data, bytes):
        data = nbformat.writes(data).encode()
    atomic_write(path, lambda f: f.write(data))


def split_exercise_cells(nb):
    """Cells that hold both an exercise and its checker call become two cells (a copy)."""
    nb = nbformat.from_dict(nb)
    cells = []
    for cell in nb.cells:
        lines = cell.source.split("\n")
        cut = next((i for i, line in enumerate(lines) if CHECK.match(line)), None)
        if cell.cell_type == "code" and STUB in cell.source and cut:
            answer, check = nbformat.from_dict(cell), nbformat.from_dict(cell)
            answer.source = "\n".join(lines[:cut]).rstrip()
            check.source = "\n".join(lines[cut:])
            check.id = f"{cell.id}-check"[:64]
            cells += [answer, check]
        else:
            cells.append(cell)
    nb.cells = cells
    return nb


def solution_bodies(path):
    """{"name": body, "Class.method": body} of the functions in a solutions file, docstrings
    removed and dedented."""
    source = path.read_text()
    lines = source.split("\n")
    bodies = {}

    def visit(node, prefix=""):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = child.body
                if (
                    body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                ):
                    body = body[1:]  # the docstring: the lesson has its own
                text = "\n".join(lines[body[0].lineno - 1 : child.end_lineno])
                bodies[prefix + child.name] = textwrap.dedent(text)

    visit(ast.parse(source))
    return bodies


def solution_imports(path):
    """{name: the import line that binds it} for the top-level imports of a solutions file."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            line = ast.unparse(node)
            for alias in node.names:
                found[(alias.asname or alias.name).split(".")[0]] = line
    return found


def with_imports(body, imports, lesson_code):
    """``body`` preceded by the imports it uses that the lesson's code does not make."""
    needed = [
        line
        for name, line in imports.items()
        if re.search(rf"\b{name}\b", body)
        and not re.search(rf"^(import|from|def|class)\b[^\n]*\b{name}\b", lesson_code, re.M)
    ]
    return "\n".join(sorted(set(needed)) + [body]) if needed else body


def stub_owners(source):
    """For each line of ``source`` that is the stub: (line index, "name" or "Class.method")."""
    owners = []
    tree = ast.parse(source)

    def visit(node, prefix=""):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for statement in child.body:
                    if isinstance(statement, ast.Raise):
                        owners.append((statement.lineno - 1, prefix + child.name))

    visit(tree)
    lines = source.split("\n")
    return [(i, name) for i, name in owners if lines[i].strip() == STUB]


def lesson_modules(nb):
    """The modules of lessons/ that a lesson's code imports (its checker, lesson_utils)."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    names = re.findall(r"^(?:import|from) (\w+)", code, re.M)
    return [n for n in dict.fromkeys(names) if (LESSONS / f"{n}.py").is_file()]


def check_points(nb, check):
    """The points of the exercise that ``check_<check>`` grades (its ``@exercise``)."""
    if str(LESSONS) not in sys.path:
        sys.path.insert(0, str(LESSONS))
    for name in lesson_modules(nb):
        checker = getattr(importlib.import_module(name), f"check_{check}", None)
        if checker is not None:
            return getattr(checker, "points", 1)
    raise UserError(f"no checker module of this lesson defines check_{check}")


def written_answers(path):
    """The solutions file's ``WRITTEN``: model answers of the written questions, in order."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "WRITTEN" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return []


def instructor_notebook(lesson, solutions):
    """The lesson in nbgrader's markup, with the bodies from ``solutions`` filled in."""
    nb = split_exercise_cells(read_notebook(lesson))
    written = written_answers(solutions)
    stubs = [c for c in nb.cells if c.cell_type == "markdown" and c.source.strip() == ANSWER_STUB]
    if len(written) != len(stubs):
        raise UserError(
            f"{lesson.name} has {len(stubs)} written answer cell(s), {solutions.name} "
            f"{len(written)} model answer(s) in WRITTEN"
        )
    for n, (cell, answer) in enumerate(zip(stubs, written), 1):
        cell.source = answer
        cell.metadata["nbgrader"] = _metadata(f"written_{n}", solution=True, grade=True, points=1)
    bodies = solution_bodies(solutions)
    imports = solution_imports(solutions)
    lesson_code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    used = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        owners = stub_owners(cell.source) if STUB in cell.source else []
        checks = CHECK.findall(cell.source)
        if owners:
            lines = cell.source.split("\n")
            for index, name in reversed(owners):
                if name not in bodies:
                    raise UserError(f"{solutions.name} has no solution for {name} ({lesson.name})")
                indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
                body = textwrap.indent(with_imports(bodies[name], imports, lesson_code), indent)
                lines[index : index + 1] = [
                    f"{indent}### BEGIN SOLUTION",
                    body,
                    f"{indent}### END SOLUTION",
                ]
                used.add(name)
            cell.source = "\n".join(lines)
            grade_id = owners[0][1].split(".")[0]
            cell.metadata["nbgrader"] = _metadata(grade_id, solution=True)
        elif checks:
            cell.source = f"{cell.source.rstrip()}\n{HIDDEN_TEST.format(count=len(checks))}"
            grade_id = "check_" + "_".join(checks)
            points = sum(check_points(nb, check) for check in checks)
            cell.metadata["nbgrader"] = _metadata(grade_id, grade=True, locked=True, points=points)
    unused = [name for name in bodies if name not in used and name != "check_all"]
    if unused:
        raise UserError(f"{solutions.name}: {', '.join(unused)} match no exercise in {lesson.name}")
    return nb


def _metadata(grade_id, solution=False, grade=False, locked=False, points=None):
    data = {"grade_id": grade_id, "schema_version": 3, "solution": solution, "grade": grade,
            "locked": locked}  # fmt: skip
    if points is not None:
        data["points"] = points
    return data


def build(course_dir, selection=()):
    """Write the instructor notebooks and helper modules into ``course_dir/source``."""
    course_dir = Path(course_dir)
    paths = lesson_paths(selection)
    if not paths:
        raise UserError(f"no lesson found in {LESSONS}: run this script from a tinyvae checkout")
    built = {}
    for lesson in paths:  # every notebook is built before anything is written
        solutions = SOLUTIONS / f"{lesson.stem}.py"
        if not solutions.is_file():
            raise UserError(f"{lesson.name} has no solutions file {solutions.relative_to(ROOT)}")
        built[lesson] = instructor_notebook(lesson, solutions)
    for lesson, notebook in built.items():
        folder = course_dir / "source" / lesson.stem
        make_folder(folder)
        write_file(folder / lesson.name, notebook)
        helpers = dict.fromkeys([*HELPERS, *(f"{m}.py" for m in lesson_modules(notebook))])
        for helper in helpers:  # lesson_utils, grading and this lesson's checker
            write_file(folder / helper, (LESSONS / helper).read_bytes())
        print(f"{folder / lesson.name}")
    config = course_dir / "nbgrader_config.py"
    if not config.exists():
        write_file(config, CONFIG.encode())
    write_file(course_dir / "grades_export.py", GRADES_EXPORT.encode())
    return [course_dir / "source" / p.stem / p.name for p in paths]


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot make the folder {folder} ({error.strerror or error}): give a --course-dir "
            "that is a folder you can write to, or one that does not exist yet"
        ) from None


def main(argv=None) -> int:
    parser = Parser(prog="python course/build.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers or names (default: all)")
    parser.add_argument("--course-dir", default="course-dir", help="nbgrader's course folder")
    args = parser.parse_args(argv)
    build(args.course_dir, tuple(args.lessons))
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
