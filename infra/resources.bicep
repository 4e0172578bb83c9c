// Everything inside the resource group: monitoring, registry, identities, Key Vault, Storage,
// the private network (endpoints and DNS zones for Key Vault, Queue and Blob), roles, the
// Container Apps environment in that network, the three apps with the variables they read and
// the key-rotation job.

param location string
param environmentName string
param tags object

@description('Whether the vault holds each key secret already (the preprovision hook asked ARM): absent ones are created with the placeholder, present ones are left alone.')
param thirdPartyApiKeyExists bool
param thirdPartyApiMasterKeyExists bool

param mainAppImage string
param queueWorkerImage string
param thirdPartyApiImage string
param keyRotationImage string

@description('When the key-rotation job runs (cron, UTC).')
param keyRotationSchedule string

@description('Suffix of the names soft delete holds after a teardown (the vault).')
param deploymentSuffix string

@description('Expiry of a placeholder secret written here (seconds since the epoch).')
param secretExpiresOn int

@description('Developers\' public IPv4 addresses Key Vault and Storage accept; empty: none.')
param developerIps array

var token = uniqueString(subscription().id, resourceGroup().id, environmentName)
var prefix = 'kl-${take(environmentName, 16)}'
// Until azd deploys a service's image: Google's public hello-app sample, which listens on the
// PORT variable and answers 200 on every path, so ingress and both probes (which target the
// service's own port) find it healthy and the first provision never waits on a failing revision.
// (The job has it too until `azd deploy`, minutes later in `azd up`; a scheduled run in between
// would only idle until its timeout.)
var placeholderImage = 'us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0'
var secretName = 'third-party-api-key'
var masterKeySecretName = 'third-party-api-master-key'
var queueName = 'code-requests'
var containerName = 'codes'
var keyStoreContainerName = 'third-party-api-keys'

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
    masterKeySecretName: masterKeySecretName
    createSecret: !thirdPartyApiKeyExists
    createMasterKeySecret: !thirdPartyApiMasterKeyExists
    secretExpiresOn: secretExpiresOn
    developerIps: developerIps
    publicNetworkAccess: empty(developerIps) ? 'Disabled' : 'Enabled'
    workspaceId: monitoring.outputs.workspaceId
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
    keyStoreContainerName: keyStoreContainerName
    developerIps: developerIps
    publicNetworkAccess: empty(developerIps) ? 'Disabled' : 'Enabled'
    workspaceId: monitoring.outputs.workspaceId
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

// The key-rotation job's identity: Secrets Officer on the two key secrets, AcrPull; nothing else.
resource rotationIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-rotation-id'
  location: location
  tags: tags
}

