"""Make submitted notebooks gradable again after students deleted, duplicated or moved cells.

nbgrader finds the cells it grades by the metadata it put in them (its issues #1083, #1423,
#1682): a deleted checker cell scores nothing even when the answer is right, and a copied
answer cell stops the autograder with "cell exists multiple times". Run this on the
submissions before ``nbgrader autograde``::

    python course/repair.py --course-dir my-course 11_capstone

For each ``submitted/<student>/<assignment>/<lesson>.ipynb`` it

* keeps every cell of the student's, in the student's order;
* gives each exercise's nbgrader metadata to the *last* cell that defines the exercise's
  function (where the student's final answer most likely is), and takes it from the others;
* puts back every checker cell, right after the answer it checks, with the text of the
  instructor's notebook (``source/``), hidden tests included, which is what nbgrader grades:
  so an untouched submission raises no "checksum has changed" warning; copies of a checker
  cell are dropped;
* leaves written answers (markdown cells graded by hand) where the student wrote them.

The original is kept as ``originals/<student>/<assignment>/<lesson>.ipynb`` (nbgrader does
not look there); run again on a repaired notebook, it starts over from that copy.

A submission that cannot be repaired (not a notebook, cut off, a symbolic link to another
student's file) is named, left as it is, and the batch goes on; the run then ends with one
line, ``error: ...``, and exit status 2. A course folder or assignment that does not exist
is said at once, in one line.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

from tinyvae.errors import UserError
from tinyvae.tools.cli import run
from tinyvae.tools.flags import Parser

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import make_folder, read_notebook, write_file  # noqa: E402


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _defines(cell, name):
    return cell.cell_type == "code" and re.search(
        rf"^(def|class) {re.escape(name)}\b", cell.source, re.M
    )


def repair(submitted, release, source=None):
    """The submitted notebook with the release's grading metadata restored (a new notebook);
    its checker cells take their text from ``source``, the instructor's notebook, if given."""
    nb = copy.deepcopy(submitted)
    graded = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution")]
    answers = {_grade_id(c): c for c in graded if c.cell_type == "code"}
    written = [c for c in graded if c.cell_type != "code"]
    checks = [
        c
        for c in release.cells
        if c.metadata.get("nbgrader", {}).get("grade")
        and _grade_id(c) not in answers
        and c not in written
    ]
    check_ids = {_grade_id(c) for c in checks}
    full_text = {
        _grade_id(c): c.source
        for c in (source.cells if source else [])
        if c.metadata.get("nbgrader", {}).get("grade")
    }
    nb.cells = [c for c in nb.cells if _grade_id(c) not in check_ids]  # put back below
    for cell in nb.cells:  # start clean: metadata only where this function puts it back
        if _grade_id(cell) in answers:
            cell.metadata.pop("nbgrader", None)
            cell.metadata.pop("deletable", None)
            cell.metadata.pop("editable", None)
    for name, original in answers.items():
        owners = [c for c in nb.cells if _defines(c, name)]
        if owners:
            owners[-1].metadata.update(copy.deepcopy(original.metadata))
        else:  # the student deleted the exercise: grade the untouched stub
            nb.cells.append(copy.deepcopy(original))
    for original in written:  # a deleted written answer: an empty one, graded as such
        if not any(_grade_id(c) == _grade_id(original) for c in nb.cells):
            nb.cells.append(copy.deepcopy(original))
    for check in checks:
        # the answer cell this checker follows in the release
        before = [c for c in release.cells[: release.cells.index(check)] if _grade_id(c) in answers]
        anchor = _grade_id(before[-1]) if before else None
        position = next(
            (
                i + 1
                for i, c in reversed(list(enumerate(nb.cells)))
                if anchor and _grade_id(c) == anchor
            ),
            len(nb.cells),
        )
        cell = copy.deepcopy(check)
        cell.source = full_text.get(_grade_id(check), cell.source)
        nb.cells.insert(position, cell)
    for i, cell in enumerate(nb.cells):  # unique cell ids, as nbformat requires
        cell.id = f"cell-{i}"
    return nb


def release_notebooks(course_dir: Path, assignment: str) -> list:
    """The released notebooks of ``assignment``, or a UserError that says what is missing."""
    if not course_dir.is_dir():
        raise UserError(
            f"there is no course folder {course_dir}: give --course-dir, the folder that "
            "holds nbgrader_config.py"
        )
    if not re.fullmatch(r"[\w.-]+", assignment) or set(assignment) == {"."}:
        raise UserError(
            f"the assignment must be a folder name such as 11_capstone, not {assignment!r}"
        )
    paths = sorted((course_dir / "release" / assignment).glob("*.ipynb"))
    if not paths:
        known = sorted(p.name for p in (course_dir / "release").glob("*") if p.is_dir())
        raise UserError(
            f"{course_dir / 'release'} has no assignment {assignment!r}: "
            + (
                f"choose one of {', '.join(known)}"
                if known
                else "run nbgrader generate_assignment first"
            )
        )
    return [(path, read_notebook(path)) for path in paths]


def repair_one(path: Path, backup: Path, release, source=None) -> None:
    """Repair one submission in place, keeping its original as ``backup``; a UserError (and
    nothing written) when it is not a notebook or is a link."""
    if path.is_symlink():  # another student's file, or one outside the course
        raise UserError(
            f"{path} is a symbolic link to {path.readlink()}: will not write through it"
        )
    submitted = read_notebook(path)
    if submitted.metadata.get("repaired_by") == "course/repair.py":
        submitted = read_notebook(backup)  # run twice: start over
    else:  # a new submission
        make_folder(backup.parent)
        write_file(backup, path.read_bytes())
    repaired = repair(submitted, release, source)
    repaired.metadata["repaired_by"] = "course/repair.py"
    write_file(path, repaired)


def repair_course(course_dir, assignment):
    """Repair every submission of ``assignment`` in place (originals kept in originals/).
    Returns the repaired paths; one that cannot be repaired is named and skipped, and a
    UserError at the end counts them."""
    course_dir = Path(course_dir)
    done, skipped = [], []
    for release_path, release in release_notebooks(course_dir, assignment):
        instructor = course_dir / "source" / assignment / release_path.name
        source = read_notebook(instructor) if instructor.is_file() else None
        for path in sorted((course_dir / "submitted").glob(f"*/{assignment}/{release_path.name}")):
            backup = course_dir / "originals" / path.parents[1].name / assignment / path.name
            try:
                repair_one(path, backup, release, source)
            except UserError as error:
                skipped.append(path)
                print(f"skipped {path}: {error}", flush=True)
                continue
            done.append(path)
            print(f"repaired {path}", flush=True)
    if not done and not skipped:
        raise UserError(
            f"{course_dir / 'submitted'} holds no submission of {assignment!r}: collect them "
            "first (nbgrader collect or zip_collect), then run this again"
        )
    if skipped:
        raise UserError(
            f"{len(skipped)} of {len(done) + len(skipped)} submissions could not be repaired "
            f"and were left as they are (each is named above): {', '.join(map(str, skipped[:3]))}"
            + (" ..." if len(skipped) > 3 else "")
        )
    return done


def main(argv=None) -> int:
    parser = Parser(prog="python course/repair.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment", help="the assignment (lesson) name, e.g. 11_capstone")
    parser.add_argument("--course-dir", default="course-dir", help="nbgrader's course folder")
    args = parser.parse_args(argv)
    repair_course(args.course_dir, args.assignment)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
