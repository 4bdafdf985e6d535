"""The web app and HTTP API (``python serve.py``): see :mod:`features.web.app`."""
