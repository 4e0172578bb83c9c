#!/bin/sh
# azd hook (azure.yaml). The vault keeps its name for 90 days after it is deleted (soft delete
# with purge protection: it cannot be purged), so its name carries AZURE_DEPLOYMENT_SUFFIX:
#   preprovision: keep the environment's suffix, or make one (first provision); and make a new
#     one when a soft-deleted vault of this environment's group carries it (the group was deleted
#     some other way than `azd down`: the portal, `az group delete`), since the provision would
#     fail on that name;
#   postdown (--new): make a new one, so the next `azd up` does not collide with the deleted vault.
# To reuse a recovered vault instead, set its suffix back: see docs/deploy.md, "Teardown".
set -eu
# shellcheck source=infra/scripts/azd-helpers.sh
. "$(dirname "$0")/azd-helpers.sh"

api_version=2023-07-01

new_suffix() {
  suffix=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
  azd env set AZURE_DEPLOYMENT_SUFFIX "$suffix"
  echo "AZURE_DEPLOYMENT_SUFFIX=$suffix"
}

if [ "${1:-}" = "--new" ]; then
  new_suffix
  exit 0
fi
current=$(value AZURE_DEPLOYMENT_SUFFIX)
case "$current" in
  [0-9a-z] | [0-9a-z][0-9a-z] | [0-9a-z][0-9a-z][0-9a-z] | [0-9a-z][0-9a-z][0-9a-z][0-9a-z] | \
  [0-9a-z][0-9a-z][0-9a-z][0-9a-z][0-9a-z] | [0-9a-z][0-9a-z][0-9a-z][0-9a-z][0-9a-z][0-9a-z]) ;;
  *)
    new_suffix
    exit 0
    ;;
esac

# The subscription's soft-deleted vaults, every page, asked of Azure Resource Manager (the
# management plane: Microsoft.KeyVault/deletedVaults/read). Any failure to ask stops the
# provision: keeping a suffix a deleted vault holds fails later, with a less clear error.
need_az "ask whether a deleted vault holds suffix $current: install it and run az login"
azure_target
deleted=$(arm_list "https://management.azure.com/subscriptions/$subscription/providers/Microsoft.KeyVault/deletedVaults?api-version=$api_version" "value[].properties.vaultId")
# This deployment's vault name: kl-kv-, 11 characters of the template's token, the suffix
# (infra/resources.bicep); ARM spells group names in any case.
held=$(printf '%s\n' "$deleted" |
  grep -iE "/resourceGroups/$group/providers/Microsoft\.KeyVault/vaults/kl-kv-[0-9a-z]{11}$current\$" || true)
if [ -n "$held" ]; then
  echo "a soft-deleted vault holds this deployment's vault name (${held##*/}): a new suffix, so a new vault"
  new_suffix
else
  echo "AZURE_DEPLOYMENT_SUFFIX=$current"
fi
