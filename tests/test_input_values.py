"""The input-value grammar and its dtype check, as both the counter and the agent read them."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import UsageError
from shared.input_values import from_wire, parse_value, with_value_shapes


@pytest.mark.parametrize(
    ("text", "shape"),
    [("16000", ()), ("zeros[2,1,128]", (2, 1, 128)), ("ones[1x128]", (1, 128)),
     ("full[2,3](0.5)", (2, 3)), ("[[0,1],[1,0]]", (2, 2)), ("true", ())],
)  # fmt: skip
def test_each_form_round_trips_through_the_wire(text: str, shape: tuple[int, ...]) -> None:
    value = parse_value("x", text)
    assert value.shape == shape
    again = from_wire("x", value.to_wire())
    assert again.shape == shape and again.text() == value.text()


@pytest.mark.parametrize(
    ("text", "dtype"), [("true", np.int64), ("1.5", np.int64), ("300", np.uint8), ("-1", np.uint32)]
)
def test_an_integer_input_refuses_what_it_cannot_hold(text: str, dtype: type) -> None:
    with pytest.raises(UsageError, match=r"input 'sr' is u?int\d+; the value"):
        parse_value("sr", text).to_array("sr", dtype, [])


def test_a_value_shape_and_a_disagreeing_input_shape_are_refused() -> None:
    assert with_value_shapes({"x": [1, 4]}, {"s": (2,)}) == {"x": (1, 4), "s": (2,)}
    with pytest.raises(UsageError, match=r"input 'x': --input gives shape \[2, 4\]"):
        with_value_shapes({"x": [2, 4]}, {"x": (3, 4)})
