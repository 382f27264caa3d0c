"""Flower ClientApp of fedot (``client_app.py``) and its task handlers, one module per task."""
