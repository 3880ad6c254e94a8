"""Reconcilers: level-triggered loops that drive real processes toward the spec."""
