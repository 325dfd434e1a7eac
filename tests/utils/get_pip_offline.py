# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for ansible-test's get-pip bootstrap script.

ansible-test downloads get-pip.py from its own file host, which these machines
cannot reach; PyPI they can. scripts/setup.sh puts this file where ansible-test
looks for its cached copy. It is run as __main__ with pip's arguments: bootstrap
the pip bundled with this Python, then install the requested pip from PyPI.
"""

import ensurepip
import os
import subprocess
import sys

SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"

ensurepip.bootstrap()
# get-pip.py understands these two flags; pip itself does not.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
# ansible-test runs this with a trimmed environment: keep trusting the system CAs
# (the bundled pip would otherwise only trust its own certifi copy).
if os.path.exists(SYSTEM_CA):
    args = ["--cert", SYSTEM_CA, *args]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "-q", *args]))
