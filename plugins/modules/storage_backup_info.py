#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: storage_backup_info
short_description: List backups of block storage volumes
version_added: 0.1.0
description:
  - Returns the backups of a backend as kept in the state store, optionally filtered, oldest first.
  - Backups of a deleted volume are listed too; O(volume) finds them by that volume's old name or id.
author: blockstore.storage developers (@blockstore)
extends_documentation_fragment:
  - blockstore.storage.backend
  - blockstore.storage.persistence
  - blockstore.storage.attributes.INFO
options:
  volume:
    description: Only backups of this volume (name or id).
    type: str
  name:
    description: Only the backup with this name.
    type: str
  id:
    description: Only the backup with this id.
    type: str
seealso:
  - module: blockstore.storage.storage_backup
'''

EXAMPLES = r'''
- name: A volume
  blockstore.storage.storage_volume:
    name: data1
    size: 1
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: A backup of it
  blockstore.storage.storage_backup:
    name: data1-full
    volume: data1
    target: /var/lib/blockstore/backups
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}

- name: Backups of one volume
  blockstore.storage.storage_backup_info:
    volume: data1
    backend: {name: lab, driver: file, path: /var/lib/blockstore/lab}
    persistence: {storage: file, path: /var/lib/blockstore/state.json}
  register: found

- name: Their names
  ansible.builtin.debug:
    msg: "{{ found.backups | map(attribute='name') | list }}"
'''

RETURN = r'''
backups:
  description:
    - The matching backups, oldest first.
    - Same fields as RV(blockstore.storage.storage_backup#module:backup).
  returned: always
  type: list
  elements: dict
'''

from ansible_collections.blockstore.storage.plugins.module_utils.backups import BackupInfo
from ansible_collections.blockstore.storage.plugins.module_utils.runner import run_module

ARGUMENT_SPEC = {
    "volume": {"type": "str"},
    "name": {"type": "str"},
    "id": {"type": "str"},
}
HANDLER = BackupInfo


def main() -> None:
    run_module(HANDLER, ARGUMENT_SPEC)


if __name__ == "__main__":
    main()
