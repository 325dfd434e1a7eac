# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clones of clones through driver `cinder` with Cinder's RBDDriver, deleted in several orders;
prints, as JSON, what the pool holds (images and their snapshots) at each point.

    <python with cinder and rados> tests/utils/cinder_clone_chains.py '<backend JSON>'

Used by tests/unit/plugins/module_utils/drivers/test_cinder_driver.py, in a pool of its own.
"""

from __future__ import annotations

import json
import sys
import uuid

from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Volume

# name: the volume it is cloned from (None: a new volume)
FAMILY = {"a": None, "b": "a", "c": "b"}
ORDERS = {"clones first": ["c", "b", "a"], "parents first": ["a", "b", "c"], "middle first": ["b", "a", "c"]}


def pool_listing(driver) -> dict:
    """{image: [its snapshots]}, straight from librbd."""
    impl = driver._impl
    from cinder.volume.drivers import rbd as cinder_rbd

    with cinder_rbd.RADOSClient(impl) as client:
        listing = {}
        for name in impl.RBDProxy().list(client.ioctx):
            image = impl.rbd.Image(client.ioctx, name, read_only=True)
            try:
                listing[name] = sorted(s["name"] for s in image.list_snaps())
            finally:
                image.close()
        return listing


def main() -> None:
    driver = build_driver(json.loads(sys.argv[1]))
    driver.check_setup()
    report = {}
    for order_name, order in ORDERS.items():
        volumes: dict[str, Volume] = {}
        for name, source in FAMILY.items():
            volume = Volume(id=str(uuid.uuid4()), name=name, backend=driver.backend_name, size=1, status="available",
                            source_volume_id=volumes[source].id if source else None)
            data = driver.create_cloned_volume(volume, volumes[source])[0] if source else driver.create_volume(volume)
            volume.driver_data = data
            volumes[name] = volume
        names = {f"volume-{v.id}": k for k, v in volumes.items()}
        steps = []
        for name in order:
            driver.delete_volume(volumes[name])
            listing = pool_listing(driver)
            # Our volume names instead of ids, so the caller can read it.
            steps.append({"deleted": name, "pool": {
                names.get(image.split(".")[0], image) + image[len(image.split(".")[0]):]:
                    [names.get(s.split(".")[0], s) + s[len(s.split(".")[0]):] for s in snaps]
                for image, snaps in listing.items()}})
        report[order_name] = steps
    print(json.dumps(report))


if __name__ == "__main__":
    main()
