"""Timeline stores: one interface (base.py), one module per engine."""
