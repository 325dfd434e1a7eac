#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_backend_info
short_description: Capacity and capabilities of a block storage backend
version_added: 0.1.0
description:
  - Asks the backend's driver for its capacity (total, free and provisioned GiB), volume count and pools,
    and returns the driver's capabilities. With a backend C(host), this runs on that host (where the backend is).
  - With O(check_drift), also compares the state store with what is on the backend and on the host the
    task runs on (RV(drift)). This is the reconcile helper to run after a crash, a kill or a change made by hand.
author: blockstore.storage developers (@blockstore)
options:
  check_drift:
    description:
      - Which views of drift to check, and return what does not match in RV(drift). Each view runs where what it
        compares is, and says only what it can know there.
      - V(backend) compares every record of the backend with the backend's volumes, snapshots and exports (tgt
        targets' accounts). It runs where the backend is - the backend's C(host) when it names one, else where
        the task runs.
      - V(host) compares the connections recorded for the host the task runs on with that host's loop devices and
        qemu-storage-daemon processes. It runs on the task's host and never judges the backend; it returns no
        RV(backend.stats).
      - V(true) or V(both) runs both views, each where it belongs, in one result; V(false) neither.
      - A backend view that cannot see the backend (a file backend whose C(path) is not on the host it runs on,
        when the backend names no C(host)) fails rather than call every recorded volume gone.
      - Reads every record of the backend and lists the whole backend (for rbd, every image's snapshots), so
        it costs more than the stats alone.
      - Objects the driver keeps hidden on purpose (qcow2 snapshots marked C(.deleted) and C(clone-base-*)
        images that volumes still use; rbd images renamed C(.deleted), and C(clone-base-*) snapshots, or
        C(volume-<clone>.clone_snap) ones Cinder's RBD driver made for volumes imported from cinderlib, that clones
        still use) are not reported; once nothing uses them they are reported as RV(drift.leftovers).
      - Records left in a transient status by a task that is still running are reported too, so check when no
        task runs on the backend.
      - Reports only; nothing is changed. RV(drift.problems) says how to fix each finding, safely from where
        the view that found it ran.
    type: raw
    default: false
extends_documentation_fragment:
  - blockstore.storage.backend
  - blockstore.storage.persistence
  - blockstore.storage.attributes.INFO
seealso:
  - module: blockstore.storage.storage_volume_info
'''

EXAMPLES = r'''
- name: How full is the lab backend
  blockstore.storage.storage_backend_info:
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  register: lab

- name: Show free space
  ansible.builtin.debug:
    msg: "{{ lab.backend.stats.free_capacity_gb }} GiB free"

- name: Do the state store and the backend agree?
  blockstore.storage.storage_backend_info:
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
    check_drift: true
  register: lab_drift
  failed_when: not lab_drift.drift.in_sync

- name: Or just list what to fix
  ansible.builtin.debug:
    var: lab_drift.drift.problems

- name: On a consumer host, only its own devices against its connections
  blockstore.storage.storage_backend_info:
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab, host: storage1}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
    check_drift: host
  register: my_devices
