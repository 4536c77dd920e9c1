"""What the syslog sources share: batching, stream framing and the network listeners."""
