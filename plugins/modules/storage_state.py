#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_state
short_description: Import cinderlib's state into the store, or export a backend's records as JSON
version_added: 0.1.0
description:
  - With O(state=imported), reads cinderlib's state from O(src) and adds its volumes, snapshots and connections to
    the records of O(backend), keeping their ids, so that the driver finds the same images (Cinder names them
    C(volume-<id>) and C(snapshot-<id>), as the C(rbd) and C(cinder) drivers do).
  - "O(src) is one of: a JSON file written by cinderlib (what cinderlib.dumps() or a backend's C(dumps) returns, with
    or without cinderlib's C(output_all_backend_info), or one object's C(dumps)), in cinderlib's versioned-object
    format (C(class), C(backend), C(ovo) with C(versioned_object.name), C(versioned_object.version),
    C(versioned_object.data)); a SQLAlchemy URL of cinderlib's C(db) persistence (Cinder's database schema: tables
    C(volumes), C(snapshots), C(volume_attachment) and their metadata tables); or a file written by
    O(state=exported)."
  - "A snapshot's or a connection's own C(dumps) carries its volume, which is imported with it (with the volume's
    other snapshots and connections). Tested with the JSON dumps and the C(db) persistence of real cinderlib 5.2.0
    (cinder 23, RBD driver)."
  - "Mapped: ids, names (C(display_name); unnamed objects are named C(volume-<id>) / C(snapshot-<id>)), sizes,
    statuses, descriptions, metadata, sources (C(snapshot_id), C(source_volid)), multiattach, times (in UTC to the
    second, C(+00:00), as records made here), the driver's
    C(provider_location), C(provider_auth), C(provider_id) and C(provider_geometry) (kept in driver_data as driver
    C(cinder) keeps them), snapshots, and connections (host, connector, connection info, mode)."
  - "Not mapped, and listed in RV(unmapped) rather than dropped silently: statuses with no equivalent (imported as
    C(error)), volume types and extra specs, encryption keys, groups and consistency groups, replication, admin and
    glance metadata, local devices of attachments (connections are imported as C(connected); reattach with
    M(blockstore.storage.storage_attachment)), objects of other cinderlib backends, and snapshots or connections whose
    volume is not in O(src)."
  - Importing again changes nothing; a record whose mapped fields changed in O(src) is updated. Records of the
    backend that O(src) does not hold are left alone.
  - With O(state=exported), writes the backend's records to O(dest) in this collection's versioned JSON (mode 0600,
    atomic); secret fields stay sealed with the store's key. Unchanged content is not rewritten.
  - Runs where the store is (the controller, through the collection's action plugin); nothing runs on the target.
author: blockstore.storage developers (@blockstore)
extends_documentation_fragment:
  - blockstore.storage.backend
  - blockstore.storage.persistence
  - blockstore.storage.attributes
options:
  state:
    description: Import into the store, or export from it.
    type: str
    choices: [imported, exported]
    required: true
  src:
    description:
      - With O(state=imported), a path to a JSON file (on the controller) or a database URL such as
        C(sqlite:////var/lib/cinderlib/cinderlib.sqlite).
    type: str
  src_backend:
    description:
      - The cinderlib backend (its C(volume_backend_name)) whose objects to import, when O(src) holds several. Objects
        of other backends are listed in RV(unmapped).
    type: str
  dest:
    description: With O(state=exported), the JSON file to write (absolute path on the controller).
    type: path
seealso:
  - module: blockstore.storage.storage_volume_info
'''

EXAMPLES = r'''
- name: Import what cinderlib.dumps() saved of its backend ceph
  blockstore.storage.storage_state:
    state: imported
    src: /var/lib/cinderlib/state.json
    src_backend: ceph
    backend: {name: ceph, driver: rbd, rbd_pool: volumes, rbd_ceph_conf: /etc/ceph/ceph.conf}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  register: migration

- name: Show what could not be mapped
  ansible.builtin.debug:
    var: migration.unmapped

- name: Import from cinderlib's db persistence, into a database store
  blockstore.storage.storage_state:
    state: imported
    src: sqlite:////var/lib/cinderlib/cinderlib.sqlite
    src_backend: ceph
    backend: {name: ceph, driver: rbd, rbd_pool: volumes, rbd_ceph_conf: /etc/ceph/ceph.conf}
    persistence: {storage: db, connection: "sqlite:////var/lib/blockstore/state.db"}

- name: Export the backend's records
  blockstore.storage.storage_state:
    state: exported
    dest: /var/backups/blockstore-ceph.json
    backend: {name: ceph, driver: rbd, rbd_pool: volumes, rbd_ceph_conf: /etc/ceph/ceph.conf}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
'''

RETURN = r'''
actions:
  description: What the task did, or in check mode would do.
  returned: always
  type: list
  elements: str
imported:
  description: How many volumes, snapshots and connections O(src) holds for the backend, and backups when it holds
    any (a file written by O(state=exported)).
  returned: state is imported
  type: dict
  sample: {volumes: 2, snapshots: 1, connections: 1}
unmapped:
  description: What was not mapped (or not imported), each with C(kind), C(id) and C(reason).
  returned: state is imported
  type: list
  elements: dict
records:
  description: The records added or updated (kind, id, name, status, volume_id).
  returned: state is imported
  type: list
  elements: dict
count:
  description: How many records were exported.
  returned: state is exported
  type: int
'''

from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module
from ansible_collections.blockstore.storage.plugins.module_utils.transfer import STATES, StateTransfer

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": list(STATES), "required": True},
    "src": {"type": "str"},
    "src_backend": {"type": "str"},
    "dest": {"type": "path"},
}
HANDLER = StateTransfer


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
