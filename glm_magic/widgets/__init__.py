"""The ipywidgets surface: the chat panel and the Explain / Fix buttons under failing cells.

The only importer of ipywidgets. See docs/ARCHITECTURE.md.
"""
