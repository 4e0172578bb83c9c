# shellcheck shell=sh
# Helpers the POSIX azd hooks share (sourced by deployment-suffix.sh, key-secrets.sh and
# first-rotation.sh; azd-helpers.ps1 is the Windows twin).

# The value of azd environment variable $1, or '' when it is not set.
value() { azd env get-value "$1" 2>/dev/null || true; }

# Stops the hook when the Azure CLI is missing, saying what it is needed for ($1).
need_az() {
  command -v az >/dev/null 2>&1 || {
    echo "the Azure CLI (az) is needed to $1" >&2
    exit 1
  }
}

# Sets $subscription and $group (default rg-<environment name>) from the azd environment.
azure_target() {
  subscription=$(value AZURE_SUBSCRIPTION_ID)
  : "${subscription:?AZURE_SUBSCRIPTION_ID is not set}"
  group=$(value AZURE_RESOURCE_GROUP)
  group=${group:-rg-$(value AZURE_ENV_NAME)}
}

# Every page of the Azure Resource Manager list at $1: the JMESPath $2 of each page, one value
# per line. Each answer is assigned before it is used: with `set -e` a failing `az` stops the
# hook, and the caller's `x=$(arm_list ...)` with it.
arm_list() {
  url=$1
  while [ -n "$url" ]; do
    page=$(az rest --method get --url "$url" --query "$2" --output tsv) || return 1
    next=$(az rest --method get --url "$url" --query "nextLink" --output tsv) || return 1
    printf '%s\n' "$page"
    url=$next
  done
}
