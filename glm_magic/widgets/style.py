"""The stylesheet of the panel and the button rows, scoped to ``glm-`` classes.

One ``<style>`` element, carried by the panel's header (and by each failing
cell's button row) so streaming updates do not resend it. Colours come from
the notebook theme's CSS variables (JupyterLab and Notebook 7 define them),
with plain fallbacks elsewhere; code uses Pygments' class names mapped to the
theme's CodeMirror colours.
"""

from __future__ import annotations

from ..htmlrender import token_css

__all__ = ["CSS"]


def _css() -> str:
    return (
        "<style>"
        ".glm-html{font-size:var(--jp-content-font-size1,14px);line-height:1.5;"
        "color:var(--jp-content-font-color1,inherit)}"
        ".glm-html p{margin:.35em 0}.glm-html h1,.glm-html h2,.glm-html h3,"
        ".glm-html h4{margin:.6em 0 .3em;line-height:1.25}.glm-html h1{font-size:1.4em}"
        ".glm-html h2{font-size:1.25em}.glm-html h3{font-size:1.1em}"
        ".glm-html ul,.glm-html ol{margin:.3em 0;padding-left:1.6em}"
        ".glm-html blockquote{margin:.4em 0;padding-left:.8em;"
        "border-left:3px solid var(--jp-border-color2,#ccc);opacity:.85}"
        ".glm-html table{border-collapse:collapse;margin:.4em 0}"
        ".glm-html th,.glm-html td{border:1px solid var(--jp-border-color2,#ccc);"
        "padding:.15em .5em}"
        ".glm-html code{font-family:var(--jp-code-font-family,monospace);font-size:.92em;"
        "background:var(--jp-layout-color2,#f3f3f3);padding:0 .2em;border-radius:3px}"
        ".glm-code{margin:.5em 0;border:1px solid var(--jp-border-color2,#ddd);border-radius:4px}"
        ".glm-code-bar{display:flex;gap:.4em;align-items:center;padding:.15em .4em;"
        "background:var(--jp-layout-color2,#f3f3f3);font-size:.85em}"
        ".glm-lang{opacity:.7;margin-right:auto}"
        ".glm-note{font-size:.85em;padding:.1em .5em .3em;display:block}"
        ".glm-note:empty{display:none}"
        ".glm-btn{cursor:pointer;font-size:.85em;padding:0 .6em;line-height:1.6;"
        "border:1px solid var(--jp-border-color1,#bbb);border-radius:3px;"
        "background:var(--jp-layout-color1,#fff);color:var(--jp-ui-font-color1,inherit)}"
        ".glm-html .glm-pre{margin:0;padding:.45em .6em;overflow-x:auto;"
        "background:var(--jp-cell-editor-background,#f7f7f7);"
        "font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,13px)}"
        ".glm-html .glm-pre code{background:none;padding:0;font-size:inherit}"
        ".glm-html details{margin:.3em 0;opacity:.8}"
        ".glm-html summary{cursor:pointer}"
        ".glm-footer{opacity:.65;font-size:.85em;margin-top:.3em}"
        ".glm-error{color:var(--jp-error-color1,#c00);font-weight:600;margin:.3em 0}"
        ".glm-user{white-space:pre-wrap;background:var(--jp-layout-color2,#f1f1f1);"
        "border-radius:6px;padding:.35em .6em;margin:.4em 0 .2em}"
        ".glm-who{font-size:.8em;opacity:.6;margin-top:.5em}" + token_css(".glm-html") + "</style>"
    )


#: The stylesheet every panel HTML widget carries (class names are ``glm-``-scoped).
CSS = _css()
