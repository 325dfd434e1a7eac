# shellcheck shell=bash
# Sourced by the targets' runme.sh: `setting NAME [DEFAULT]` prints NAME from the environment, else
# from integration_config.yml, else DEFAULT. ansible-test hands a script almost no environment, so
# scripts/test.sh writes the BLOCKSTORE_TEST_* settings (test services) and the BLOCKSTORE_SOAK_*,
# BLOCKSTORE_CRASH_* and BLOCKSTORE_SECRETS_* knobs of a run into that file.
setting() {
  local value=${!1:-} config=../../integration_config.yml
  if [ -z "$value" ] && [ -f "$config" ]; then
    value=$("${python:-python3}" -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])) or {}).get(sys.argv[2].lower()) or "")' \
      "$config" "$1")
  fi
  echo "${value:-${2:-}}"
}
