"""The HTTP edge: the Query protocol, SigV4 verification and the handlers."""
