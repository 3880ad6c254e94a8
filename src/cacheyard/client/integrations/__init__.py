"""Web framework integrations for the session store.

Each framework has its own module (``starlette``, ``flask``) that imports the
framework; this package imports none of them, so the client library keeps
working where no web framework is installed.
"""
