// Who may do what, at the narrowest scope: the role table (ops/src/roles.rs, which the infra tests
// compare with `assignments` below), including what running it in Azure needs (AcrPull to pull
// images, Update Message for visibility renewal, Queue Data Reader for the KEDA queue-length
// rule). principalType is set to avoid replication races.
//
// The two secrets are `existing` references: the vault module (a dependency of this one through
// vaultName) creates each only when it is absent, and either way it exists before any assignment
// here is made on it.

@description('Object (principal) ids of the identities, by service name.')
param principals object

@description('Key Vault name.')
param vaultName string

@description('Secret main-app reads (its function key for third-party-api); rotation writes it.')
param secretName string

@description('Secret third-party-api reads its master key from; rotation writes it.')
param masterKeySecretName string

@description('Storage account name.')
param storageName string

@description('Queue name (its poison queue is <name>-poison).')
param queueName string

@description('Ledger container name.')
param containerName string

@description('third-party-api\'s key store container name.')
param keyStoreContainerName string

@description('Container registry name.')
param registryName string

@description('The custom role\'s definition id (modules/custom-role.bicep\'s output: taking it waits for its deployment).')
param updaterRoleId string

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var builtInRoles = {
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6'
  'Key Vault Secrets Officer': 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  'Storage Queue Data Message Sender': 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
  'Storage Queue Data Message Processor': '8a0f0c08-91a1-4084-bc3d-661d67233fed'
  'Storage Queue Data Reader': '19e7f393-937e-4f77-808e-94535e297925'
  'Storage Blob Data Contributor': 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  AcrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}

// The one custom role (modules/custom-role.bicep): Update Message, for the worker's visibility
// renewal and early retry. Rows name it without its hash.
var updaterRoleName = 'Storage Queue Data Message Updater'

// principal, role, scope: the whole table, read by the tests. Scopes are single resources (one
// secret, one queue, one container, the registry), never a vault, an account or the group. The
// worker only sends to the poison queue (the messages it receives are completed or retried, never
// sent again); whoever requeues poison uses an operator identity
// (infra/scripts/grant-developer-access.sh). third-party-api reads only its master key and keeps
// its keys in its own container; main-app reads only its key. The rotation job's identity writes
// the two secrets and nothing else (no Storage: it changes keys through third-party-api's admin
// API, with the master key).
var assignments = [
  { principal: 'main-app', role: 'Key Vault Secrets User', scope: 'secret' }
  { principal: 'main-app', role: 'Storage Queue Data Message Sender', scope: 'queue' }
  { principal: 'main-app', role: 'Storage Blob Data Contributor', scope: 'container' }
  { principal: 'main-app', role: 'AcrPull', scope: 'registry' }
  { principal: 'queue-worker', role: 'Storage Queue Data Message Processor', scope: 'queue' }
  { principal: 'queue-worker', role: 'Storage Queue Data Message Updater', scope: 'queue' }
  { principal: 'queue-worker', role: 'Storage Queue Data Reader', scope: 'queue' }
  { principal: 'queue-worker', role: 'Storage Queue Data Message Sender', scope: 'poison-queue' }
  { principal: 'queue-worker', role: 'Storage Blob Data Contributor', scope: 'container' }
  { principal: 'queue-worker', role: 'AcrPull', scope: 'registry' }
  { principal: 'third-party-api', role: 'Key Vault Secrets User', scope: 'master-key-secret' }
  { principal: 'third-party-api', role: 'Storage Blob Data Contributor', scope: 'key-store-container' }
  { principal: 'third-party-api', role: 'AcrPull', scope: 'registry' }
  { principal: 'rotation', role: 'Key Vault Secrets Officer', scope: 'secret' }
  { principal: 'rotation', role: 'Key Vault Secrets Officer', scope: 'master-key-secret' }
  { principal: 'rotation', role: 'AcrPull', scope: 'registry' }
]

// Each loop below names its role definition inline (the custom role, or a built-in one by id):
// no user-defined `func`, which checkov's Bicep parser cannot read. ARM evaluates only the branch
// taken, so builtInRoles is never indexed with the custom role's name; any() keeps the compiler
// from checking that name against builtInRoles' keys (the rows' role names are one union type).

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: secretName
}

resource masterKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: masterKeySecretName
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: queueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: '${queueName}-poison'
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containerName
}

resource keyStoreContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: keyStoreContainerName
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource onSecret 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, a => a.scope == 'secret'): {
    name: guid(secret.id, principals[a.principal], a.role)
    scope: secret
    properties: {
      roleDefinitionId: a.role == updaterRoleName ? updaterRoleId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', any(builtInRoles)[a.role])
      principalId: principals[a.principal]
      principalType: 'ServicePrincipal'
    }
  }
]

resource onMasterKeySecret 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, a => a.scope == 'master-key-secret'): {
    name: guid(masterKeySecret.id, principals[a.principal], a.role)
    scope: masterKeySecret
    properties: {
      roleDefinitionId: a.role == updaterRoleName ? updaterRoleId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', any(builtInRoles)[a.role])
      principalId: principals[a.principal]
      principalType: 'ServicePrincipal'
    }
  }
]

resource onQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, a => a.scope == 'queue'): {
    name: guid(queue.id, principals[a.principal], a.role)
    scope: queue
    properties: {
      roleDefinitionId: a.role == updaterRoleName ? updaterRoleId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', any(builtInRoles)[a.role])
      principalId: principals[a.principal]
      principalType: 'ServicePrincipal'
    }
  }
]

resource onPoisonQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, a => a.scope == 'poison-queue'): {
    name: guid(poisonQueue.id, principals[a.principal], a.role)
    scope: poisonQueue
    properties: {
      roleDefinitionId: a.role == updaterRoleName ? updaterRoleId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', any(builtInRoles)[a.role])
      principalId: principals[a.principal]
      principalType: 'ServicePrincipal'
    }
  }
]

resource onContainer 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, a => a.scope == 'container'): {
    name: guid(container.id, principals[a.principal], a.role)
    scope: container
    properties: {
      roleDefinitionId: a.role == updaterRoleName ? updaterRoleId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', any(builtInRoles)[a.role])
      principalId: principals[a.principal]
      principalType: 'ServicePrincipal'
    }
  }
]

resource onKeyStoreContainer 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, a => a.scope == 'key-store-container'): {
    name: guid(keyStoreContainer.id, principals[a.principal], a.role)
    scope: keyStoreContainer
    properties: {
      roleDefinitionId: a.role == updaterRoleName ? updaterRoleId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', any(builtInRoles)[a.role])
      principalId: principals[a.principal]
      principalType: 'ServicePrincipal'
    }
  }
]

resource onRegistry 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for a in filter(assignments, a => a.scope == 'registry'): {
    name: guid(registry.id, principals[a.principal], a.role)
    scope: registry
    properties: {
      roleDefinitionId: a.role == updaterRoleName ? updaterRoleId : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', any(builtInRoles)[a.role])
      principalId: principals[a.principal]
      principalType: 'ServicePrincipal'
    }
  }
]
