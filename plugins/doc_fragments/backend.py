# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r'''
options:
  backend:
    description:
      - The storage backend, as a dict with C(name) (the backend's id, which scopes volume and snapshot
        names), C(driver) and that driver's options.
      - Set it once for a play with C(module_defaults) and the group C(group/blockstore.storage.storage).
      - "Driver C(file): C(path) (required, absolute directory on the host the module runs on, created if
        missing), C(format) (V(raw) default, or V(qcow2)), C(reflink) (V(auto) default, V(always), V(never)),
        C(target) (V(local) default, or V(iscsi) through tgt for raw volumes), C(iscsi_ip_address) (V(127.0.0.1)),
        C(iscsi_port) (V(3260)), C(iscsi_target_prefix) (V(iqn.2010-10.org.blockstore:)), C(tgt_control_port) (V(0))."
      - "Driver C(rbd) (Ceph RBD through librbd; needs the Ceph Python bindings, packages python3-rados and
        python3-rbd, in the module's interpreter), with the option names of Cinder's RBD driver: C(rbd_pool)
        (V(rbd)), C(rbd_ceph_conf) (librados' default search), C(rbd_user) (librados' default, admin),
        C(rbd_keyring_conf) (the configuration's keyring), C(rbd_cluster_name) (V(ceph)), C(rbd_secret_uuid)
        (libvirt secret uuid passed to consumers), C(rbd_flatten_volume_from_snapshot) (V(false)),
        C(rbd_max_clone_depth) (V(5); V(0) makes every copy a full copy), C(rados_connect_timeout) (V(-1):
        librados' 300 s)."
      - An unknown driver, an unknown or mistyped option, or a missing required option fails before anything
        changes, naming the option and the allowed values.
      - Options that the driver declares secret are masked in results and logs.
      - With O(backends_file), the name of one of its sections (V(ceph)), or a dict with C(section) (or a
        C(name) and no C(driver)) whose other keys override that section's options.
    type: raw
    required: true
  backends_file:
    description:
      - A cinder.conf-style INI file describing backends; O(backend) may then name one of its sections.
      - C([DEFAULT]) lists the usable sections in C(enabled_backends). Each section sets C(driver) (a driver of
        this collection) or C(volume_driver) (a Cinder driver class path), then that driver's options.
      - Read on the controller by the collection's action plugin (or where the module runs, when it runs
        alone); needs the Python library C(oslo.config) there. Must be an absolute path.
      - Defaults to E(BLOCKSTORE_BACKENDS_FILE).
    type: path
'''
