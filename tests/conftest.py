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


#: Tests that generate a large engine (5-20 s of Amaranth elaboration and Verilog emission
#: each) whose code paths smaller tests of the fast loop also cover. They are marked
#: ``slow``: the full suite runs them, the fast loop (``-m "not verilator and not synth
#: and not slow"``) leaves them out. A name matches as a prefix of the test's node id.
SLOW = (
    "test_rns_engine.py::test_cli_generates_partially_reduced_rns_tile",
    "test_rns_engine.py::test_cli_chooses_moduli_automatically",
    "test_rns_engine.py::test_cli_generates_rns_layer_engine",
    "test_cli.py::test_generate_conv_and_direct_write_manifests",
    "test_emitted_hashes.py::test_emitted_verilog_is_unchanged[tile_rns_f43_",
    "test_emitted_hashes.py::test_emitted_verilog_is_unchanged[conv_rns_f23]",
    "test_emitted_hashes.py::test_emitted_verilog_is_unchanged[tile_f63]",
    "test_fault_campaign_verilator.py::test_fault_sites_",
    "test_fault_campaign_verilator.py::test_fault_site_",
    "test_layer.py::test_edge_configurations[winoconv_f4x4_3x3_mul_d6w6_p2x2-]",
    "test_accuracy.py::test_quantized_study_cli",
    # local Dask clusters (the executor's own tests cover the seam without one)
    "test_faults_cluster.py",
    "test_tile_fault_campaign_verilator.py::test_tile_fault_site",
    "test_emitted_hashes.py::test_emitted_verilog_is_unchanged[conv_f43_q9_tapwise_p2x2]",
    "test_accuracy.py::test_error_grows_with_m",
    "test_addernet.py::test_cli_adder_layer_engines_and_matrix_file_errors",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("/")[-1].startswith(SLOW):
            item.add_marker("slow")
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def key(item):
        return rank.get(item.nodeid.split("/")[-1], len(rank))
    items.sort(key=key)   # stable: every other test keeps its place
