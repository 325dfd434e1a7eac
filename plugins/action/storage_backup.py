# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin of storage_backup: the collection's one action plugin, plugins/action/storage.py.

Named after the module so that Ansible's strategy imports it once, in the main process, before it
forks a worker per task: every worker then finds the state bridge compiled already, instead of the
collection loader compiling it again for each task (docs/performance.md). `main` is the module's: tools
that find this file first and check a task's arguments by running its main (ansible-lint's args rule)
check them against the module's own argument spec.
"""

from __future__ import annotations

from ansible_collections.blockstore.storage.plugins.action.storage import ActionModule  # noqa: F401 pylint: disable=unused-import
from ansible_collections.blockstore.storage.plugins.modules.storage_backup import main  # noqa: F401 pylint: disable=unused-import
