"""winogen.hw: Amaranth components. Every constant and width comes from :mod:`winogen.gen`."""
