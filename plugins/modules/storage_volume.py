#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_volume
short_description: Create, extend, rename, copy and delete block storage volumes
version_added: 0.1.0
description:
  - Manages a volume on a storage backend, as in cinderlib's object model. A volume is created empty,
    from a snapshot, or as a clone of another volume.
  - Volumes only grow; a smaller O(size) fails and changes nothing.
  - With O(source.existing), takes over (adopts) an object already on the backend that no record knows, keeping
    its data; with O(state=absent) and O(keep_storage=true), forgets the volume's record and keeps its storage.
  - With O(revert_to), the volume holds one of its snapshots' data again, in place (its id, name and
    connections stay).
  - State is kept on the Ansible controller (see O(persistence)); the storage work runs on the target host.
author: blockstore.storage developers (@blockstore)
extends_documentation_fragment:
  - blockstore.storage.backend
  - blockstore.storage.persistence
  - blockstore.storage.attributes
options:
  name:
    description:
      - The volume's name, unique on its backend. Names are labels; storage objects are named by id.
      - With O(id) too, renames the volume.
    type: str
  id:
    description:
      - The volume's id (a UUID). Identifies the volume when names are ambiguous; with O(name) and no such
        volume, creates the volume with this id.
    type: str
  state:
    description: Whether the volume exists.
    type: str
    choices: [present, absent]
    default: present
  size:
    description:
      - The size. An integer is GiB; a string takes a unit M, G, T (binary), MiB, GiB, TiB, MB, GB or TB and
        must come to a whole number of GiB.
      - Required to create an empty volume; defaults to the source's size with O(source).
      - A larger size than the volume has extends it; a smaller one is an error.
    type: raw
  source:
    description:
      - What a new volume is made from; used only when the volume is created, ignored afterwards.
    type: dict
    suboptions:
      snapshot:
        description: Name or id of a snapshot on the same backend.
        type: str
      volume:
        description: Name or id of a volume on the same backend to clone.
        type: str
      existing:
        description:
          - "Adopt this object, already on the backend and known to no record, as the volume O(name): a file's name in
            the file backend's directory (a raw file on a V(raw) backend; a qcow2 image without a backing file on a
            V(qcow2) backend), or an image's name in the rbd pool (without snapshots or a parent). Its data is kept."
          - "Checked on the backend before anything changes: it must exist, not be a volume of this store already,
            and not be on a backend another state store owns (the file backend's C(.blockstore-owner) marker).
            Its size is read from the backend; one that is not a whole number of GiB needs O(size), and the object
            grows to it."
          - "Objects this collection made are named C(volume-<id>) (after O(state=absent) with O(keep_storage=true),
            the drift check of M(blockstore.storage.storage_backend_info) lists them as unknown objects): adopted
            with that id. Any other name needs O(source.rename=true)."
          - "Done once: afterwards, a task naming the same volume and object changes nothing. The cinder adapter
            cannot adopt (refused)."
        type: str
      rename:
        description:
          - With O(source.existing), rename an object that is not named C(volume-<id>) to the collection's own name
            C(volume-<id>) on the backend, so that it is found by id as every other volume (what used it by its old
            name no longer finds it). Without it, such an object is refused and nothing is renamed.
        type: bool
  description:
    description: Free text kept with the volume.
    type: str
  metadata:
    description: Key/value pairs kept with the volume; replaces the whole dict when given.
    type: dict
  multiattach:
    description:
      - Whether several hosts may connect the volume at once (see M(blockstore.storage.storage_attachment)).
        Defaults to V(false) for a new volume; unchanged when not given.
      - Turning it off while several hosts are connected fails.
    type: bool
  volume_type:
    description:
      - "Name of a volume type defined on the backend (the backend's C(volume_types), in the task or the backends
        file): a named set of extra specs and QoS specs, as Cinder's volume types. An unknown name fails, listing the
        defined ones."
      - "Used when the volume is created; kept in its record (RV(volume.volume_type)). The type of an existing volume
        does not change: another one is refused (its QoS can change with O(qos), see there)."
      - What the driver cannot honour of the type is refused, naming the option and the driver, never ignored.
    type: str
  extra_specs:
    description:
      - Extra specs for the new volume (text keys and values), added to (and winning over) the O(volume_type)'s.
      - "The cinder adapter hands them to the Cinder driver in the volume's type, as Cinder does (each Cinder driver
        acts on the specs it knows, e.g. RBDDriver's C(replication_enabled) or C(multiattach)); the native
        V(file) and V(rbd) drivers honour none and refuse them."
      - The extra specs of an existing volume do not change; different ones are refused.
    type: dict
  qos:
    description:
      - Front-end QoS limits, with Cinder's key names (and QEMU's throttle names); when given, they replace the
        O(volume_type)'s. A total limit cannot be combined with a per-direction one of the same unit.
      - "V(rbd): set as the image's librbd QoS metadata (C(conf_rbd_qos_iops_limit),
        C(conf_rbd_qos_read_iops_limit), C(conf_rbd_qos_write_iops_limit), C(conf_rbd_qos_bps_limit),
        C(conf_rbd_qos_read_bps_limit), C(conf_rbd_qos_write_bps_limit)), which every librbd client (qemu,
        rbd-nbd) obeys; changing them on an existing volume is a step on the backend."
      - "V(file): enforced by qemu-storage-daemon's throttle group on the userspace attach path
        (M(blockstore.storage.storage_attachment) with the userspace method); a kernel (loop device) attach of a
        volume with QoS is refused. Changing it on an existing volume changes its record, and applies at its next
        attach."
      - "V(cinder): handed to the Cinder driver as the volume type's QoS specs (consumer C(front-end), as Cinder
        does); the QoS of an existing volume does not change (refused)."
      - V({}) removes the limits of an existing volume (where its driver can change them).
    type: dict
    suboptions:
      total_iops_sec: {description: Read and write operations per second together., type: int}
      read_iops_sec: {description: Read operations per second., type: int}
      write_iops_sec: {description: Write operations per second., type: int}
      total_bytes_sec: {description: Bytes read and written per second together., type: int}
      read_bytes_sec: {description: Bytes read per second., type: int}
      write_bytes_sec: {description: Bytes written per second., type: int}
  pool:
    description:
      - The pool to create the volume in, kept in its record (RV(volume.pool)).
      - V(rbd) accepts only its backend's C(rbd_pool) (the default); another pool is refused. The V(file) driver
        and the cinder adapter have no pools to choose from, so a pool is refused.
      - A volume does not move between pools; another pool for an existing volume is refused.
    type: str
  revert_to:
    description:
      - Name or id of one of the volume's snapshots. The volume is reverted to it in place, dropping what was
        written since. The snapshot stays, and so do later snapshots. The volume keeps its size (zeros past the
        snapshot's size when it has grown since); with a larger O(size), it also grows.
      - Done, so a re-run changes nothing, when the volume was last reverted to this snapshot (RV(volume.reverted_to))
        and has had no read-write connection since. A new read-write connection
        (M(blockstore.storage.storage_attachment)) clears RV(volume.reverted_to); writes that do not go through
        this collection's connections are not seen.
      - Refused while the volume is connected read-write, unless O(force=true); a revert forced under such a
        connection leaves RV(volume.reverted_to) null, so every run reverts again, also the first one after
        the connection is gone. A qcow2 volume attached on a host is refused even with O(force).
      - "The file driver reverts raw volumes by copying the snapshot over the image in place (a reflink where
        the filesystem can) and qcow2 volumes by putting a new empty overlay on the snapshot; rbd rolls the
        image back; the cinder adapter calls the Cinder driver's C(revert_to_snapshot) (a driver without one is
        refused: make a new volume from the snapshot with O(source) instead)."
      - "The record is in status C(reverting) while the revert runs; an interrupted or failed revert leaves it
        so (its data may be partly reverted, the snapshot is intact) and the next run reverts again, with or
        without O(revert_to)."
    type: str
  force:
    description:
      - With O(revert_to), revert although the volume is connected read-write (its users see the data change
        under them).
      - With O(state=absent), detach and disconnect the volume from every host first. Without it, deleting a
        volume that has connections fails and changes nothing.
      - A device on the host the task runs on is detached (a mounted one is refused); a device on another host
        loses its export and goes stale.
    type: bool
    default: false
  cascade:
    description:
      - With O(state=absent), delete the volume's snapshots with it (with O(keep_storage=true), forget them).
        Without it, deleting or forgetting a volume that has snapshots fails and changes nothing.
    type: bool
    default: false
  keep_storage:
    description:
      - "With O(state=absent), forget the volume instead of deleting it (unmanage): its record goes and its storage
        stays on the backend as it is, for another tool (or a store) to take over. Adopting it again with
        O(source.existing) brings it back."
      - Refused while the volume has connections (detach it first; O(force) does not apply) and, unless
        O(cascade=true), while it has snapshots; with O(cascade=true), the snapshots' records go too and their
        storage stays. Only an available volume and snapshots are forgotten.
    type: bool
    default: false
