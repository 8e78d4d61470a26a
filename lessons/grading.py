"""How the exercises are checked and scored: one verdict per exercise, and a score per lesson.

A checker (``checks_NN_name.py``, one module per lesson) calls the student's function inside
:func:`run_check`, which prints one line:

* ``[ ] name: not attempted yet``: the function still raises ``NotImplementedError``;
* ``[x] name: not right yet. <what is wrong>``: a :class:`Wrong` raised by the check says
  what is wrong without giving the answer away (no expected values are printed), or the
  student's code crashed, and the line that crashed is shown;
* ``[ok] name: correct.``

:func:`summary` prints the score of a lesson. :func:`points` is what a course's autograder
runs after each cell of checks (see docs/teaching.md): it returns the points earned. Each
exercise is worth its ``points`` (weighted by the work), half for the check the student saw
(a share of it where a check gives partial credit) and half for the same check run again on
other inputs (``seeded`` draws them when ``VARIANT`` is not 0). :func:`require_passed`
raises unless the checks just run passed. Nothing here needs a course tool: a learner
working alone sees the same verdicts.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import sys
import traceback
from pathlib import Path

import numpy as np


class Wrong(Exception):
    """Raised inside a check when the student's answer is wrong; the message says how.
    ``credit``: the share of the exercise that is right all the same (0 to 1)."""

    def __init__(self, message, credit=0.0):
        super().__init__(message)
        self.credit = float(credit)


RESULTS: dict = {}  # exercise name -> True (right), False (wrong) or None (not attempted)
EXERCISES: dict = {}  # lesson number -> names of its exercises, in order (see ``exercise``)
POINTS: dict = {}  # exercise name -> its points in a course, weighted by the work it asks
CREDIT: dict = {}  # exercise name -> the share of it that its last check found right
TESTS: dict = {}  # exercise name -> its last test, to run again on other inputs
VARIANT = 0  # 0: the inputs the student's checks use; 1: the instructor's hidden checks
_PENDING: list = []  # names checked since the last require_passed()
_OURS = {"grading.py", "lesson_utils.py"}  # files whose frames are never the student's


def exercise(lesson, name, points=1):
    """Decorator for a checker: registers ``name`` as an exercise of ``lesson`` for the score,
    worth ``points`` in a course."""

    def register(checker):
        names = EXERCISES.setdefault(int(lesson), [])
        if name not in names:
            names.append(name)
        POINTS[name] = points
        checker.points = points  # what course/build.py gives its checker cell
        _OURS.add(Path(checker.__code__.co_filename).name)  # a checker module's frames
        return checker

    return register


def run_check(name, test, strict=False):
    """Run ``test()``, print one verdict, record it in RESULTS; with ``strict``, fail loudly.

    ``test`` calls the student's function and raises :class:`Wrong` with an explanation
    when an answer is off. A ``NotImplementedError`` (the placeholder) means "not yet".
    """
    TESTS[name], CREDIT[name] = test, 0.0
    try:
        with np.errstate(all="ignore"):  # overflow in a student's exp(800) is theirs to see
            test()
    except NotImplementedError:
        RESULTS[name] = None
        print(
            f"[ ] {name}: not attempted yet. Replace `raise NotImplementedError` "
            "with your code and run this cell again."
        )
    except Wrong as error:
        RESULTS[name], CREDIT[name] = False, error.credit
        print(f"[x] {name}: not right yet. {error}")
    except Exception as error:  # the student's code crashed: show where, not a traceback
        RESULTS[name] = False
        print(f"[x] {name}: your code raised {type(error).__name__}: {error}{_where(error)}")
    else:
        RESULTS[name], CREDIT[name] = True, 1.0
        print(f"[ok] {name}: correct.")
    _PENDING.append(name)
    if strict and RESULTS[name] is not True:
        raise AssertionError(f"{name} did not pass its check")
    return None


def _where(error):
    """' (in f, line 3 of its cell: `x = 1 / 0`)' for the student's frame that crashed."""
    frames = traceback.extract_tb(error.__traceback__)
    library = (str(Path(np.__file__).parents[1]), sys.prefix, sys.base_prefix)
    theirs = [
        f
        for f in frames
        if not _is_checker(Path(f.filename).name)
        and not f.filename.startswith(library)
        and f"{Path('tinyvae', 'core')}" not in f.filename
        and not f.filename.startswith("<frozen")
    ]
    if not theirs:
        return " (while checking your answer: look at what your function returns)"
    frame = theirs[-1]
    text = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
    place = "its cell" if "ipykernel" in frame.filename else Path(frame.filename).name
    shown = f": `{text}`" if text else ""
    return f" (in {frame.name}, line {frame.lineno} of {place}{shown})"


