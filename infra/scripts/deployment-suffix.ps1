# azd hook on Windows (azure.yaml): deployment-suffix.sh in PowerShell. The vault's name carries
# AZURE_DEPLOYMENT_SUFFIX (soft delete holds a deleted vault's name for 90 days):
#   preprovision: keep the environment's suffix, or make one; and make a new one when a
#     soft-deleted vault of this environment's group carries it (the group was deleted some other
#     way than `azd down`);
#   postdown (-New): make a new one.
# Any failure to ask Azure Resource Manager stops the provision.
param([switch] $New)
$ErrorActionPreference = 'Stop'
$apiVersion = '2023-07-01'

. (Join-Path $PSScriptRoot 'azd-helpers.ps1')

function Set-NewSuffix {
  $suffix = '{0:x6}' -f (Get-Random -Maximum 16777216)
  azd env set AZURE_DEPLOYMENT_SUFFIX $suffix
  Write-Output "AZURE_DEPLOYMENT_SUFFIX=$suffix"
}

$current = Get-AzdValue AZURE_DEPLOYMENT_SUFFIX
if ($New -or $current -notmatch '^[0-9a-z]{1,6}$') { Set-NewSuffix; exit 0 }

if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
  throw "the Azure CLI (az) is needed to ask whether a deleted vault holds suffix ${current}: install it and run az login"
}
$subscription = Get-AzdValue AZURE_SUBSCRIPTION_ID
if (-not $subscription) { throw 'AZURE_SUBSCRIPTION_ID is not set' }
$group = Get-AzdValue AZURE_RESOURCE_GROUP
if (-not $group) { $group = 'rg-' + (Get-AzdValue AZURE_ENV_NAME) }

# The subscription's soft-deleted vaults, every page.
$deleted = @()
$url = "https://management.azure.com/subscriptions/$subscription/providers/Microsoft.KeyVault/deletedVaults?api-version=$apiVersion"
while ($url) {
  $page = (Invoke-Az rest --method get --url $url --output json) -join "`n" | ConvertFrom-Json
  $deleted += @($page.value | ForEach-Object { $_.properties.vaultId })
  $url = $page.nextLink
}
# This deployment's vault name: kl-kv-, 11 characters of the template's token, the suffix.
$pattern = "/resourceGroups/$([regex]::Escape($group))/providers/Microsoft\.KeyVault/vaults/kl-kv-[0-9a-z]{11}$current$"
$held = $deleted | Where-Object { $_ -match $pattern } | Select-Object -First 1
if ($held) {
  Write-Output "a soft-deleted vault holds this deployment's vault name ($($held.Split('/')[-1])): a new suffix, so a new vault"
  Set-NewSuffix
} else {
  Write-Output "AZURE_DEPLOYMENT_SUFFIX=$current"
}
