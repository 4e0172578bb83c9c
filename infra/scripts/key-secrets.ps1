# azd preprovision hook on Windows (azure.yaml): key-secrets.sh in PowerShell. Asks Azure
# Resource Manager (management plane: no secret value is read) whether the vault already holds
# each key secret, and sets THIRD_PARTY_API_KEY_EXISTS and THIRD_PARTY_API_MASTER_KEY_EXISTS.
# Any failure to ask stops the provision: "absent" is never a guess.
$ErrorActionPreference = 'Stop'
$apiVersion = '2023-07-01'

. (Join-Path $PSScriptRoot 'azd-helpers.ps1')

function Set-Answer([string] $key, [string] $master) {
  azd env set THIRD_PARTY_API_KEY_EXISTS $key
  azd env set THIRD_PARTY_API_MASTER_KEY_EXISTS $master
  Write-Output "THIRD_PARTY_API_KEY_EXISTS=$key THIRD_PARTY_API_MASTER_KEY_EXISTS=$master"
}

$vault = Get-AzdValue AZURE_KEY_VAULT_NAME
$suffix = Get-AzdValue AZURE_DEPLOYMENT_SUFFIX
if (-not $vault -or -not $suffix) {
  Write-Output 'no vault provisioned yet: both key secrets will be created'
  Set-Answer false false; exit 0
}
if (-not $vault.EndsWith($suffix)) {
  Write-Output 'AZURE_DEPLOYMENT_SUFFIX was renewed: a new vault, both key secrets will be created'
  Set-Answer false false; exit 0
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
  throw "the Azure CLI (az) is needed to ask whether $vault holds the key secrets: install it and run az login"
}
$subscription = Get-AzdValue AZURE_SUBSCRIPTION_ID
if (-not $subscription) { throw 'AZURE_SUBSCRIPTION_ID is not set' }
$group = Get-AzdValue AZURE_RESOURCE_GROUP
if (-not $group) { $group = 'rg-' + (Get-AzdValue AZURE_ENV_NAME) }

if ((Invoke-Az group exists --name $group --subscription $subscription --output tsv) -ne 'true') {
  Write-Output "resource group $group does not exist: both key secrets will be created"
  Set-Answer false false; exit 0
}
$vaultId = Invoke-Az resource list --resource-group $group --subscription $subscription `
  --resource-type Microsoft.KeyVault/vaults --query "[?name=='$vault'].id | [0]" --output tsv
if (-not $vaultId) {
  Write-Output "vault $vault does not exist: both key secrets will be created"
  Set-Answer false false; exit 0
}

# The vault's secrets by name, every page (names and attributes only).
$present = @()
$url = "https://management.azure.com$vaultId/secrets?api-version=$apiVersion"
while ($url) {
  $page = (Invoke-Az rest --method get --url $url --output json) -join "`n" | ConvertFrom-Json
  $present += @($page.value | ForEach-Object { $_.name })
  $url = $page.nextLink
}
$key = if ($present -contains 'third-party-api-key') { 'true' } else { 'false' }
$master = if ($present -contains 'third-party-api-master-key') { 'true' } else { 'false' }
Write-Output "vault ${vault}: third-party-api-key=$key third-party-api-master-key=$master"
Set-Answer $key $master
