"""Engine versions offered by the API: only the ones actually installed."""

from __future__ import annotations

from dataclasses import dataclass

from cacheyard.domain.faults import InvalidParameterValueException

ENGINES = ("redis", "memcached")
DEFAULT_PORTS = {"redis": 6379, "memcached": 11211}


@dataclass(frozen=True)
class EngineVersion:
    engine: str
    version: str  # the installed binary's full version, e.g. 7.0.15

    @property
    def major_minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    @property
    def family(self) -> str:
        """The parameter group family: redis7, memcached1.6."""
        if self.engine == "redis":
            return f"redis{self.version.split('.')[0]}"
        return f"memcached{self.major_minor}"

    @property
    def default_parameter_group(self) -> str:
        return f"default.{self.family}"

    @property
    def description(self) -> str:
        return "Redis" if self.engine == "redis" else "memcached"

    @property
    def version_description(self) -> str:
        label = "redis" if self.engine == "redis" else "memcached"
        return f"{label} version {self.version}"

    def accepts(self, requested: str) -> bool:
        """AWS accepts a major.minor for Redis 6 and later (``7.0``) or the full version."""
        if requested == self.version:
            return True
        redis_6_or_later = self.engine == "redis" and int(self.version.split(".")[0]) >= 6
        return redis_6_or_later and requested == self.major_minor


@dataclass(frozen=True)
class EngineCatalog:
    versions: tuple[EngineVersion, ...]

    def resolve(self, engine: str, requested: str | None) -> EngineVersion:
        if engine not in ENGINES:
            raise InvalidParameterValueException(
                f"Invalid value for Engine: {engine}. Valid values are: redis, memcached."
            )
        candidates = [v for v in self.versions if v.engine == engine]
        if not candidates:
            raise InvalidParameterValueException(f"Engine {engine} is not installed on this host.")
        if requested is None:
            return candidates[0]
        for candidate in candidates:
            if candidate.accepts(requested):
                return candidate
        raise InvalidParameterValueException(f"Cannot find version {requested} for {engine}")
