"""The task channel's flag parsing (pure); the channel itself is tested live in test_lb_live."""

import pytest

from kernelpar.controller.taskqueue import FlagError, parse_flags

DEP = {"dependencies": ["a"], "all": True, "success": True, "failure": False}


def test_defaults_and_values():
    assert parse_flags({}) == (None, None, None, 0.0, 0)
    assert parse_flags({"targets": ["u1", "u2"], "after": DEP, "follow": {"dependencies": []}, "timeout": 2,
                        "retries": 3}) == (frozenset({"u1", "u2"}), DEP, None, 2.0, 3)
    assert parse_flags({"targets": []})[0] is None


@pytest.mark.parametrize("metadata", [
    {"targets": "u1"}, {"targets": [1]}, {"after": ["a"]}, {"follow": {"dependencies": "a"}},
    {"timeout": -1}, {"timeout": "1"}, {"timeout": True}, {"retries": -1}, {"retries": 1.5}, {"retries": True},
])
def test_bad_flags_name_the_flag(metadata):
    with pytest.raises(FlagError) as info:
        parse_flags(metadata)
    assert next(iter(metadata)) in str(info.value)
