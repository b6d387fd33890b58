"""--merge_base values: garbage is one line naming the fix (the merge itself is tested on a real run in
test_training.py)."""

from __future__ import annotations

import pytest

from archivesrag.errors import UserError
from archivesrag.merging import parse_merge_base


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("half", "--merge_base half: give the base model's weight between 0 and 1, or auto"),
        ("-0.1", "--merge_base -0.1: the base model's weight must be between 0 and 1"),
    ],
)
def test_garbage_weight_is_one_line(value, message):
    with pytest.raises(UserError, match=message):
        parse_merge_base(value)


def test_auto_needs_held_out_queries_so_run_py_refuses_it():
    with pytest.raises(UserError, match=r"use loop\.py --merge_base auto"):
        parse_merge_base("auto", allow_auto=False)


def test_none_turns_it_off_and_a_number_is_the_base_share():
    assert parse_merge_base("none") is None and parse_merge_base("0.25") == 0.25
