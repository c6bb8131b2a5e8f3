"""MkDocs hook (mkdocs.yml, ``hooks:``): the notebook pages load nothing from outside the site.

The Tutorials pages are the notebooks of examples/notebooks, rendered by mkdocs-jupyter from
their committed outputs; docs/tutorials/ holds symbolic links to them, not copies.
``on_page_content``: nbconvert's HTML template loads MathJax and Mermaid from a CDN on
  every notebook page; the notebooks use neither (no formulas in ``$...$``, no diagrams),
  so those scripts are taken out: the site works offline and tells no one who reads it.
"""
import re

# <script src="https://..."></script>, and the module scripts that import from https://
_REMOTE_SCRIPT = re.compile(
    r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>"
    r"|<script type=\"module\">(?:(?!</script>).)*?https?://(?:(?!</script>).)*?</script>",
    re.S)



def on_page_content(html, page, config, files):
    if page.file.src_uri.endswith(".ipynb"):
        html = _REMOTE_SCRIPT.sub("", html)
    return html