def _is_checker(name):
    return name in _OURS or name.startswith("checks_")


def require_passed(count=None):
    """Raise AssertionError unless the last ``count`` checks run (default: all since the last
    call) passed. A course's autograder runs this after each cell of checks."""
    names = list(_PENDING) if count is None else _PENDING[-count:]
    _PENDING.clear()
    failed = [name for name in names if RESULTS.get(name) is not True]
    assert names, "no exercise was checked in this cell"
    assert not failed, f"not passed yet: {', '.join(failed)}"


def seeded(seed):
    """``np.random.default_rng(seed)``: the inputs of a check. The hidden checks of a course
    (``VARIANT`` 1) draw other inputs from the same seeds."""
    return np.random.default_rng(seed if VARIANT == 0 else (seed, VARIANT))


def points(count):
    """The points earned by the last ``count`` checks run: what a course's hidden test cell
    returns (nbgrader takes a number as the cell's partial credit). Each exercise gives half
    its points for the check the student saw and half for the same check on other inputs,
    run here; one line says how that second run went."""
    names = _PENDING[-count:] if count else []
    _PENDING.clear()
    total = 0.0
    for name in names:
        seen, again = CREDIT.get(name, 0.0), _run_on_other_inputs(name)
        total += POINTS.get(name, 1) * (seen + again) / 2
    return round(total, 6)


def _run_on_other_inputs(name):
    """Run exercise ``name``'s last test with ``VARIANT`` 1; its share right (0 to 1)."""
    global VARIANT
    test = TESTS.get(name)
    if test is None or RESULTS.get(name) is None:
        return 0.0
    VARIANT, share, why = 1, 0.0, ""
    try:
        with contextlib.redirect_stdout(io.StringIO()), np.errstate(all="ignore"):
            test()
        share = 1.0
    except Wrong as error:
        share, why = error.credit, f" {error}"
    except Exception as error:
        why = f" your code raised {type(error).__name__}: {error}"
    finally:
        VARIANT = 0
    mark = "[ok]" if share == 1 else "[x]"
    print(f"{mark} {name}, checked again on other inputs:{why or ' correct.'}")
    return share


def summary(lesson):
    """Print the score of ``lesson``: one line per exercise, then the total."""
    names = list(EXERCISES.get(int(lesson), []))
    names += [name for name in RESULTS if name not in names and _unregistered(name)]
    marks = {True: "[ok]", False: "[x] ", None: "[ ] "}
    words = {True: "correct", False: "not right yet", None: "not attempted yet"}
    done = sum(RESULTS.get(name) is True for name in names)
    print(f"Lesson {int(lesson)}: {done} of {len(names)} exercises correct.")
    for name in names:
        state = RESULTS.get(name, "missing")
        if state == "missing":
            print(f"  [ ]  {name}: its check has not been run in this session")
        else:
            print(f"  {marks[state]} {name}: {words[state]}")
    return done, len(names)


def _unregistered(name):
    return all(name not in names for names in EXERCISES.values())


# --- what the checks use to compare an answer, without giving the answer away ---------------


def expect_array(value, shape, what):
    """``value`` as a float64 NumPy array of ``shape``, or :class:`Wrong` saying what it is."""
    if hasattr(value, "get"):  # a CuPy array
        value = value.get()
    if value is None:
        raise Wrong(f"{what} is None: did you forget to `return` it?")
    if not isinstance(value, (np.ndarray, np.generic, float, int)):
        raise Wrong(f"{what} should be an array of shape {shape}, got {type(value).__name__}.")
    value = np.asarray(value, dtype=np.float64)
    if value.shape != tuple(shape):
        raise Wrong(f"{what} has shape {value.shape} but should have shape {tuple(shape)}.")
    if not np.all(np.isfinite(value)):
        raise Wrong(f"{what} contains NaN or infinity.")
    return value


def expect_close(got, want, what, rtol=1e-6, atol=1e-8, hint=""):
    """:class:`Wrong` unless ``got`` matches ``want`` (checked for shape first).

    The message never shows ``want``: it says whether the sign is flipped, whether the
    answer is a constant multiple of the right one, or where it is off."""
    want = np.asarray(want, dtype=np.float64)
    got = expect_array(got, want.shape, what)
    if np.allclose(got, want, rtol=rtol, atol=atol):
        return got
    hint = f" {hint}" if hint else ""
    raise Wrong(describe_difference(got, want, what) + hint)


