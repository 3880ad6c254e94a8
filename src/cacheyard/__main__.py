"""``python -m cacheyard`` is the ``cacheyard`` command."""

from cacheyard.cli.main import main

main()