module updaterRole 'modules/custom-role.bicep' = {
  name: 'custom-role'
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    // From the custom role's own deployment: no assignment is made before it finished.
    updaterRoleId: updaterRole.outputs.id
    principals: {
      'main-app': mainAppIdentity.properties.principalId
      'queue-worker': queueWorkerIdentity.properties.principalId
      'third-party-api': thirdPartyApiIdentity.properties.principalId
      rotation: rotationIdentity.properties.principalId
    }
    // From the vault module's output: the assignments wait for the secrets it creates.
    vaultName: vault.outputs.name
    secretName: secretName
    masterKeySecretName: masterKeySecretName
    storageName: storage.outputs.name
    queueName: queueName
    containerName: containerName
    keyStoreContainerName: keyStoreContainerName
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
var keysUrl = '${storage.outputs.blobEndpoint}${keyStoreContainerName}/keys.json'
// third-party-api's function endpoint on its internal ingress (its admin API is at the same origin).
var thirdPartyApiEndpoint = 'https://${thirdPartyApi.outputs.fqdn}/api/RandomNumber'

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
    // Its keys in one blob every replica shares; its master key read from the vault at run time,
    // both with the app's own identity. No key in its configuration.
    env: [
      { name: 'PORT', value: '7071' }
      { name: 'THIRD_PARTY_API_KEYS_URL', value: keysUrl }
      { name: 'KEY_VAULT_URL', value: vault.outputs.uri }
      { name: 'THIRD_PARTY_API_MASTER_KEY_SECRET_NAME', value: masterKeySecretName }
      { name: 'AZURE_TOKEN_CREDENTIALS', value: 'ManagedIdentityCredential' }
      { name: 'AZURE_CLIENT_ID', value: thirdPartyApiIdentity.properties.clientId }
      { name: 'RUST_LOG', value: 'info' }
      // The managed agent speaks gRPC only; the platform sets the endpoint (and says grpc too).
      { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', value: 'grpc' }
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
      { name: 'THIRD_PARTY_API_ENDPOINT', value: thirdPartyApiEndpoint }
      { name: 'KEY_VAULT_URL', value: vault.outputs.uri }
      { name: 'THIRD_PARTY_API_SECRET_NAME', value: secretName }
      { name: 'STORAGE_QUEUE_URL', value: queueUrl }
      { name: 'CODE_LEDGER_URL', value: ledgerUrl }
      { name: 'CODE_TTL_SECONDS', value: '600' }
      { name: 'QUEUE_MESSAGE_ENCODING', value: 'base64' }
      { name: 'AZURE_TOKEN_CREDENTIALS', value: 'ManagedIdentityCredential' }
      { name: 'AZURE_CLIENT_ID', value: mainAppIdentity.properties.clientId }
      { name: 'RUST_LOG', value: 'info' }
      // The managed agent speaks gRPC only; the platform sets the endpoint (and says grpc too).
      { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', value: 'grpc' }
    ]
    // Out at main-app's own MAX_CONCURRENT_REQUESTS (16): requests beyond it wait in a replica.
    scaleRules: [
      { name: 'http', http: { metadata: { concurrentRequests: '16' } } }
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
      // The storage account's lifecycle rule deletes expired records: no sweep here.
      { name: 'WORKER_SWEEP_INTERVAL_SECONDS', value: '0' }
      { name: 'QUEUE_MESSAGE_ENCODING', value: 'base64' }
      { name: 'AZURE_TOKEN_CREDENTIALS', value: 'ManagedIdentityCredential' }
      { name: 'AZURE_CLIENT_ID', value: queueWorkerIdentity.properties.clientId }
      { name: 'RUST_LOG', value: 'info' }
      // The managed agent speaks gRPC only; the platform sets the endpoint (and says grpc too).
      { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', value: 'grpc' }
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

// `keyless rotate` on a schedule: a new function key for main-app, written to the vault (exp 90
// days, always later than the next run), old keys revoked once unused. replicaTimeout covers
// its waits (main-app's cache TTL, the grace period); one retry.
module keyRotation 'modules/job.bicep' = {
  name: 'key-rotation'
  dependsOn: [roles]
  params: {
    location: location
    name: 'key-rotation'
    tags: tags
    environmentId: environment.outputs.id
    identityId: rotationIdentity.id
    registryServer: registry.outputs.loginServer
    image: empty(keyRotationImage) ? placeholderImage : keyRotationImage
    placeholder: empty(keyRotationImage)
    args: ['rotate']
    env: [
      { name: 'KEY_VAULT_URL', value: vault.outputs.uri }
      { name: 'THIRD_PARTY_API_SECRET_NAME', value: secretName }
      { name: 'THIRD_PARTY_API_MASTER_KEY_SECRET_NAME', value: masterKeySecretName }
      { name: 'THIRD_PARTY_API_ENDPOINT', value: thirdPartyApiEndpoint }
      { name: 'AZURE_TOKEN_CREDENTIALS', value: 'ManagedIdentityCredential' }
      { name: 'AZURE_CLIENT_ID', value: rotationIdentity.properties.clientId }
    ]
    cronExpression: keyRotationSchedule
    replicaTimeout: 3600
    replicaRetryLimit: 1
  }
}

output registryServer string = registry.outputs.loginServer
output vaultName string = vault.outputs.name
output vaultUri string = vault.outputs.uri
output storageName string = storage.outputs.name
output queueUrl string = queueUrl
output ledgerUrl string = ledgerUrl
output mainAppUrl string = 'https://${mainApp.outputs.fqdn}'
output keyRotationJobName string = keyRotation.outputs.name
output keysUrl string = keysUrl
output updaterRoleName string = updaterRole.outputs.roleName
