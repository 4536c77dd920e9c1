"""Data contracts shared by connectors and the daemon, each with its published schema."""