'''

RETURN = r'''
backend:
  description: The backend's name, driver, stats and capabilities.
  returned: always
  type: dict
  contains:
    name: {description: Backend name., type: str, returned: always}
    driver: {description: Driver name., type: str, returned: always}
    stats:
      description: Capacity as the driver measures it.
      type: dict
      returned: unless O(check_drift=host)
      contains:
        total_capacity_gb: {description: Total capacity in GiB., type: float, returned: always}
        free_capacity_gb: {description: Free capacity in GiB., type: float, returned: always}
        provisioned_capacity_gb: {description: Sum of the volumes' sizes in GiB., type: float, returned: always}
        volume_count: {description: Volumes found on the backend., type: int, returned: always}
        pools: {description: Per-pool capacity., type: list, elements: dict, returned: always}
    capabilities: {description: What the driver can do and how., type: dict, returned: always}
drift:
  description:
    - How the state store and the backend differ; every list is empty when they agree.
    - Records are shown as C(kind), C(id), C(name) (a connection's host) and C(status).
  returned: when O(check_drift) is not false
  type: dict
  contains:
    in_sync: {description: True when every list below is empty (of the views that ran)., type: bool, returned: always}
    views:
      description: >-
        Which views ran, and on which host (its name as it calls itself): C(backend), C(host). A view that did not
        run is absent, and its lists are empty.
      type: dict
      returned: always
      sample: {backend: stor1, host: app1}
    owner:
      description: >-
        The other state store that owns the backend (C(store), C(backend): its name there), from the owner
        marker written at the backend's first use; null when it is this store's (or the driver keeps no marker).
        Then the unknown objects are that store's: RV(drift.problems) says so and gives no advice to remove them.
      type: dict
      returned: always
    checked:
      description: >-
        What could be compared: C(volumes), C(snapshots) (false when the driver cannot list its snapshots, as
        the cinder adapter), C(exports) (false when the driver keeps no exports of its own: file with target
        local, rbd, cinder), C(devices) (this host's loop devices and daemons).
      type: dict
      returned: always
    unknown_objects:
      description: Volumes and snapshots on the backend that no record knows (C(kind), C(id)).
      type: list
      elements: dict
      returned: always
    missing_objects:
      description: Records in a status that needs their object (available, in-use, extending) whose object is gone.
      type: list
      elements: dict
      returned: always
    unrecorded_exports:
      description: >-
        Exports on the backend that no connection record knows (C(export), C(volume_id), C(volume_name),
        C(connection_id)): a tgt target's account for a connection whose record is gone. Backend view.
      type: list
      elements: dict
      returned: always
    missing_exports:
      description: >-
        Connections recorded attached or connected whose export is gone from the backend (as records, with
        C(volume_id) and C(volume_name)). Backend view.
      type: list
      elements: dict
      returned: always
    transient_records:
      description: >-
        Records left in C(creating), C(extending), C(deleting), C(connecting), C(attaching) or C(detaching) by an
        interrupted task. Running the same task again finishes it.
      type: list
      elements: dict
      returned: always
    failed_records:
      description: Records in C(error) or C(error_deleting).
      type: list
      elements: dict
      returned: always
    dangling_records:
      description: Snapshots and connections whose volume has no record (with C(volume_id)).
      type: list
      elements: dict
      returned: always
    duplicate_names:
      description: Names several volumes or several snapshots of the backend carry (C(kind), C(name), C(ids)).
      type: list
      elements: dict
      returned: always
    leftovers:
      description: >-
        Internal objects nothing needs any more, as an interrupted task leaves them: temp files, qcow2 images
        hidden or C(clone-base-*) with no dependent, rbd C(.deleted) images and C(clone-base-*) (or Cinder's
        C(volume-<clone>.clone_snap)) snapshots without clones. Running the interrupted delete again collects them.
      type: list
      elements: str
      returned: always
    unknown_devices:
      description: >-
        Loop devices and qemu-storage-daemon processes on this host that serve a volume of the backend but that
        no connection of this host records (C(device), C(backing_file), C(volume_id), C(volume_name)); a daemon's
        C(device) names its pid and its dead-export watchdog's, which the clean-up stops with it. Host view.
      type: list
      elements: dict
      returned: always
    lost_devices:
      description: >-
        Connections of this host whose recorded device is gone (C(connection_id), C(volume_id), C(volume_name),
        C(device)). Host view.
      type: list
      elements: dict
      returned: always
    problems:
      description: One line per finding, saying what to do about it.
      type: list
      elements: str
      returned: always
      sample: ["volume 'data1' (0b6e...) was left creating by an interrupted task; run that task again"]
'''

from ansible_collections.blockstore.storage.plugins.module_utils.queries import BackendInfo
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module

ARGUMENT_SPEC: dict = {
    # true, false, or a view's name (drift.VIEW_CHOICES), checked by the core with a message naming them all.
    "check_drift": {"type": "raw", "default": False},
}
HANDLER = BackendInfo


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
