# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A volume's type, extra specs, QoS and pool (storage_volume): asked at create, changed where the driver can.

What a task asks is resolved by volume_types.requested_spec and checked by the driver
(`drivers.base.Driver.check_spec`) before any plan, so what a driver cannot honour is refused, never
ignored. On an existing volume, the pool, the type and the extra specs never change (refused); the
QoS changes where the driver can (`drivers.base.Driver.qos_change`): a step on the backend, or a
record change that applies at the next attach.

`Retyping` is a part of volumes.VolumeResource, whose ACTIONS table runs the change_qos step.
"""

from __future__ import annotations

from .drivers.base import Driver
from .errors import Conflict, InvalidParameter
from .objects import Volume
from .plan import Resource, Step
from .volume_types import describe, qos_of, requested_pool, requested_spec


def change_qos(resource: Resource, step: Step, driver: Driver) -> None:
    step.target.driver_data = driver.change_qos(step.target)


class Retyping(Resource):
    """VolumeResource's plan of a volume's spec and pool (a part of it: its ACTIONS run the steps)."""

    def _requested_spec(self, had: dict | None = None) -> tuple[dict | None, str | None]:
        """What the task asks a volume to be created with (`had`: an existing volume's record of it),
        refused here when the driver cannot honour it."""
        pool = requested_pool(self.params)
        if self.driver is None:  # not known here: the plan where the module runs, with the driver, decides
            return None, pool
        spec = requested_spec(self.params, self.driver.volume_types, self.records.backend, had)
        self.driver.check_spec(spec, pool)
        return spec, pool if pool is not None else self.driver.default_pool()

    def _refuse_spec_on_adopt(self) -> None:
        given = [k for k in ("volume_type", "extra_specs", "qos", "pool") if self.params.get(k) is not None]
        if given:
            raise InvalidParameter(f"{given[0]}: not with source.existing (an adopted object keeps what it was made "
                                   "with); adopt it first, then change its qos in a second task", given[0])

    def _plan_spec(self, existing: Volume, target: Volume, steps: list) -> list[str]:
        """An existing volume's pool and spec against the task's: the same, a qos change the driver
        can make (a step, or a record change that applies at the next attach), or a clear refusal."""
        had = existing.volume_type or {"name": None, "extra_specs": {}, "qos_specs": {}}
        spec, pool = self._requested_spec(had)
        if self.driver is None:
            return []
        recorded = existing.pool if existing.pool is not None else self.driver.default_pool()
        if self.params.get("pool") is not None and pool != recorded:
            raise Conflict(f"pool: volume {existing.name!r} is in pool {recorded!r}; a volume does not move "
                           f"to another pool (make a new volume in pool {pool!r} from a snapshot of it)", "pool")
        if spec is None:
            return []
        for key, option in (("name", "volume_type"), ("extra_specs", "extra_specs")):
            if spec[key] != had.get(key) and (spec[key] or had.get(key)):
                raise Conflict(f"{option}: volume {existing.name!r} was created with {describe(existing.volume_type)}; "
                               f"the {option} of an existing volume cannot change (asked: {describe(spec)}). Make a "
                               "new volume from a snapshot of it", option)
        if qos_of(spec) == qos_of(had):
            return []
        how = self.driver.qos_change
        if how is None:
            raise Conflict(f"qos: driver {self.driver.name!r} cannot change the QoS of "
                           f"existing volume {existing.name!r} ({describe(had)})", "qos")
        target.volume_type = spec
        change = f"set {describe(spec)}" if qos_of(spec) else "remove its qos limits"
        if how == "attach":
            return [f"{change} (applies at its next attach)"]
        steps.append(Step("change_qos", target, message=f"volume {existing.name!r}: {change} on the backend"))
        return []
