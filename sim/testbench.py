"""What every cocotb testbench of an emitted engine reads from its environment.

The testbenches (:mod:`~winogen.sim.tb_tile`, :mod:`~winogen.sim.tb_rns`,
:mod:`~winogen.sim.tb_layer`) know nothing but the engine's manifest, named by
``WINOGEN_MANIFEST``; they read it here, through :func:`winogen.gen.manifest.read_manifest`,
so that a missing, damaged or newer manifest fails the same way as in every other reader.
"""

import os

from ..gen.manifest import ENGINE_KEYS, ManifestError, read_manifest

__all__ = ["MANIFEST_ENV", "engine_manifest"]

#: The environment variable naming the engine's manifest (a file or the output folder).
MANIFEST_ENV = "WINOGEN_MANIFEST"


def engine_manifest():
    """The manifest ``WINOGEN_MANIFEST`` names, checked for the keys a testbench needs.

    Raises
    ------
    winogen.gen.manifest.ManifestError
        If the variable is unset or the manifest cannot be read (one line).
    """
    path = os.environ.get(MANIFEST_ENV)
    if not path:
        raise ManifestError(f"{MANIFEST_ENV} must name the engine's manifest JSON, not "
                            f"{path!r}")
    return read_manifest(path, require=ENGINE_KEYS)
