"""Sources and outputs: one module each, found through ``connectors.registry``."""
