#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_attachment
short_description: Connect a volume to a host and attach it there as a block device
version_added: 0.1.0
description:
  - Exports a volume to a host (a I(connection), as in cinderlib) and, with O(state=attached), makes it a local
    block device on the host the task runs on (an I(attachment)).
  - "File driver, C(target: local): raw files become loop devices; qcow2 images are opened by
    qemu-storage-daemon, exported as a file over FUSE, then made a loop device."
  - "File driver, C(target: iscsi): the volume is exported by the userspace target tgt with an initiator ACL
    and CHAP credentials generated for each connection. The host attaches it with os-brick where the kernel
    has iSCSI, else through qemu-storage-daemon (C(iscsi://) with CHAP) and FUSE."
  - The volume's status is C(in-use) while any connection exists and C(available) after the last one goes.
    A second host may connect only to a volume made with O(blockstore.storage.storage_volume#module:multiattach=true).
  - "With a backend C(host) (the inventory host that serves the backend, see O(backend)) and a task run on another
    host, one task does both halves: O(state=attached) makes the export on the backend's host (through its
    connection, with this host's connector), then the device here; O(state=detached) removes the device here, then
    the export there; O(state=connected) removes the device here and keeps (or makes) the export there. Each half is
    a transaction of its own. Check mode makes the whole plan here and runs nothing."
  - A failed attach leaves nothing behind; the error says which step failed.
  - A record in status C(attaching), C(connecting) or C(detaching) is written before the module runs, naming the
    host when the task's connector is known before (O(connector) given, or a split task). If the task is killed,
    that record stays (M(blockstore.storage.storage_backend_info) with C(check_drift) lists it) and the next task
    on the volume on that host (any host, for a record naming none) cleans up there what the killed one left (loop
    devices, daemons) before doing its own work; a new connection takes the killed task's id.
  - Daemons started for an attachment are recorded (pid, socket, mount point) and stopped on detach.
  - State is kept on the Ansible controller (see O(persistence)); the device is made on the target host.
author: blockstore.storage developers (@blockstore)
extends_documentation_fragment:
  - blockstore.storage.backend
  - blockstore.storage.persistence
  - blockstore.storage.attributes
options:
  volume:
    description: Name or id of the volume.
    type: str
    required: true
  state:
    description:
      - V(attached) a connection for the host the task runs on, and a local block device.
        Attaching again after the device vanished (a reboot, a killed daemon) makes it again;
        after the volume grew, the device is grown.
      - V(connected) a connection for the host O(connector) describes (default this host), without a
        device; returns the connection info a consumer (libvirt, qemu, another host) needs. A device this
        host made before is removed and the connection kept.
      - V(detached) no device and no connection for that host. Idempotent; cleans up after a device
        that vanished. Fails, changing nothing, while the device is mounted.
    type: str
    choices: [attached, connected, detached]
    default: attached
  connector:
    description:
      - The host to connect, as RV(blockstore.storage.storage_host_info#module:connector) returns it (at
        least C(host); C(initiator) for iSCSI). Defaults to the host the task runs on.
      - With O(state=attached) it must describe the host the task runs on.
    type: dict
  mode:
    description: Read-write or read-only access. Changing the mode of an existing connection needs a detach.
    type: str
    choices: [rw, ro]
    default: rw
  method:
    description:
      - How the host makes the device. V(auto) uses the kernel (os-brick) where it has the protocol, else the
        userspace path; V(kernel) only the kernel; V(userspace) only qemu-storage-daemon with FUSE and a loop
        device (works in containers and without iscsi_tcp or rbd kernel modules).
    type: str
    choices: [auto, kernel, userspace]
    default: auto
  multipath:
    description:
      - With the kernel method, attach over every portal the connection info lists (os-brick's C(use_multipath)).
        iSCSI gives a device-mapper multipath device (needs multipath-tools, C(multipathd) running), NVMe-oF the
        kernel's native NVMe multipath. The device keeps working while one path is down.
      - Without it, the kernel method logs in to the first portal only. Ignored by the loop and userspace methods.
      - Changing it for an attached volume takes a detach and an attach.
    type: bool
    default: false
  force:
    description:
      - With O(state=detached) and O(host), remove the connection of O(host), a host that is gone (down,
        unreachable, or never coming back), without reaching it. The export is removed wherever the backend's work
        runs (the backend's C(host), or the host the task runs on); nothing runs on O(host).
      - A device that host had is recorded C(stale) (its record stays, status C(stale), listed by
        M(blockstore.storage.storage_volume_info) with C(stale=true)); when the host is back, its next task on the
        volume (O(state=detached), or any other) removes that dead device and the qemu-storage-daemon behind it.
        A volume left with no other connection becomes C(available).
      - Only where removing the export cuts that host off (the file driver's iSCSI exports); an rbd connection, a
        C(target=local) image path or a cinder adapter connection is refused, changing nothing.
      - Running it again changes nothing while the record is stale.
    type: bool
    default: false
  host:
    description:
      - The host whose connection O(force) removes, as the volume's connections name it
        (RV(blockstore.storage.storage_volume_info#module:volumes[].connections[].host)). Only with O(force=true); a
        host with no connection to the volume is an error that lists the hosts it has.
    type: str
notes:
  - Needs on the host that attaches, as root, C(losetup); for qcow2, iSCSI or RBD through userspace,
    qemu-storage-daemon (Debian C(qemu-system-common) and C(qemu-block-extra)) and FUSE (C(fuse3)); for the
    kernel path and for the connector properties, the Python package C(os-brick) (its privileged calls run
    in-process when root, so no sudo is needed).
  - For an iSCSI export the backend host runs C(tgtd); see the backend's C(tgt_control_port), C(iscsi_ip_address)
    and C(iscsi_port).
  - CHAP passwords are sealed in the state store, sent to the module sealed, and shown as C(********).
seealso:
  - module: blockstore.storage.storage_host_info
  - module: blockstore.storage.storage_volume
'''

EXAMPLES = r'''
- name: A volume
  blockstore.storage.storage_volume:
    name: data1
    size: 1
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Attach it here
  blockstore.storage.storage_attachment:
    volume: data1
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  register: att

- name: Make a filesystem on it
  community.general.filesystem:
    dev: "{{ att.attachment.device.path }}"
    fstype: ext4

- name: Connector properties of the host that will use a volume (storage_host_info, run there)
  blockstore.storage.storage_host_info:
  delegate_to: db2
  register: db2_info

- name: A volume on a backend that exports over iSCSI (tgt on this host)
  blockstore.storage.storage_volume:
    name: shared1
    size: 1
    backend: {name: san, driver: file, path: /srv/volumes, target: iscsi, iscsi_ip_address: 203.0.113.10}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Export it over iSCSI to that host (with a backend host, a storage_attachment task run there does it all)
  blockstore.storage.storage_attachment:
    volume: shared1
    state: connected
    connector: "{{ db2_info.connector }}"
    backend: {name: san, driver: file, path: /srv/volumes, target: iscsi, iscsi_ip_address: 203.0.113.10}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Detach and disconnect a volume (nothing to do when it is not attached)
  blockstore.storage.storage_attachment:
    volume: data2
    state: detached
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
'''

RETURN = r'''
attachment:
  description:
    - The connection after the task; after a detach, the removed one with status C(detached).
    - Secret fields (C(auth_password) and others) of C(connection_info) are C(********).
  returned: success, except when detaching a volume that had no connection for the host
  type: dict
  contains:
    id: {description: The connection's id., type: str, returned: always}
    volume_id: {description: The volume's id., type: str, returned: always}
    volume_name: {description: The volume's name., type: str, returned: always}
    host: {description: The host it is connected to., type: str, returned: always}
    mode: {description: rw or ro., type: str, returned: always}
    status:
      description: "connected, attached, or detached; C(stale) after a forced detach of a device's host (O(force))."
      type: str
      returned: always
    connector: {description: The host's connector properties., type: dict, returned: always}
    connection_info:
      description: The driver's export, in os-brick's shape (C(driver_volume_type) and C(data)).
      type: dict
      returned: always
      sample: {driver_volume_type: iscsi, data: {target_portal: "127.0.0.1:3260", target_lun: 1,
               target_iqn: "iqn.2010-10.org.blockstore:volume-...", auth_method: CHAP,
               auth_username: bs0123..., auth_password: "********"}}
    device:
      description: The local block device, or null while only connected.
      type: dict
      returned: always
      contains:
        path: {description: "The device, for example C(/dev/loop3).", type: str}
        type: {description: C(block)., type: str}
        method: {description: "How it was made: loop, userspace or kernel.", type: str}
        protocol: {description: "The connection's protocol (C(iscsi), C(nvmeof), C(rbd), C(local)).", type: str}
        multipath: {description: "Whether the kernel method attached over every portal.", type: bool}
actions:
  description: What the task did, or in check mode would do, in order.
  returned: always
  type: list
  elements: str
  sample: ["connect volume 'data1' to host1", "attach volume 'data1' on host1", "volume 'data1': status in-use"]
'''

from ansible_collections.blockstore.storage.plugins.module_utils.attachments import MODES, STATES, AttachmentResource
from ansible_collections.blockstore.storage.plugins.module_utils.connectors import METHODS
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module

ARGUMENT_SPEC = {
    "volume": {"type": "str", "required": True},
    "state": {"type": "str", "choices": list(STATES), "default": "attached"},
    "connector": {"type": "dict"},
    "mode": {"type": "str", "choices": list(MODES), "default": "rw"},
    "method": {"type": "str", "choices": list(METHODS), "default": "auto"},
    "multipath": {"type": "bool", "default": False},
    "force": {"type": "bool", "default": False},
    "host": {"type": "str"},
}
HANDLER = AttachmentResource


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
