#!/bin/sh
# azd preprovision hook (azure.yaml), after deployment-suffix.sh. Asks Azure Resource Manager (the
# management plane: no secret value is read, and the vault's firewall does not apply) whether the
# vault already holds each key secret, and sets THIRD_PARTY_API_KEY_EXISTS and
# THIRD_PARTY_API_MASTER_KEY_EXISTS ("true"/"false") for main.parameters.json. Bicep creates only
# an absent secret (with the placeholder `pending:first-rotation`); a present one keeps its
# versions, so a provision never replaces a key that `keyless rotate` wrote.
#
# The vault is the one this provision deploys to: AZURE_KEY_VAULT_NAME (the last provision's
# output) if it still carries AZURE_DEPLOYMENT_SUFFIX; a renewed suffix (after `azd down`) or no
# provision yet means a new vault, whose secrets are all absent. Any failure to ask (az missing,
# not signed in, no access) stops the provision: "absent" is never a guess.
set -eu
# shellcheck source=infra/scripts/azd-helpers.sh
. "$(dirname "$0")/azd-helpers.sh"

secret_names="third-party-api-key third-party-api-master-key"
api_version=2023-07-01

answer() { # key-exists master-key-exists
  azd env set THIRD_PARTY_API_KEY_EXISTS "$1"
  azd env set THIRD_PARTY_API_MASTER_KEY_EXISTS "$2"
  echo "THIRD_PARTY_API_KEY_EXISTS=$1 THIRD_PARTY_API_MASTER_KEY_EXISTS=$2"
}

vault=$(value AZURE_KEY_VAULT_NAME)
suffix=$(value AZURE_DEPLOYMENT_SUFFIX)
if [ -z "$vault" ] || [ -z "$suffix" ]; then
  echo "no vault provisioned yet: both key secrets will be created"
  answer false false
  exit 0
fi
case "$vault" in
  *"$suffix") ;;
  *)
    echo "AZURE_DEPLOYMENT_SUFFIX was renewed: a new vault, both key secrets will be created"
    answer false false
    exit 0
    ;;
esac

need_az "ask whether $vault holds the key secrets: install it and run az login"
azure_target

# Each answer is assigned before it is tested: with `set -e`, a failing `az` then stops the hook
# (inside a test or a pipeline its failure would pass unnoticed, as "absent").
group_exists=$(az group exists --name "$group" --subscription "$subscription" --output tsv)
if [ "$group_exists" != true ]; then
  echo "resource group $group does not exist: both key secrets will be created"
  answer false false
  exit 0
fi
vault_id=$(az resource list --resource-group "$group" --subscription "$subscription" \
  --resource-type Microsoft.KeyVault/vaults --query "[?name=='$vault'].id | [0]" --output tsv)
if [ -z "$vault_id" ]; then
  echo "vault $vault does not exist: both key secrets will be created"
  answer false false
  exit 0
fi

# The vault's secrets by name, every page (names and attributes only: no value leaves the vault).
present=$(arm_list "https://management.azure.com$vault_id/secrets?api-version=$api_version" "value[].name")
present=$(printf '%s' "$present" | tr '\n' ' ')

exists() {
  case " $present " in *" $1 "*) echo true ;; *) echo false ;; esac
}
set -- $secret_names
echo "vault $vault:$(for s in "$@"; do printf ' %s=%s' "$s" "$(exists "$s")"; done)"
answer "$(exists "$1")" "$(exists "$2")"
