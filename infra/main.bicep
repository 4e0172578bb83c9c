// The whole system on Azure Container Apps, deployed by `azd up`: see README, "Deploy to Azure".
targetScope = 'subscription'

@minLength(1)
@maxLength(48)
@description('azd environment name; names the resource group and prefixes resources.')
param environmentName string

@minLength(1)
@description('Azure region for every resource.')
param location string

@secure()
// checkov:skip=CKV_AZURE_131: not a hard-coded value: newGuid() runs at deploy time and Bicep allows it only in a parameter default; the key is written to Key Vault and never output
@description('The third-party API key. Generated at deploy time; never echoed, never an output.')
param thirdPartyApiKey string = replace('${newGuid()}${newGuid()}', '-', '')

@description('Images, set by azd deploy; a public placeholder until then.')
param mainAppImage string = ''
param queueWorkerImage string = ''
param thirdPartyApiImage string = ''

@maxLength(6)
@description('Suffix of the names soft delete holds after `azd down` (the vault): AZURE_DEPLOYMENT_SUFFIX, made by the preprovision hook and renewed by the postdown hook. Empty: one is derived from the deployment time.')
param deploymentSuffix string = ''

@description('Comma-separated public IPv4 addresses of developers that Key Vault and Storage accept through their firewalls (DEVELOPER_IP_ADDRESSES; infra/scripts/grant-developer-access.sh adds yours). Single addresses only: anything after a "/" is dropped. Empty (the default): no public network access at all.')
param developerIpAddresses string = ''

@description('Deployment time (ISO 8601); sets the secrets\' expiry.')
param deployedAt string = utcNow('u')

var tags = { 'azd-env-name': environmentName }
var suffix = empty(deploymentSuffix) ? take(uniqueString(subscription().id, environmentName, deployedAt), 6) : toLower(deploymentSuffix)
var developerIps = filter(split(developerIpAddresses, ','), ip => !empty(trim(ip)))

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  name: 'resources'
  scope: group
  params: {
    location: location
    environmentName: environmentName
    tags: tags
    thirdPartyApiKey: thirdPartyApiKey
    mainAppImage: mainAppImage
    queueWorkerImage: queueWorkerImage
    thirdPartyApiImage: thirdPartyApiImage
    deploymentSuffix: suffix
    secretExpiresOn: dateTimeToEpoch(dateTimeAdd(deployedAt, 'P1Y'))
    developerIps: developerIps
  }
}

// azd reads these; none is a secret.
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = group.name
output AZURE_DEPLOYMENT_SUFFIX string = suffix
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = resources.outputs.registryServer
output AZURE_KEY_VAULT_NAME string = resources.outputs.vaultName
output KEY_VAULT_URL string = resources.outputs.vaultUri
output AZURE_STORAGE_ACCOUNT string = resources.outputs.storageName
output STORAGE_QUEUE_URL string = resources.outputs.queueUrl
output CODE_LEDGER_URL string = resources.outputs.ledgerUrl
output MAIN_APP_URL string = resources.outputs.mainAppUrl
