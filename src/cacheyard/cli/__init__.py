"""The person's entry points: the ``cacheyard`` command."""
