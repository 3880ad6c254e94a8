"""Cache parameter groups: a family's defaults plus the values a user changed.

Only the user's changes are stored; everything else is the family's default,
so a reset is simply forgetting a value. What a value means to a running node
(live or at the next restart) is the parameter's ChangeType, read from the
engine by the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from cacheyard.domain import faults
from cacheyard.domain.identifiers import parameter_group_name
from cacheyard.domain.parameters import ParameterCatalog, ParameterFamily

DEFAULT_PREFIX = "default."
MAX_GROUPS = 150
MAX_DESCRIPTION = 255


@dataclass(frozen=True)
class ParameterGroupSpec:
    name: str
    family: str
    description: str
    values: dict[str, str] = field(default_factory=dict)

    @property
    def is_default(self) -> bool:
        return self.name.startswith(DEFAULT_PREFIX)


def default_group(family: ParameterFamily) -> ParameterGroupSpec:
    return ParameterGroupSpec(
        name=f"{DEFAULT_PREFIX}{family.family}",
        family=family.family,
        description=f"Default parameter group for {family.family}",
    )


def plan_create(
    catalog: ParameterCatalog, name: str, family: str, description: str
) -> ParameterGroupSpec:
    if len(description) > MAX_DESCRIPTION:
        raise faults.InvalidParameterValueException(
            f"The description must be at most {MAX_DESCRIPTION} characters."
        )
    return ParameterGroupSpec(
        name=parameter_group_name(name),
        family=catalog.family(family).family,
        description=description,
    )


def _changeable(spec: ParameterGroupSpec) -> None:
    if spec.is_default:
        raise faults.InvalidCacheParameterGroupStateFault(
            f"The default parameter group {spec.name} cannot be modified; create a "
            "parameter group of the same family and change that one."
        )


def plan_modify(
    spec: ParameterGroupSpec, family: ParameterFamily, changes: Sequence[tuple[str, str]]
) -> ParameterGroupSpec:
    _changeable(spec)
    if not changes:
        raise faults.InvalidParameterValueException(
            "At least one parameter name and value must be given."
        )
    values = dict(spec.values)
    for name, value in changes:
        values[name] = family.validate(name, value)
    # A value equal to the default is no change: the parameter stays "system".
    defaults = family.defaults()
    return replace(spec, values={k: v for k, v in values.items() if v != defaults.get(k)})


def plan_reset(
    spec: ParameterGroupSpec, family: ParameterFamily, reset_all: bool, names: Iterable[str]
) -> ParameterGroupSpec:
    _changeable(spec)
    names = list(names)
    if reset_all == bool(names):
        raise faults.InvalidParameterCombinationException(
            "Give either ResetAllParameters or the names of the parameters to reset, not both."
        )
    if reset_all:
        return replace(spec, values={})
    for name in names:
        family.get(name)
    return replace(spec, values={k: v for k, v in spec.values.items() if k not in names})
