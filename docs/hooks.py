"""mkdocs hooks: generated content that cannot drift from the code.

- ``<!-- omio-help COMMAND -->`` becomes the help text of ``omio COMMAND`` (``<!-- omio-help -->``
  the top-level help), generated from the parser at build time.
- ``<!-- omio-benchmarks -->`` becomes every ``benchmarks/results_*.md`` table, headings
  demoted one level, in file-name order.
- ``<!-- omio-readme SECTION -->`` becomes the body of the README's ``## SECTION``, so the
  formats table and the reader guide are written once.
- Sphinx roles in docstrings (``:func:`scan```, ``:class:`~omio.MicroscopyDataset```) become
  links where the object is documented here, and plain code elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from typing import Any

HELP = re.compile(r"<!-- omio-help(?: (?P<command>[a-z]+))? -->")
BENCHMARKS = "<!-- omio-benchmarks -->"
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks"
README_SECTION = re.compile(r"<!-- omio-readme (?P<title>[^>]+?) -->")
ROLE = re.compile(
    r":(?:func|meth|class|mod|attr|data|exc|obj):<code>(?P<tilde>~?)(?P<name>[^<]*?)"
    r"(?: &lt;(?P<target>[^&<]*)&gt;)?</code>"
)
DIRECTIVE = re.compile(r"^::: (?P<module>\S+)", flags=re.MULTILINE)


def _help(command: str | None) -> str:
    from omio.cli import main

    os.environ["COLUMNS"] = "100"  # argparse wraps help at the terminal width
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([command, "--help"] if command else ["--help"])
    return f"```text\n{out.getvalue().rstrip()}\n```"


def _benchmarks() -> str:
    tables = []
    for path in sorted(RESULTS.glob("results_*.md")):
        text = path.read_text(encoding="utf-8")
        tables.append(re.sub(r"^(#+) ", r"#\1 ", text, flags=re.MULTILINE).strip())
    return "\n\n".join(tables)


def _readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"^## {re.escape(title)}\n(?P<body>.*?)(?=^## |\Z)", readme, flags=re.MULTILINE | re.DOTALL)
    if found is None:
        raise ValueError(f"README.md has no section '## {title}' for the documentation")
    return found["body"].strip()


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Insert the generated text where a page asks for it."""
    markdown = HELP.sub(lambda m: _help(m.group("command")), markdown)
    markdown = README_SECTION.sub(lambda m: _readme_section(m.group("title")), markdown)
    return markdown.replace(BENCHMARKS, _benchmarks()) if BENCHMARKS in markdown else markdown


def _link(match: re.Match[str], module: str) -> str:
    """An optional cross-reference (unresolved ones stay code, without a warning)."""
    name = match["target"] or match["name"]
    if not name.startswith("omio"):
        name = f"{module}.{name}" if "." not in name else f"omio.{name}"
    title = match["name"].rsplit(".", 1)[-1] if match["tilde"] else match["name"]
    return f'<autoref identifier="{name}" optional><code>{title}</code></autoref>'


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """Turn the Sphinx roles left in rendered docstrings into cross-references."""
    directive = DIRECTIVE.search(page.markdown or "")
    module = directive["module"] if directive else "omio"
    return ROLE.sub(lambda m: _link(m, module), html)
