"""Sigma detection and correlation rules: compiled once, matched where events are decoded."""

BUILTIN = "builtin"
"""The name that stands for the built-in pack wherever rule paths are given."""
