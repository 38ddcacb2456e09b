"""Safety measures, and the default measures each threat level requires.

The police name measures in an assessment; the level adds the defaults below; the two
are merged (a union: the police can add measures, never remove a default). The table is
the unit's policy, so it is configurable: `create_app(..., measure_policy=...)` takes a
`MeasurePolicy` in place of `DEFAULT_POLICY`.

| level | required at least |
|---|---|
| 0-2 | nothing beyond the assessment's own measures |
| 3 | `two_staff`, `small_group` |
| 4 | `two_staff`, `small_group`, `individual_only`, `notify_police` |

`small_group` means a group of at most `small_group_limit` citizens (4 by default);
`individual_only` means no group at all, shown as a group limit of 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from services.platform.vocabulary import MAX_THREAT_LEVEL, MIN_THREAT_LEVEL


class Measure(StrEnum):
    individual_only = "individual_only"  # no group offers
    small_group = "small_group"  # a group size limit
    two_staff = "two_staff"  # two staff present
    jobcenter_premises_only = "jobcenter_premises_only"
    notify_police = "notify_police"  # police told before meetings
    no_shared_location_with_conflicts = "no_shared_location_with_conflicts"


def in_order(measures: Iterable[Measure | str]) -> list[Measure]:
    """Measures once each, in the vocabulary's order (stable answers)."""
    present = {Measure(m) for m in measures}
    return [m for m in Measure if m in present]


DEFAULT_SMALL_GROUP_LIMIT = 4
DEFAULT_MEASURES_BY_LEVEL: Mapping[int, frozenset[Measure]] = {
    0: frozenset(),
    1: frozenset(),
    2: frozenset(),
    3: frozenset({Measure.two_staff, Measure.small_group}),
    4: frozenset({Measure.two_staff, Measure.small_group, Measure.individual_only,
                  Measure.notify_police}),
}


@dataclass(frozen=True)
class MeasurePolicy:
    """The defaults by level and the size of a small group. Checked when made: every
    level has an entry, and a small group has room for at least two."""

    by_level: Mapping[int, frozenset[Measure]] = field(
        default_factory=lambda: dict(DEFAULT_MEASURES_BY_LEVEL))
    small_group_limit: int = DEFAULT_SMALL_GROUP_LIMIT

    def __post_init__(self) -> None:
        levels = set(range(MIN_THREAT_LEVEL, MAX_THREAT_LEVEL + 1))
        if set(self.by_level) != levels:
            raise ValueError(f"the measure policy must name every level {sorted(levels)}")
        if self.small_group_limit < 2:
            raise ValueError("a small group has room for at least two (one is individual_only)")
        for measures in self.by_level.values():
            for measure in measures:
                Measure(measure)  # unknown names fail here, not at the first upload

    def required(self, level: int, own: Iterable[Measure | str]) -> list[Measure]:
        """The measures in force for an assessment: its own and the level's defaults."""
        return in_order([*own, *self.by_level[level]])

    def max_group_size(self, measures: Iterable[Measure | str]) -> int | None:
        """1 for `individual_only`, the small-group limit for `small_group`, else None."""
        present = set(in_order(measures))
        if Measure.individual_only in present:
            return 1
        if Measure.small_group in present:
            return self.small_group_limit
        return None


DEFAULT_POLICY = MeasurePolicy()
