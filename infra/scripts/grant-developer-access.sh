#!/usr/bin/env bash
# Grants the signed-in developer the apps' and the rotation job's data roles on a dev deployment
# (the operator roles of the role table, ops/src/roles.rs), so that
# `AZURE_TOKEN_CREDENTIALS=dev` runs the services locally against the real Azure resources
# (the walkthrough's local-development story, with no service principal secret).
#
# Key Vault and Storage accept no public traffic by default (private endpoints only). This script
# first adds your public IPv4 address to DEVELOPER_IP_ADDRESSES and re-provisions, which opens
# their firewalls to the listed single addresses and nothing else; then it grants the roles.
# Run after `azd up`: infra/scripts/grant-developer-access.sh [your public IPv4 address]
# (without the argument the address is asked of api.ipify.org). To close the firewalls again:
#   azd env set DEVELOPER_IP_ADDRESSES "" && azd provision
set -euo pipefail

eval "$(azd env get-values)"
for name in AZURE_SUBSCRIPTION_ID AZURE_RESOURCE_GROUP AZURE_KEY_VAULT_NAME AZURE_STORAGE_ACCOUNT \
  KEY_VAULT_URL STORAGE_QUEUE_URL CODE_LEDGER_URL QUEUE_MESSAGE_UPDATER_ROLE; do
  if [ -z "${!name:-}" ]; then
    echo "$name is not set in the azd environment: run azd up first (nothing was changed)" >&2
    exit 1
  fi
done
command -v az >/dev/null 2>&1 || {
  echo "the Azure CLI (az) is needed to grant the roles: install it and run az login (nothing was changed)" >&2
  exit 1
}
# Who you are, asked before anything changes: signed out, the script stops with the firewalls as
# they were. The scopes are in the azd environment's subscription (AZURE_SUBSCRIPTION_ID), not
# in whichever one az defaults to.
me=$(az ad signed-in-user show --query id -o tsv) || me=
if [ -z "$me" ]; then
  echo "az could not say who is signed in: run az login (nothing was changed)" >&2
  exit 1
fi
sub=$AZURE_SUBSCRIPTION_ID

if [ $# -gt 0 ]; then
  ip=$1
else
  ip=$(curl -fsS --max-time 10 https://api.ipify.org) || {
    echo "could not ask api.ipify.org for your public IPv4 address: pass it as the argument (nothing was changed)" >&2
    exit 2
  }
fi
if ! [[ "$ip" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] ||
  [ "${BASH_REMATCH[1]}" -gt 255 ] || [ "${BASH_REMATCH[2]}" -gt 255 ] ||
  [ "${BASH_REMATCH[3]}" -gt 255 ] || [ "${BASH_REMATCH[4]}" -gt 255 ]; then
  echo "not a single IPv4 address: '$ip' (ranges are never opened; nothing was changed)" >&2
  exit 2
fi
allowed=${DEVELOPER_IP_ADDRESSES:-}
case ",$allowed," in
  *",$ip,"*) echo "$ip is already in DEVELOPER_IP_ADDRESSES" ;;
  *)
    allowed=${allowed:+$allowed,}$ip
    echo "opening Key Vault and Storage to $ip (DEVELOPER_IP_ADDRESSES=$allowed): azd provision"
    azd env set DEVELOPER_IP_ADDRESSES "$allowed"
    azd provision
    ;;
esac

rg="/subscriptions/$sub/resourceGroups/$AZURE_RESOURCE_GROUP"
vault="$rg/providers/Microsoft.KeyVault/vaults/$AZURE_KEY_VAULT_NAME"
account="$rg/providers/Microsoft.Storage/storageAccounts/$AZURE_STORAGE_ACCOUNT"
queue="$account/queueServices/default/queues/code-requests"
poison="$account/queueServices/default/queues/code-requests-poison"
container="$account/blobServices/default/containers/codes"
keys="$account/blobServices/default/containers/third-party-api-keys"

grant() { # role, scope
  echo "granting '$1' on ${2#"$rg"/}"
  az role assignment create --assignee-object-id "$me" --assignee-principal-type User \
    --role "$1" --scope "$2" --only-show-errors >/dev/null
}

# As the apps and the rotation job, plus Message Processor on the poison queue: requeueing poison
# is an operator's job.
grant "Key Vault Secrets User" "$vault/secrets/third-party-api-key"
grant "Key Vault Secrets User" "$vault/secrets/third-party-api-master-key"
grant "Key Vault Secrets Officer" "$vault/secrets/third-party-api-key"
grant "Key Vault Secrets Officer" "$vault/secrets/third-party-api-master-key"
for q in "$queue" "$poison"; do
  grant "Storage Queue Data Message Sender" "$q"
  grant "Storage Queue Data Message Processor" "$q"
done
grant "$QUEUE_MESSAGE_UPDATER_ROLE" "$queue"
grant "Storage Blob Data Contributor" "$container"
grant "Storage Blob Data Contributor" "$keys"

cat <<TXT
Done. Role assignments and firewall rules can take a few minutes to apply. Then, for example:
  export AZURE_TOKEN_CREDENTIALS=dev KEY_VAULT_URL=$KEY_VAULT_URL
  export STORAGE_QUEUE_URL=$STORAGE_QUEUE_URL CODE_LEDGER_URL=$CODE_LEDGER_URL
  cargo run -p queue-worker
TXT
