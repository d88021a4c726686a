import sys
from pathlib import Path

# Shared test helpers (tile_vectors.py, cocotb testbench modules) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
