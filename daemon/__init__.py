"""auditcorr daemon: event model, pipeline, timeline store, CLI."""

__version__ = "0.1.0"
