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
@description('The third-party API key. Generated at deploy time; never echoed, never an output.')
param thirdPartyApiKey string = replace('${newGuid()}${newGuid()}', '-', '')

@description('Images, set by azd deploy; a public placeholder until then.')
param mainAppImage string = ''
param queueWorkerImage string = ''
param thirdPartyApiImage string = ''

var tags = { 'azd-env-name': environmentName }

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
  }
}

// azd reads these; none is a secret.
output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = group.name
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = resources.outputs.registryServer
output AZURE_KEY_VAULT_NAME string = resources.outputs.vaultName
output KEY_VAULT_URL string = resources.outputs.vaultUri
output AZURE_STORAGE_ACCOUNT string = resources.outputs.storageName
output STORAGE_QUEUE_URL string = resources.outputs.queueUrl
output CODE_LEDGER_URL string = resources.outputs.ledgerUrl
output MAIN_APP_URL string = resources.outputs.mainAppUrl