def describe_difference(got, want, what, tol=1e-6):
    """One sentence on how ``got`` differs from ``want``, that does not reveal ``want``."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(np.linalg.norm(want), np.linalg.norm(got), 1e-300)
    if np.linalg.norm(got + want) <= tol * scale:
        return f"{what} has the wrong sign: everything else about it is right."
    ratio = float(np.vdot(got, want) / max(np.vdot(want, want), 1e-300))
    if np.linalg.norm(got - ratio * want) <= tol * scale and ratio != 0:
        return f"{what} is {ratio:.4g} times what it should be: a constant factor is off."
    if want.ndim == 0:
        return f"{what} is not right yet."
    wrong = ~np.isclose(got, want, rtol=1e-6, atol=1e-8 * scale)
    first = np.unravel_index(int(np.argmax(wrong)), want.shape)
    where = f"at index {tuple(int(i) for i in first)}"
    share = f"{wrong.mean():.0%} of its elements" if wrong.mean() < 1 else "every element"
    return f"{what} is not right yet: {share} differ, the first {where}."


def call_watched(fn, names, *args):
    """``fn(*args)``, then :class:`Wrong` if ``fn`` changed one of its arrays in place.

    names : the name of each argument, for the message. An argument that is a dict is watched
    array by array. The student's function gets the arrays themselves, not copies, because
    overwriting an input (``Y *= ...``, ``dY[...] = ...``) is a real bug: the caller still
    needs that array. ``fn``'s result is returned unchanged."""
    saved = []
    for name, arg in zip(names, args):
        items = arg.items() if isinstance(arg, dict) else [(None, arg)]
        for key, value in items:
            if isinstance(value, np.ndarray):
                label = name if key is None else f"{name}[{key!r}]"
                saved.append((label, value, value.copy()))
    out = fn(*args)
    for label, value, copy in saved:
        if not np.array_equal(value, copy, equal_nan=True):
            raise Wrong(
                f"your function changed {label} in place: the code that calls it still needs "
                f"{label} as it was, so compute into a new array instead of assigning into it "
                "(=, +=, *= on it or on a slice of it)."
            )
    return out


def calls_the_answer(fn, function):
    """True when ``fn``'s code uses tinyvae's ``function``, the exercise's answer itself, by
    name or as a module's attribute (``dist.kl_standard_normal_grad``)."""
    code_objects, names = [fn.__code__], set()
    while code_objects:
        code = code_objects.pop()
        names.update(code.co_names)
        code_objects += [c for c in code.co_consts if hasattr(c, "co_names")]
    found = fn.__globals__
    return any(found.get(n) is function for n in names) or (
        function.__name__ in names
        and any(getattr(found.get(n), function.__name__, None) is function for n in names)
    )


def expect_tuple(out, names):
    """The student's ``len(names)`` results, or :class:`Wrong` saying what to return."""
    wanted = f"a tuple of {len(names)}, ({', '.join(names)})"
    if out is None:
        raise Wrong(f"your function returned None: return {wanted}.")
    if not isinstance(out, (tuple, list)):
        raise Wrong(f"return {wanted}; got one {type(out).__name__}.")
    if len(out) != len(names):
        raise Wrong(f"return {wanted}; got a {type(out).__name__} of {len(out)} items.")
    return tuple(out)


def known_mistakes(got, mistakes, rtol=1e-6, atol=1e-9):
    """Raise :class:`Wrong` naming the first mistake whose wrong answer equals ``got``.

    mistakes : pairs (the value a typical mistake gives, the explanation to print).
    """
    got = np.asarray(got.get() if hasattr(got, "get") else got, dtype=np.float64)
    for wrong_value, explanation in mistakes:
        wrong_value = np.asarray(wrong_value, dtype=np.float64)
        if got.shape == wrong_value.shape and np.allclose(got, wrong_value, rtol=rtol, atol=atol):
            raise Wrong(explanation)


def expect_gradient(got, f, array, what, mistakes=(), tolerance=1e-6, h=1e-6):
    """:class:`Wrong` unless ``got`` is the gradient of the scalar ``f()`` with respect to
    ``array``: a gradient check by central differences in float64 (lesson 2), ``array``
    nudged in place and restored. The relative error of a right gradient is about 1e-9.

    mistakes : pairs (explanation, the gradient that typical mistake gives); the first that
    matches ``got`` is named. Otherwise the message says whether the sign or a constant
    factor is off, or where, never what the right numbers are."""
    from tinyvae.core.gradcheck import numerical_gradient, relative_error

    got = expect_array(got, array.shape, what)
    numeric = numerical_gradient(f, array, h=h)
    if relative_error(got, numeric) < tolerance:
        return got
    for explanation, wrong in mistakes:
        wrong = np.asarray(wrong, dtype=np.float64)
        if wrong.shape == got.shape and relative_error(got, wrong) < tolerance:
            raise Wrong(f"{what}: {explanation}")
    raise Wrong(
        describe_difference(got, numeric, what, tol=tolerance)
        + " (judged by a gradient check: finite differences of the function itself)"
    )
