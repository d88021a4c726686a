"""Plain-text output helpers shared by the CLI, the benchmarks and the exploration.

Pure Python: no Amaranth, no NumPy.
"""

import json
import re

__all__ = ["dumps_json", "markdown_table"]


def dumps_json(data):
    """JSON with each innermost list (a matrix row) kept on one line."""
    text = json.dumps(data, indent=2)
    return re.sub(r"\[\s*([^\[\]{}]*?)\s*\]",
                  lambda mo: "[" + " ".join(mo.group(1).split()) + "]", text)


def markdown_table(rows, columns):
    """A Markdown table: a header of ``columns``, then one line per row (a dict).

    ``None`` and missing values print as empty cells. No trailing newline.
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join("" if row.get(c) is None else str(row[c])
                                       for c in columns) + " |")
    return "\n".join(lines)
