# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A volume with a volume type through driver `cinder` with Cinder's RBDDriver, and one without; prints,
as JSON, what Cinder's driver made of each: the image's features (RBDDriver turns off exclusive-lock and
the features that need it for a type with the extra spec multiattach='<is> True'), the model update it
returned, and the connection info's front-end QoS specs. Both volumes are deleted at the end.

    <python with cinder and rados> tests/utils/cinder_volume_type.py '<backend JSON>' '<volume_type JSON>'

Used by tests/unit/plugins/module_utils/drivers/test_cinder_driver.py.
"""

from __future__ import annotations

import json
import sys
import uuid

from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Connection, Volume


def features(driver, volume: Volume) -> list[str]:
    """The image's feature names, straight from librbd."""
    impl = driver._impl
    from cinder.volume.drivers import rbd as cinder_rbd

    with cinder_rbd.RADOSClient(impl) as client:
        image = impl.rbd.Image(client.ioctx, f"volume-{volume.id}", read_only=True)
        try:
            bits = image.features()
        finally:
            image.close()
    names = {"exclusive-lock": impl.rbd.RBD_FEATURE_EXCLUSIVE_LOCK, "object-map": impl.rbd.RBD_FEATURE_OBJECT_MAP,
             "fast-diff": impl.rbd.RBD_FEATURE_FAST_DIFF, "layering": impl.rbd.RBD_FEATURE_LAYERING}
    return sorted(name for name, bit in names.items() if bits & bit)


def main() -> None:
    driver = build_driver(json.loads(sys.argv[1]))
    driver.check_setup()
    report = {}
    for label, spec in (("typed", json.loads(sys.argv[2])), ("plain", None)):
        volume = Volume(id=str(uuid.uuid4()), name=label, backend=driver.backend_name, size=1, status="available",
                        volume_type=spec)
        volume.driver_data = driver.create_volume(volume)
        try:
            connection = Connection(id=str(uuid.uuid4()), backend=driver.backend_name, volume_id=volume.id,
                                    host="h", connector={"host": "h"})
            info = driver.initialize_connection(volume, connection)
            driver.terminate_connection(volume, connection)
            report[label] = {"features": features(driver, volume), "model": volume.driver_data.get("model", {}),
                             "qos_specs": info["data"].get("qos_specs")}
        finally:
            driver.delete_volume(volume)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
