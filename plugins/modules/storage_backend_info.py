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
    and returns the driver's capabilities.
author: blockstore.storage developers (@blockstore)
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
  register: lab

- name: Show free space
  ansible.builtin.debug:
    msg: "{{ lab.backend.stats.free_capacity_gb }} GiB free"
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
      returned: always
      contains:
        total_capacity_gb: {description: Total capacity in GiB., type: float, returned: always}
        free_capacity_gb: {description: Free capacity in GiB., type: float, returned: always}
        provisioned_capacity_gb: {description: Sum of the volumes' sizes in GiB., type: float, returned: always}
        volume_count: {description: Volumes found on the backend., type: int, returned: always}
        pools: {description: Per-pool capacity., type: list, elements: dict, returned: always}
    capabilities: {description: What the driver can do and how., type: dict, returned: always}
'''

from ansible_collections.blockstore.storage.plugins.module_utils.queries import BackendInfo
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module

ARGUMENT_SPEC: dict = {}
HANDLER = BackendInfo


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
