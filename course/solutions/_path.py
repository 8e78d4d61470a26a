"""Importing this puts lessons/ on sys.path, so the solutions can use the lessons' checkers."""

import sys
from pathlib import Path

LESSONS = str(Path(__file__).resolve().parents[2] / "lessons")
if LESSONS not in sys.path:
    sys.path.insert(0, LESSONS)
