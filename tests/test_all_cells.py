"""The shared checks of zoo.testing, run over every registered cell."""

import pytest

from zoo import cells, testing


@pytest.mark.parametrize("check", testing.ALL_CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", cells.names())
def test_cell(name, check):
    check(name)


@pytest.mark.parametrize("name", cells.names())
def test_bad_arguments_name_the_argument(name):
    testing.check_bad_arguments(name)


def test_registry_lists_and_finds_cells():
    assert {"lstm", "lstm_1997", "gru", "vanilla_lstm", "cifg_lstm"} <= set(cells.names())
    assert cells.names("*_lstm") == [n for n in cells.names() if n.endswith("_lstm")]
    assert cells.get("lstm").registry_name == "lstm"
    with pytest.raises(KeyError, match="Known cells: .*lstm"):
        cells.get("no_such_cell")


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        cells.register("lstm")(type("Other", (), {}))
