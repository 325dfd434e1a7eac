# shellcheck shell=bash
# Sourced by the targets' runme.sh: the shared "the backends hold exactly what they held before" check
# (setup_blockstore/tasks/holdings_before.yml and holdings_after.yml) around playbooks of their own.
#   holdings before VARS_JSON    list what the backends hold; VARS_JSON (a file) gives holdings_file,
#                                where the listing is kept, and holdings_dirs, holdings_pools,
#                                holdings_rbd_cli, holdings_stores (see holdings_before.yml)
#   holdings after VARS_JSON     fail unless they hold exactly that again
holdings() {
  ANSIBLE_ROLES_PATH="$(cd .. && pwd)${ANSIBLE_ROLES_PATH:+:$ANSIBLE_ROLES_PATH}" \
    ansible-playbook -i localhost, -c local ../setup_blockstore/files/holdings.yml -e "@$2" \
    -e "holdings_phase=$1" -e "ansible_python_interpreter=${python:-$(command -v python3)}"
}