notes:
  - "File driver, V(raw): snapshots and clones are full copies, by reflink where the filesystem can (XFS
    made with reflink=1, btrfs), else sparse copies."
  - "File driver, V(qcow2): snapshots and clones are backing-file overlays made in constant time."
  - Extending an attached volume grows its device on the host the task runs on (loop devices, qemu-storage-daemon
    exports); devices on other hosts grow at their next M(blockstore.storage.storage_attachment) run.
seealso:
  - module: blockstore.storage.storage_snapshot
  - module: blockstore.storage.storage_volume_info
'''

EXAMPLES = r'''
- name: A 20 GiB volume on a qcow2 file backend (made with 20 GiB, or extended to 20 GiB; volumes only grow)
  blockstore.storage.storage_volume:
    name: data1
    size: 20GiB
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Snapshot it
  blockstore.storage.storage_snapshot:
    volume: data1
    name: before-upgrade
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: A volume from the snapshot
  blockstore.storage.storage_volume:
    name: data1-copy
    source: {snapshot: before-upgrade}
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: A clone of a volume
  blockstore.storage.storage_volume:
    name: data1-clone
    source: {volume: data1}
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Find a volume by its old name
  blockstore.storage.storage_volume_info:
    name: data0
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  register: old

- name: Rename it, by id (nothing to do once it is renamed)
  blockstore.storage.storage_volume:
    id: "{{ old.volumes[0].id }}"
    name: data0-old
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  when: old.volumes | length > 0

