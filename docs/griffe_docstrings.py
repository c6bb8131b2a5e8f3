"""A Griffe extension (mkdocs.yml, mkdocstrings' ``extensions``) for the API reference.

minicnn's docstrings are plain text with reST habits, written to be read in the source and
by ``help()``. The reference renders them as Markdown; this makes three habits read well
there, without changing a docstring:

- a layer's four parts, ``Shapes:``, ``Forward:``, ``Backward:`` and ``Kept for backward:``,
  each start a line of their own, the name in bold;
- a paragraph that ends in ``::`` (reST: "a literal block follows") ends in ``:``; the
  indented block after it is already a code block in Markdown;
- a reST simple table (rows between lines of ``====  ====``) is shown as it is written, in
  a preformatted block, instead of being read as headings.
"""
import re

import griffe

PARTS = re.compile(r"(?:^|(?<=\n)|(?<=\. ))(Shapes|Forward|Backward|Kept for backward):")
LITERAL = re.compile(r"(?<=\S)::(?=\n)|(?:^|(?<=\n))[ \t]*::[ \t]*(?=\n)")
BORDER = re.compile(r"^[ \t]*=+(?:[ \t]+=+)+[ \t]*$")


def readable(text):
    text = PARTS.sub(lambda m: f"\n\n**{m.group(1)}:**", text)
    text = LITERAL.sub(":", text)
    return _fence_tables(text)


def _fence_tables(text):
    """Each run of lines from a border line to the last border line before a blank line (or
    the end) goes into a ```text block."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        if not BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        end = i
        j = i + 1
        while j < len(lines) and lines[j].strip():
            if BORDER.match(lines[j]):
                end = j
            j += 1
        out += ["", "```text", *lines[i:end + 1], "```", ""]
        i = end + 1
    return "\n".join(out)


class ReadableDocstrings(griffe.Extension):
    def on_object(self, *, obj, **kwargs):       # each object, once the package is loaded
        if obj.docstring is not None:
            obj.docstring.value = readable(obj.docstring.value)
