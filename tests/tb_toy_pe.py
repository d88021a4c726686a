"""cocotb entry for engines of the toy PE kind: register it, then reuse the stock testbenches.

The simulator's Python rebuilds the configuration from the manifest, so the toy kind must
be registered there too before :mod:`winogen.sim.tb_tile` / :mod:`winogen.sim.tb_layer`
run; their tests are imported into this module, where cocotb discovers them.
"""

import toy_pe

toy_pe.register()

from winogen.sim.tb_tile import extremes_and_random_with_stalls  # noqa: E402,F401
from winogen.sim.tb_layer import driver  # noqa: E402,F401
