#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_host_info
short_description: This host's connector properties, to connect volumes to it
version_added: 0.1.0
description:
  - Returns the connector properties of the host the task runs on, as os-brick gathers them (host name, IP,
    iSCSI initiator name, NVMe NQN, multipath, platform, OS type...).
  - Give the result to O(blockstore.storage.storage_attachment#module:connector) to export a volume to this host
    from a task that runs elsewhere.
  - Without os-brick, a minimal set (host, ip, platform, os_type, initiator); C(gathered_by) says which.
    Without an iSCSI initiator name (no open-iscsi), one is derived from the host name for the userspace path.
author: blockstore.storage developers (@blockstore)
extends_documentation_fragment:
  - blockstore.storage.persistence
  - blockstore.storage.attributes.INFO
options:
  backend:
    description: Accepted and ignored, so that C(module_defaults) for the group can set it.
    type: raw
  backends_file:
    description: Accepted and ignored, so that C(module_defaults) for the group can set it.
    type: path
'''

EXAMPLES = r'''
- name: Connector properties of this host
  blockstore.storage.storage_host_info:
  register: host_info

- name: A volume on the storage host's iSCSI backend
  blockstore.storage.storage_volume:
    name: shared1
    size: 1
    backend: {name: san, driver: file, path: /srv/volumes, target: iscsi}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  delegate_to: storage1

- name: Export it to this host from the storage host
  blockstore.storage.storage_attachment:
    volume: shared1
    state: connected
    connector: "{{ host_info.connector }}"
    backend: {name: san, driver: file, path: /srv/volumes, target: iscsi}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  delegate_to: storage1
'''

RETURN = r'''
connector:
  description: The connector properties.
  returned: always
  type: dict
  sample: {host: db2, ip: 192.0.2.20, initiator: "iqn.1993-08.org.debian:01:9de855ecb8a", multipath: false,
           platform: x86_64, os_type: linux, nqn: "nqn.2014-08.org.nvmexpress:uuid:...", gathered_by: os-brick}
'''

from ansible_collections.blockstore.storage.plugins.module_utils.queries import HostInfo
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module

ARGUMENT_SPEC = {"backend": {"type": "raw"}}
HANDLER = HostInfo


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
