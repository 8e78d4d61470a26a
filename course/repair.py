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
* puts back every checker cell that is missing, right after the answer it checks, and
  drops the copies of a checker cell (nbgrader restores the checkers' text anyway).

The original is kept as ``originals/<student>/<assignment>/<lesson>.ipynb`` (nbgrader does
not look there); run again on a repaired notebook, it starts over from that copy.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
from pathlib import Path

import nbformat


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _defines(cell, name):
    return cell.cell_type == "code" and re.search(
        rf"^(def|class) {re.escape(name)}\b", cell.source, re.M
    )


def repair(submitted, release):
    """The submitted notebook with the release's grading metadata restored (a new notebook)."""
    nb = copy.deepcopy(submitted)
    answers = {
        _grade_id(c): c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution")
    }
    checks = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("grade")]
    check_ids = {_grade_id(c) for c in checks}
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
        nb.cells.insert(position, copy.deepcopy(check))
    for i, cell in enumerate(nb.cells):  # unique cell ids, as nbformat requires
        cell.id = f"cell-{i}"
    return nb


def repair_course(course_dir, assignment):
    """Repair every submission of ``assignment`` in place (originals kept in originals/)."""
    course_dir = Path(course_dir)
    release_dir = course_dir / "release" / assignment
    done = []
    for release_path in sorted(release_dir.glob("*.ipynb")):
        release = nbformat.read(release_path, as_version=4)
        for path in sorted((course_dir / "submitted").glob(f"*/{assignment}/{release_path.name}")):
            student = path.parents[1].name
            backup = course_dir / "originals" / student / assignment / path.name
            backup.parent.mkdir(parents=True, exist_ok=True)
            submitted = nbformat.read(path, as_version=4)
            if submitted.metadata.get("repaired_by") == "course/repair.py":
                submitted = nbformat.read(backup, as_version=4)  # run twice: start over
            else:  # a new submission
                shutil.copy2(path, backup)
            repaired = repair(submitted, release)
            repaired.metadata["repaired_by"] = "course/repair.py"
            nbformat.write(repaired, path)
            done.append(path)
            print(f"repaired {path}")
    return done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignment", help="the assignment (lesson) name, e.g. 11_capstone")
    parser.add_argument("--course-dir", default="course-dir", help="nbgrader's course folder")
    args = parser.parse_args(argv)
    repair_course(args.course_dir, args.assignment)


if __name__ == "__main__":
    main()
