"""The helpers a learner calls in the lessons (``lessons/lesson_utils.py``): a good call
draws what it is given, and a bad one is refused with one line that names the argument,
before any memory is spent on it."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lessons"))
import lesson_utils as U  # noqa: E402

from tinyvae.errors import UserError  # noqa: E402

IMAGES = np.linspace(0, 1, 5 * 12, dtype=np.float32).reshape(5, 12)  # five 3x4 images


def test_a_grid_holds_each_image_where_its_row_and_column_say():
    grid = U.image_grid(IMAGES, (3, 4), ncols=2, pad=1, gap=0.5)
    assert grid.shape == (3 * 4 - 1, 2 * 5 - 1)  # 3 rows of 3 (+1 pad), 2 columns of 4 (+1)
    np.testing.assert_array_equal(grid[4:7, 5:9], IMAGES[3].reshape(3, 4))  # row 1, column 1
    assert (grid[8:11, 5:9] == 0.5).all()  # the sixth place is empty: the gap's grey


def test_one_image_alone_is_a_grid_of_one():
    np.testing.assert_array_equal(U.image_grid(IMAGES[0], (3, 4)), IMAGES[0].reshape(3, 4))


BAD_CALLS = {
    "a shape that does not fit": (dict(images=IMAGES, image_shape=(4, 4)), "not rows of 4x4"),
    "a shape of one number": (dict(images=IMAGES, image_shape=(12,)), "(height, width)"),
    "a side of zero": (dict(images=IMAGES, image_shape=(0, 12)), "each side of image_shape"),
    "no columns": (dict(images=IMAGES, image_shape=(3, 4), ncols=0), "ncols"),
    "a fraction of a column": (dict(images=IMAGES, image_shape=(3, 4), ncols=2.5), "ncols"),
    "a negative pad": (dict(images=IMAGES, image_shape=(3, 4), pad=-1), "pad"),
    "images in three axes": (dict(images=IMAGES.reshape(5, 3, 4), image_shape=(3, 4)), "(n, H*W)"),
    "too many images": (
        dict(images=np.zeros((U.MAX_GRID_IMAGES + 1, 1), np.float32), image_shape=(1, 1)),
        "1 to 10,000",
    ),
    "no images": (dict(images=np.zeros((0, 12), np.float32), image_shape=(3, 4)), "1 to 10,000"),
}


@pytest.mark.parametrize("case", BAD_CALLS, ids=list(BAD_CALLS))
def test_a_bad_grid_is_refused_in_one_line_that_names_it(case):
    kwargs, words = BAD_CALLS[case]
    with pytest.raises(UserError) as caught:
        U.image_grid(**kwargs)
    message = str(caught.value)
    assert words in message and "\n" not in message, message


@pytest.mark.parametrize("steps", [-1, 1.5, "10", None])
def test_minibatches_refuse_a_step_count_that_is_not_a_whole_number(steps):
    with pytest.raises(UserError, match="steps must be a whole number"):
        next(U.minibatches(batches=None, steps=steps))


def test_minibatches_go_on_into_the_next_epoch_for_as_many_steps_as_asked():
    class TwoPerEpoch:
        def epoch(self, e):
            yield from [(e, 0), (e, 1)]

    assert list(U.minibatches(TwoPerEpoch(), 5)) == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    assert list(U.minibatches(TwoPerEpoch(), 0)) == []
