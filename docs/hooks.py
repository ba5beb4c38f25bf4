"""mkdocs hook: replace ``<!-- omio-help COMMAND -->`` markers with the command line's help text.

The help shown in the documentation is generated from the parser at build time, so it
cannot drift from what ``omio COMMAND --help`` prints.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Any

MARKER = re.compile(r"<!-- omio-help(?: (?P<command>[a-z]+))? -->")


def _help(command: str | None) -> str:
    from omio.cli import main

    os.environ["COLUMNS"] = "100"  # argparse wraps help at the terminal width
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([command, "--help"] if command else ["--help"])
    return f"```text\n{out.getvalue().rstrip()}\n```"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Insert the generated help text where a page asks for it."""
    return MARKER.sub(lambda m: _help(m.group("command")), markdown)
