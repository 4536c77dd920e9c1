"""The ``auditcorr`` command line: one module per command, each with ``register``,
listed in ``main.REGISTER``; ``main.main`` is the entry point."""
