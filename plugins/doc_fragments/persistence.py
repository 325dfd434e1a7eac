# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r'''
options:
  persistence:
    description:
      - Where the state of volumes and snapshots is kept. The store lives on the Ansible controller; the
        collection's action plugin reads and writes it, so target hosts never need store credentials.
      - Tasks on the same volume or snapshot wait for each other; tasks on different ones run in parallel
        across forks, and no update is lost.
    type: dict
    suboptions:
      storage:
        description:
          - V(file) keeps a JSON file (written atomically, mode 0600).
          - V(db) keeps a SQLAlchemy database (SQLite or PostgreSQL); needs C(sqlalchemy) and, for
            PostgreSQL, C(psycopg) on the controller.
          - V(memory) keeps nothing after the task (for tests).
          - Any other value names a plugin store (docs/stores.md), for example V(redis) for the Redis store
            of the package C(blockstore-store-redis). That is the name of a Python entry point of the group
            C(blockstore.storage.stores) installed on the controller, or a collection FQCN
            C(namespace.collection.name) for the module C(plugins/plugin_utils/name.py) of that collection.
            Its own options are given beside O(persistence.storage) in O(persistence) and validated by the
            store's own option spec (its secret options are never shown).
          - Defaults to V(db) when only O(persistence.connection) or E(BLOCKSTORE_STATE_URL) is given,
            else V(file).
        type: str
      path:
        description:
          - The state file for O(persistence.storage=file).
          - Defaults to E(BLOCKSTORE_STATE_PATH), then C(~/.ansible/blockstore/state.json) on the controller.
        type: path
      connection:
        description:
          - SQLAlchemy URL for O(persistence.storage=db), for example C(sqlite:////var/lib/blockstore/state.db)
            or C(postgresql+psycopg://user:password@db.example.com/blockstore).
          - Defaults to E(BLOCKSTORE_STATE_URL). Never shown in results or logs.
        type: str
'''
