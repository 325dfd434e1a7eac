# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r'''
attributes:
  action:
    description: The collection's action plugin moves state between the controller-side store and the module.
    support: full
  async:
    description: Not supported; the state is written by the action plugin on the controller.
    support: none
  check_mode:
    description: Nothing changes; the result and diff show what would.
    support: full
  diff_mode:
    description: Returns the object before and after.
    support: full
  platform:
    description: Runs on Linux hosts with the storage tools of the backend's driver.
    support: full
    platforms: posix
'''

    INFO = r'''
attributes:
  action:
    description: The collection's action plugin reads the records from the controller-side store.
    support: full
  async:
    description: Not supported.
    support: none
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: Reads only; there is no diff.
    support: N/A
  platform:
    description: Runs on Linux hosts.
    support: full
    platforms: posix
'''
