"""High availability: the health monitor (and, later, failover decisions)."""
