"""The IPython surface: ``%load_ext glm_magic``, the magics, sub-commands and display renderers.

The only layer that imports IPython at run time (the widgets import it only
for display helpers). See docs/ARCHITECTURE.md.
"""
