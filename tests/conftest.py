import sys
from pathlib import Path

# Shared test helpers (tile_vectors.py, cocotb testbench modules) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))


#: The suite's longest tests (``pytest --durations``), longest first. With two workers a
#: long test that starts late becomes the run's tail; started first, each runs beside the
#: short ones. Only the order changes; a name that no longer matches is simply not moved.
LONGEST_FIRST = (
    "test_rns_verilator.py::test_rns_tile_bit_exact_under_verilator[rns3_f10x10_3x3_inv_d8w8]",
    "test_layer_verilator.py::test_layers_bit_exact[wino43_p4_requant]",
    "test_layer_verilator.py::test_layers_bit_exact[rns_wino43_p2x1]",
    "test_layer_verilator.py::test_layers_bit_exact[direct23_p4]",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def key(item):
        return rank.get(item.nodeid.split("/")[-1], len(rank))
    items.sort(key=key)   # stable: every other test keeps its place
