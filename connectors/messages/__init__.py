"""Message content for the channels: one module per channel family, one set of facts."""
