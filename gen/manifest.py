"""The manifest: the JSON file that describes an emitted engine completely.

Every engine's manifest (``OUT/<name>.json``) carries ``schema``, the version of
its format. Builders (in :mod:`winogen.hw`) stamp it; readers (simulation,
synthesis, bundle) refuse a manifest from a newer schema with one line.

This module imports no Amaranth.
"""

__all__ = ["SCHEMA_VERSION", "HANDSHAKE"]

#: Version of the manifest format; bump it when a reader could misread an older one.
SCHEMA_VERSION = 1

#: The stream handshake every engine obeys, as the manifest states it.
HANDSHAKE = ("a beat transfers on a rising clk edge where valid and ready are both 1; "
             "valid never waits for ready, and payload is held while valid and not ready")
