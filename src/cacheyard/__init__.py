"""Cacheyard: a self-hosted, ElastiCache-compatible managed cache service."""

__version__ = "0.1.0"
