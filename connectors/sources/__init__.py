"""Sources: one module per config ``type``, found through ``connectors/registry.py``."""
