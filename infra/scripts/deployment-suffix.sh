#!/bin/sh
# azd hook (azure.yaml). The vault keeps its name for 90 days after `azd down` (soft delete with
# purge protection: it cannot be purged), so its name carries AZURE_DEPLOYMENT_SUFFIX:
#   preprovision: keep the environment's suffix, or make one (first provision);
#   postdown (--new): make a new one, so the next `azd up` does not collide with the deleted vault.
# To reuse a recovered vault instead, set its suffix back: see README, "Teardown".
set -eu

new_suffix() {
  suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  azd env set AZURE_DEPLOYMENT_SUFFIX "$suffix"
  echo "AZURE_DEPLOYMENT_SUFFIX=$suffix"
}

if [ "${1:-}" = "--new" ]; then
  new_suffix
  exit 0
fi
current=$(azd env get-value AZURE_DEPLOYMENT_SUFFIX 2>/dev/null || true)
case "$current" in
  [0-9a-z] | [0-9a-z][0-9a-z] | [0-9a-z][0-9a-z][0-9a-z] | [0-9a-z][0-9a-z][0-9a-z][0-9a-z] | \
  [0-9a-z][0-9a-z][0-9a-z][0-9a-z][0-9a-z] | [0-9a-z][0-9a-z][0-9a-z][0-9a-z][0-9a-z][0-9a-z])
    echo "AZURE_DEPLOYMENT_SUFFIX=$current" ;;
  *) new_suffix ;;
esac
