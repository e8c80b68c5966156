"""Pareto front and hypervolume against hand-computed answers."""

from __future__ import annotations

import numpy as np
import pytest

from explore.pareto import default_reference, hypervolume, pareto_front


def test_front_of_a_hand_made_set() -> None:
    v = np.array([[1, 5], [2, 3], [3, 3], [4, 1], [2, 4], [5, 5], [4, 1]])
    # (3,3) is dominated by (2,3); (2,4) by (2,3); (5,5) by all; both (4,1) are kept
    assert pareto_front(v, ["min", "min"]).tolist() == [0, 1, 3, 6]


def test_max_sense_flips_the_order() -> None:
    v = np.array([[1.0, 10.0], [2.0, 5.0], [3.0, 1.0]])
    assert pareto_front(v, ["max", "max"]).tolist() == [0, 1, 2]
    assert pareto_front(v, ["max", "min"]).tolist() == [2]


def test_hypervolume_2d_by_hand() -> None:
    # front (0,9) (1,4) (2,1) (3,0), reference (5,10):
    # 5*1 + 4*5 + 3*3 + 2*1 = 36 (staircase slices between consecutive f2 values)
    v = np.array([[0, 9], [1, 4], [2, 1], [3, 0], [4, 1]])
    assert hypervolume(v, ["min", "min"], reference=[5, 10]) == pytest.approx(36.0)
    # maximising the negated values is the same volume
    assert hypervolume(-v, ["max", "max"], reference=[-5, -10]) == pytest.approx(36.0)


def test_hypervolume_3d_by_hand() -> None:
    # two boxes to (2,2,2): [0,2]x[1,2]x[0,2] (vol 4) and [1,2]x[0,2]x[1,2] (vol 2),
    # overlapping in [1,2]x[1,2]x[1,2] (vol 1): union 5
    v = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    assert hypervolume(v, ["min"] * 3, reference=[2, 2, 2]) == pytest.approx(5.0)
    # a point outside the reference box adds nothing
    w = np.vstack([v, [[3.0, 0.0, 0.0]]])
    assert hypervolume(w, ["min"] * 3, reference=[2, 2, 2]) == pytest.approx(5.0)


def test_default_reference_is_worst_plus_a_tenth_of_the_range() -> None:
    v = np.array([[0.0, 10.0], [10.0, 0.0]])
    assert default_reference(v, ["min", "max"]).tolist() == pytest.approx([11.0, -1.0])
