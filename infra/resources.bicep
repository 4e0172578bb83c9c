// Everything inside the resource group: monitoring, registry, identities, Key Vault, Storage,
// the private network (endpoints and DNS zones for Key Vault, Queue and Blob), roles, the
// Container Apps environment in that network and the three apps with the variables they read.

param location string
param environmentName string
param tags object

@secure()
param thirdPartyApiKey string

param mainAppImage string
param queueWorkerImage string
param thirdPartyApiImage string

@description('Suffix of the names soft delete holds after a teardown (the vault).')
param deploymentSuffix string

@description('Expiry of the Key Vault secrets written here (seconds since the epoch).')
param secretExpiresOn int

@description('Developers\' public IPv4 addresses Key Vault and Storage accept; empty: none.')
param developerIps array

var token = uniqueString(subscription().id, resourceGroup().id, environmentName)
var prefix = 'kl-${take(environmentName, 16)}'
// Until azd deploys a service's image: Google's public hello-app sample, which listens on the
// PORT variable and answers 200 on every path, so ingress and both probes (which target the
// service's own port) find it healthy and the first provision never waits on a failing revision.
var placeholderImage = 'us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0'
var secretName = 'third-party-api-key'
var queueName = 'code-requests'
var containerName = 'codes'

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: { location: location, prefix: prefix, tags: tags }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  params: { location: location, name: 'klacr${token}', tags: tags }
}

module vault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    name: 'kl-kv-${take(token, 11)}${deploymentSuffix}'
    tags: tags
    secretName: secretName
    secretValue: thirdPartyApiKey
    secretExpiresOn: secretExpiresOn
    developerIps: developerIps
    publicNetworkAccess: empty(developerIps) ? 'Disabled' : 'Enabled'
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    name: 'klst${take(token, 18)}'
    tags: tags
    queueName: queueName
    containerName: containerName
    developerIps: developerIps
    publicNetworkAccess: empty(developerIps) ? 'Disabled' : 'Enabled'
  }
}

// Private endpoints for the vault, the queue and the blob service, and their DNS zones.
module network 'modules/network.bicep' = {
  name: 'network'
  params: {
    location: location
    prefix: prefix
    tags: tags
    vaultId: vault.outputs.id
    storageId: storage.outputs.id
  }
}

resource mainAppIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-main-app-id'
  location: location
  tags: tags
}

resource queueWorkerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-queue-worker-id'
  location: location
  tags: tags
}

resource thirdPartyApiIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-third-party-api-id'
  location: location
  tags: tags
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principals: {
      'main-app': mainAppIdentity.properties.principalId
      'queue-worker': queueWorkerIdentity.properties.principalId
      'third-party-api': thirdPartyApiIdentity.properties.principalId
    }
    vaultName: vault.outputs.name
    secretName: secretName
    storageName: storage.outputs.name
    queueName: queueName
    containerName: containerName
    registryName: registry.outputs.name
  }
}

module environment 'modules/apps-env.bicep' = {
  name: 'apps-env'
  params: {
    location: location
    prefix: prefix
    tags: tags
    workspaceName: monitoring.outputs.workspaceName
    insightsName: monitoring.outputs.insightsName
    subnetId: network.outputs.appsSubnetId
  }
}

var queueUrl = '${storage.outputs.queueEndpoint}${queueName}'
var ledgerUrl = '${storage.outputs.blobEndpoint}${containerName}'

