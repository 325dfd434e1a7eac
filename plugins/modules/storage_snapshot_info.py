#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_snapshot_info
short_description: List snapshots of block storage volumes
version_added: 0.1.0
description:
  - Returns the snapshots of a backend as kept in the state store, optionally filtered.
author: blockstore.storage developers (@blockstore)
extends_documentation_fragment:
  - blockstore.storage.backend
  - blockstore.storage.persistence
  - blockstore.storage.attributes.INFO
options:
  volume:
    description: Only snapshots of this volume (name or id).
    type: str
  name:
    description: Only the snapshot with this name.
    type: str
  id:
    description: Only the snapshot with this id.
    type: str
  group:
    description:
      - Only the members of the group snapshot with this name (see
        O(blockstore.storage.storage_snapshot#module:group)).
    type: str
seealso:
  - module: blockstore.storage.storage_snapshot
'''

EXAMPLES = r'''
- name: A volume
  blockstore.storage.storage_volume:
    name: data1
    size: 10
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: A snapshot of it
  blockstore.storage.storage_snapshot:
    volume: data1
    name: before-upgrade
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Snapshots of one volume
  blockstore.storage.storage_snapshot_info:
    volume: data1
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  register: snaps

- name: Their names
  ansible.builtin.debug:
    msg: "{{ snaps.snapshots | map(attribute='name') | list }}"
'''

RETURN = r'''
snapshots:
  description:
    - The matching snapshots, sorted by name.
    - Same fields as RV(blockstore.storage.storage_snapshot#module:snapshot).
  returned: always
  type: list
  elements: dict
'''

from ansible_collections.blockstore.storage.plugins.module_utils.queries import SnapshotInfo
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module

ARGUMENT_SPEC = {
    "volume": {"type": "str"},
    "name": {"type": "str"},
    "id": {"type": "str"},
    "group": {"type": "str"},
}
HANDLER = SnapshotInfo


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
