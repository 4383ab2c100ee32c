"""The web UI: FastAPI routes, security, the server driver and the page assets."""
