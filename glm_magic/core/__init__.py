"""The core every surface shares: one session, one request policy, one stream driver.

Nothing here imports IPython, ipywidgets or httpx (the client is reached
through :mod:`glm_magic.client`). See docs/ARCHITECTURE.md.
"""
