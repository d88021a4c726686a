"""Moved: the command line is :mod:`winogen.cli` (``winogen = "winogen.cli:main"``).

Kept only so that existing ``from winogen.gen.cli import main`` (tests of other parts)
keeps working; the CLI is imported when ``main`` is called, so :mod:`winogen.gen`
depends on nothing above it. :func:`markdown_table` and :func:`dumps_json` live in
:mod:`winogen.gen.report`.
"""

from .report import dumps_json, markdown_table

__all__ = ["main", "dumps_json", "markdown_table"]


def main(argv=None):
    """:func:`winogen.cli.main`."""
    from winogen.cli import main as cli_main
    return cli_main(argv)
