#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_volume_info
short_description: List block storage volumes
version_added: 0.1.0
description:
  - Returns the volumes of a backend as kept in the state store, optionally filtered.
author: blockstore.storage developers (@blockstore)
extends_documentation_fragment:
  - blockstore.storage.backend
  - blockstore.storage.persistence
  - blockstore.storage.attributes.INFO
options:
  name:
    description: Only the volume with this name.
    type: str
  id:
    description: Only the volume with this id.
    type: str
  status:
    description: Only volumes in this status.
    type: str
    choices: [creating, available, extending, in-use, deleting, error, error_deleting, reverting]
  usage:
    description:
      - Also return each volume's RV(volumes[].allocated_bytes), measured on the backend where the module runs
        (without it the answer comes from the state store alone, without running the module on the host).
    type: bool
    default: false
seealso:
  - module: blockstore.storage.storage_volume
'''

EXAMPLES = r'''
- name: A volume
  blockstore.storage.storage_volume:
    name: data1
    size: 10
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Show one volume
  blockstore.storage.storage_volume_info:
    name: data1
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  register: info

- name: Its size and status
  ansible.builtin.debug:
    msg: "{{ info.volumes[0].size }} GiB, {{ info.volumes[0].status }}"

- name: How much of its size it takes on the backend
  blockstore.storage.storage_volume_info:
    name: data1
    usage: true
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  register: usage

- name: Allocated bytes of its 10 GiB
  ansible.builtin.debug:
    msg: "{{ usage.volumes[0].allocated_bytes }} of {{ usage.volumes[0].size * 1073741824 }} bytes"

- name: All volumes left in an error status
  blockstore.storage.storage_volume_info:
    status: error
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
'''

RETURN = r'''
volumes:
  description:
    - The matching volumes, sorted by name.
    - Same fields as RV(blockstore.storage.storage_volume#module:volume), and RV(volumes[].connections).
  returned: always
  type: list
  elements: dict
  contains:
    connections:
      description:
        - The volume's connections, one per host it is exported to, sorted by host, as the store keeps them
          (cinderlib's C(volume.connections)), so that the connector of a host that is gone can still be found.
        - Never the connection's credentials (C(connection_info)); see
          RV(blockstore.storage.storage_attachment#module:attachment) on the host itself for those, masked.
      returned: always
      type: list
      elements: dict
      contains:
        id: {description: The connection's id., type: str, returned: always}
        host: {description: The host the volume is exported to., type: str, returned: always}
        status:
          description: C(connected), C(attached), or C(attaching), C(connecting), C(detaching) while (or after) a
            task on it ran.
          type: str
          returned: always
        stale:
          description:
            - True for a connection whose export a forced detach removed while its host was gone
              (O(blockstore.storage.storage_attachment#module:force)); its status is then C(stale) and its device is
              that host's dead device, removed by the host's next task on the volume.
          type: bool
          returned: always
        mode: {description: C(rw) or C(ro)., type: str, returned: always}
        connector:
          description: Who the host is - the keys C(host), C(ip), C(initiator), C(nqn), C(wwpns), C(wwnns),
            C(platform), C(os_type) and C(multipath) of its connector properties, those it has.
          type: dict
          returned: always
        device:
          description: The block device the host made of it (C(path), C(type), C(method), C(protocol)), or null.
          type: dict
          returned: always
        created_at: {description: When the connection was made (UTC ISO 8601 time)., type: str, returned: always}
        updated_at: {description: When it last changed (UTC ISO 8601 time)., type: str, returned: always}
    allocated_bytes:
      description:
        - "With O(usage=true): the bytes the volume itself takes on the backend, without what it shares with its
          snapshots or clones. File driver: the blocks of the volume's file (a sparse raw file; a qcow2 overlay
          without the frozen images under it). rbd: the extents the image holds, as C(rbd du) counts them
          (without its parent's). Null where the driver cannot tell (the cinder adapter) or the object is gone."
      returned: when O(usage=true)
      type: int
'''

from ansible_collections.blockstore.storage.plugins.module_utils.objects import VOLUME_STATUSES
from ansible_collections.blockstore.storage.plugins.module_utils.queries import VolumeInfo
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module

ARGUMENT_SPEC = {
    "name": {"type": "str"},
    "id": {"type": "str"},
    "status": {"type": "str", "choices": list(VOLUME_STATUSES)},
    "usage": {"type": "bool", "default": False},
}
HANDLER = VolumeInfo


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
