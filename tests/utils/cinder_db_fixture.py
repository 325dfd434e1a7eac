# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make a SQLite database in Cinder's own schema, as cinderlib's `db` persistence keeps it.

    <python with cinder> tests/utils/cinder_db_fixture.py /path/to/db.sqlite

The tables come from the cinder package's SQLAlchemy models (so cinder must be importable:
.venv-rbd after scripts/setup-cinder.sh); the rows are the same objects as the hand-written
cinderlib JSON fixture (tests/unit/plugins/module_utils/fixtures/cinderlib_dumps.json, backend
ceph), plus a soft-deleted volume that must not be imported.
"""

from __future__ import annotations

import datetime
import json
import sys
import warnings

warnings.simplefilter("ignore")

import sqlalchemy as sa  # noqa: E402
from cinder.db import models  # noqa: E402

VOL1 = "6b7c4c1e-3f0a-4b51-9a36-2f8e1d0c9a11"
VOL2 = "7c8d5d2f-4a1b-4c62-8b47-3a9f2e1d0b22"
GONE = "1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
SNAP = "0f5e8d55-9a4a-4f0b-8d1e-6b1f2a3c4d5e"
ATTACHMENT = "a1b2c3d4-0000-4000-8000-000000000001"


def main(path: str) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    models.BASE.metadata.create_all(engine)
    tables = models.BASE.metadata.tables
    when = datetime.datetime(2023, 3, 1, 10, 0, 0, 123456)
    default_type = "c0ffee00-0000-4000-8000-00000000d3f1"
    fast_type = "5d1f3e7a-1111-4222-8333-944455556666"
    with engine.begin() as conn:

        def insert(table: str, rows: list) -> None:
            for row in rows:  # one statement each: rows differ in their columns
                conn.execute(tables[table].insert().values(**row))

        insert("volume_types", [{"id": default_type, "name": "__DEFAULT__", "deleted": False},
                                {"id": fast_type, "name": "fast", "deleted": False}])
        insert("volume_type_extra_specs", [{"volume_type_id": fast_type, "key": "multiattach", "value": "<is> True",
                                            "deleted": False}])
        insert("volumes", [
            {"id": VOL1, "display_name": "data1", "display_description": "database disk", "size": 10,
             "status": "in-use", "attach_status": "attached", "host": "node1@ceph#ceph", "multiattach": False,
             "volume_type_id": default_type, "deleted": False, "created_at": when, "updated_at": when,
             "use_quota": True},
            {"id": VOL2, "display_name": "", "size": 12, "status": "maintenance", "host": "node1@ceph#ceph",
             "snapshot_id": SNAP, "provider_location": '{"saved_features": 61}', "provider_auth": "CHAP user s3cret",
             "volume_type_id": fast_type, "deleted": False, "created_at": when,
             "use_quota": True},
            {"id": GONE, "display_name": "gone", "size": 1, "status": "deleted", "host": "node1@ceph#ceph",
             "volume_type_id": default_type, "deleted": True, "deleted_at": when, "created_at": when,
             "use_quota": True},
        ])
        insert("volume_metadata", [
            {"volume_id": VOL1, "key": "owner", "value": "dba", "deleted": False}])
        insert("snapshots", [
            {"id": SNAP, "volume_id": VOL1, "volume_size": 10, "display_name": "nightly", "status": "available",
             "progress": "ceph", "volume_type_id": default_type, "deleted": False, "created_at": when,
             "use_quota": True}])
        insert("volume_attachment", [
            {"id": ATTACHMENT, "volume_id": VOL1, "attached_host": None, "attach_mode": "rw",
             "attach_status": None, "deleted": False, "created_at": when,
             "connection_info": json.dumps({
                 "conn": {"driver_volume_type": "rbd", "data": {"name": f"volumes/volume-{VOL1}",
                                                                "auth_username": "cinder", "access_mode": "rw"}},
                 "connector": {"host": "node1", "ip": "192.0.2.21"},
                 "device": {"type": "block", "path": "/dev/rbd0"}})}])
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1])
