"""The web app and HTTP API (``python serve.py``): see :mod:`features.app.web.app`."""
