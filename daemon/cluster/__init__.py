"""Several daemons on one PostgreSQL store working as one (docs/scale.md)."""