module thirdPartyApi 'modules/container-app.bicep' = {
  name: 'third-party-api'
  dependsOn: [roles]
  params: {
    location: location
    name: 'third-party-api'
    tags: tags
    environmentId: environment.outputs.id
    identityId: thirdPartyApiIdentity.id
    registryServer: registry.outputs.loginServer
    image: empty(thirdPartyApiImage) ? placeholderImage : thirdPartyApiImage
    port: 7071
    ingress: 'internal'
    // The key comes from Key Vault by reference, read with the app's own identity.
    secrets: [
      {
        name: 'function-key'
        keyVaultUrl: '${vault.outputs.uri}secrets/${secretName}'
        identity: thirdPartyApiIdentity.id
      }
    ]
    env: [
      { name: 'PORT', value: '7071' }
      { name: 'THIRD_PARTY_API_KEYS_FILE', value: '/tmp/third-party-api/keys.json' }
      { name: 'THIRD_PARTY_API_FUNCTION_KEY', secretRef: 'function-key' }
      { name: 'AZURE_TOKEN_CREDENTIALS', value: 'ManagedIdentityCredential' }
      { name: 'AZURE_CLIENT_ID', value: thirdPartyApiIdentity.properties.clientId }
      { name: 'RUST_LOG', value: 'info' }
    ]
    scaleRules: [
      { name: 'http', http: { metadata: { concurrentRequests: '50' } } }
    ]
    minReplicas: 1
    maxReplicas: 5
  }
}

module mainApp 'modules/container-app.bicep' = {
  name: 'main-app'
  dependsOn: [roles]
  params: {
    location: location
    name: 'main-app'
    tags: tags
    environmentId: environment.outputs.id
    identityId: mainAppIdentity.id
    registryServer: registry.outputs.loginServer
    image: empty(mainAppImage) ? placeholderImage : mainAppImage
    port: 8080
    ingress: 'external'
    env: [
      { name: 'PORT', value: '8080' }
      { name: 'THIRD_PARTY_API_ENDPOINT', value: 'https://${thirdPartyApi.outputs.fqdn}/api/RandomNumber' }
      { name: 'KEY_VAULT_URL', value: vault.outputs.uri }
      { name: 'THIRD_PARTY_API_SECRET_NAME', value: secretName }
      { name: 'STORAGE_QUEUE_URL', value: queueUrl }
      { name: 'CODE_LEDGER_URL', value: ledgerUrl }
      { name: 'CODE_TTL_SECONDS', value: '600' }
      { name: 'QUEUE_MESSAGE_ENCODING', value: 'base64' }
      { name: 'AZURE_TOKEN_CREDENTIALS', value: 'ManagedIdentityCredential' }
      { name: 'AZURE_CLIENT_ID', value: mainAppIdentity.properties.clientId }
      { name: 'RUST_LOG', value: 'info' }
    ]
    scaleRules: [
      { name: 'http', http: { metadata: { concurrentRequests: '50' } } }
    ]
    minReplicas: 1
    maxReplicas: 10
  }
}

module queueWorker 'modules/container-app.bicep' = {
  name: 'queue-worker'
  dependsOn: [roles]
  params: {
    location: location
    name: 'queue-worker'
    tags: tags
    environmentId: environment.outputs.id
    identityId: queueWorkerIdentity.id
    registryServer: registry.outputs.loginServer
    image: empty(queueWorkerImage) ? placeholderImage : queueWorkerImage
    port: 8081
    ingress: 'none'
    env: [
      { name: 'PORT', value: '8081' }
      { name: 'STORAGE_QUEUE_URL', value: queueUrl }
      { name: 'POISON_QUEUE_URL', value: '${queueUrl}-poison' }
      { name: 'CODE_LEDGER_URL', value: ledgerUrl }
      { name: 'QUEUE_MESSAGE_ENCODING', value: 'base64' }
      { name: 'AZURE_TOKEN_CREDENTIALS', value: 'ManagedIdentityCredential' }
      { name: 'AZURE_CLIENT_ID', value: queueWorkerIdentity.properties.clientId }
      { name: 'RUST_LOG', value: 'info' }
    ]
    // KEDA reads the queue length with the worker's own identity: no connection string.
    scaleRules: [
      {
        name: 'code-requests-length'
        azureQueue: {
          accountName: storage.outputs.name
          queueName: queueName
          queueLength: 5
          identity: queueWorkerIdentity.id
        }
      }
    ]
    minReplicas: 0
    maxReplicas: 10
  }
}

output registryServer string = registry.outputs.loginServer
output vaultName string = vault.outputs.name
output vaultUri string = vault.outputs.uri
output storageName string = storage.outputs.name
output queueUrl string = queueUrl
output ledgerUrl string = ledgerUrl
output mainAppUrl string = 'https://${mainApp.outputs.fqdn}'