- name: Revert the volume to its snapshot (nothing to do again until it is connected read-write)
  blockstore.storage.storage_volume:
    name: data1
    revert_to: before-upgrade
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: An image another tool left in the backend's directory (here made with qemu-img)
  ansible.builtin.command:
    cmd: qemu-img create -f qcow2 /var/lib/blockstore/lab/volume-5d0f3c1e-2a4b-4c6d-8e9f-0a1b2c3d4e5f 1G
    creates: /var/lib/blockstore/lab/volume-5d0f3c1e-2a4b-4c6d-8e9f-0a1b2c3d4e5f

- name: Adopt it, data kept (nothing to do once adopted; another name would need source.rename true)
  blockstore.storage.storage_volume:
    name: legacy
    source: {existing: volume-5d0f3c1e-2a4b-4c6d-8e9f-0a1b2c3d4e5f}
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Forget a volume, keeping its storage for another tool
  blockstore.storage.storage_volume:
    name: handed-over
    state: absent
    keep_storage: true
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: A volume of a type defined on the backend, with its own limits (on file, qemu-storage-daemon enforces them)
  blockstore.storage.storage_volume:
    name: db1
    size: 10
    volume_type: gold
    qos: {write_iops_sec: 200, read_iops_sec: 1000}
    backend:
      name: lab-gold
      driver: file
      path: /var/lib/blockstore/lab-gold
      volume_types:
        gold: {qos: {total_iops_sec: 500}}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: A file volume limited to 50 MB/s of reads and writes, enforced when attached through qemu-storage-daemon
  blockstore.storage.storage_volume:
    name: scratch2
    size: 2
    qos: {total_bytes_sec: 52428800}
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Delete a volume and its snapshots (nothing to do once it is gone)
  blockstore.storage.storage_volume:
    name: scratch
    state: absent
    cascade: true
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, format: qcow2}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
'''

RETURN = r'''
volume:
  description: The volume after the task; after a delete (or a forget), the deleted volume with status C(deleted).
  returned: success, except when deleting a volume that did not exist
  type: dict
  contains:
    id: {description: The volume's id., type: str, returned: always}
    name: {description: The volume's name., type: str, returned: always}
    size: {description: Size in GiB., type: int, returned: always}
    status: {description: "creating, available, extending, in-use, deleting, error, error_deleting, reverting or
               deleted.", type: str, returned: always}
    backend: {description: Backend name., type: str, returned: always}
    description: {description: Free text., type: str, returned: always}
    metadata: {description: Key/value pairs., type: dict, returned: always}
    multiattach: {description: Whether several hosts may attach the volume at once., type: bool, returned: always}
    source_volume_id: {description: Volume it was cloned from., type: str, returned: always}
    source_snapshot_id: {description: Snapshot it was made from., type: str, returned: always}
    reverted_to:
      description: Id of the snapshot the volume was last reverted to; null once connected read-write since.
      type: str
      returned: always
    volume_type:
      description:
        - What the volume was created with, in the shape of cinderlib's volume type, C(name) (null without
          O(volume_type)), C(extra_specs) and C(qos_specs); null when the task asked for none of them.
      type: dict
      returned: always
      sample: {name: gold, extra_specs: {}, qos_specs: {total_iops_sec: 500}}
    pool: {description: "The pool the volume is in (V(rbd): its backend's pool); null for drivers without pools.",
           type: str, returned: always}
    snapshot_ids: {description: Ids of its snapshots., type: list, elements: str, returned: always}
    created_at: {description: ISO 8601 time of creation., type: str, returned: always}
    updated_at: {description: ISO 8601 time of the last change., type: str, returned: always}
actions:
  description: What the task did, or in check mode would do, in order.
  returned: always
  type: list
  elements: str
  sample: ["create volume 'data1' of 10 GiB"]
'''

from ansible_collections.blockstore.storage.plugins.module_utils.plan import STATES
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module
from ansible_collections.blockstore.storage.plugins.module_utils.volume_types import QOS_KEYS
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

ARGUMENT_SPEC = {
    "name": {"type": "str"},
    "id": {"type": "str"},
    "state": {"type": "str", "choices": list(STATES), "default": "present"},
    "size": {"type": "raw"},
    "source": {"type": "dict", "options": {"snapshot": {"type": "str"}, "volume": {"type": "str"},
                                           "existing": {"type": "str"}, "rename": {"type": "bool"}},
               "mutually_exclusive": [["snapshot", "volume", "existing"]]},
    "description": {"type": "str"},
    "metadata": {"type": "dict"},
    "cascade": {"type": "bool", "default": False},
    "keep_storage": {"type": "bool", "default": False},
    "multiattach": {"type": "bool"},
    "force": {"type": "bool", "default": False},
    "revert_to": {"type": "str"},
    "volume_type": {"type": "str"},
    "extra_specs": {"type": "dict"},
    "qos": {"type": "dict", "options": {key: {"type": "int"} for key in QOS_KEYS}},
    "pool": {"type": "str"},
}
HANDLER = VolumeResource


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
