"""Sources (``sources/``) and outputs (``outputs/``), one module per config type, found
through ``connectors.registry``; the helpers they share beside them."""
