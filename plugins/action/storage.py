# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one action plugin of blockstore.storage, routed to every module in meta/runtime.yml."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.blockstore.storage.plugins.plugin_utils.state_bridge import run_action


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        try:
            result.update(run_action(self, task_vars or {}))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
