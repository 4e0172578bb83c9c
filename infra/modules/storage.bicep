// Storage account with shared-key access disabled (tokens only), TLS 1.2, no public blob access;
// the queue, its poison queue, the ledger container and third-party-api's key store container
// (one blob, keys.json, shared by every replica). Private: public network access is
// disabled and the apps reach Queue and Blob through private endpoints (modules/network.bicep);
// `developerIps` opens it to those single addresses only.

@description('Azure region.')
param location string

@description('Globally unique storage account name (lowercase alphanumeric).')
param name string

@description('Tags for every resource.')
param tags object

@description('The queue main-app writes and queue-worker reads.')
param queueName string

@description('The ledger container.')
param containerName string

@description('third-party-api\'s key store container (THIRD_PARTY_API_KEYS_URL names its blob keys.json).')
param keyStoreContainerName string

@description('Developers\' public IPv4 addresses allowed through the firewall; empty: no public access at all.')
param developerIps array = []

@allowed(['Disabled', 'Enabled'])
@description('Enabled only together with developerIps (resources.bicep); the firewall then admits those addresses alone.')
param publicNetworkAccess string = 'Disabled'

@description('Log Analytics workspace the account\'s audit logs go to.')
param workspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    // checkov:skip=CKV_AZURE_206: LRS by design: the ledger holds codes that expire in minutes and the queue short-lived messages; geo-replication would protect nothing worth its cost
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
    defaultToOAuthAuthentication: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: 'Deny'
      // Trusted Azure services still need a role (shared key is off); none is granted one.
      bypass: 'AzureServices'
      // One rule per address; anything after a '/' is dropped, so no range is ever opened.
      ipRules: [for ip in developerIps: { value: first(split(trim(ip), '/')), action: 'Allow' }]
      virtualNetworkRules: []
    }
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: queueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${queueName}-poison'
}

// keys.json is the only copy of third-party-api's keys: with versioning and soft delete, a store
// overwritten or deleted by mistake can be restored (a previous version, or undeleted within 7
// days), whatever the replicas held. The lifecycle rules below bound what the versions cost.
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    isVersioningEnabled: true
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: { publicAccess: 'None' }
}

// Expired ledger records go by this rule in Azure, not by the worker's sweep (the apps set
// WORKER_SWEEP_INTERVAL_SECONDS to 0): a lifecycle delete costs no transaction. Verify checks each
// record's own expiry, so the rule only bounds the container's growth; a code lives at most 7
// days, so a record unchanged for more than 8 has expired.
resource ledgerLifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expired-codes'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [ 'blockBlob' ]
              prefixMatch: [ '${containerName}/' ]
            }
            actions: {
              baseBlob: {
                delete: { daysAfterModificationGreaterThan: 8 }
              }
              version: {
                delete: { daysAfterCreationGreaterThan: 8 }
              }
            }
          }
        }
        {
          name: 'old-key-store-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [ 'blockBlob' ]
              prefixMatch: [ '${keyStoreContainerName}/' ]
            }
            actions: {
              version: {
                delete: { daysAfterCreationGreaterThan: 90 }
              }
            }
          }
        }
      ]
    }
  }
}

resource keyStoreContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: keyStoreContainerName
  properties: { publicAccess: 'None' }
}

// Who changed what: every write and delete on blobs (keys.json, ledger records) and on queue
// messages, with the caller's identity, goes to Log Analytics (StorageBlobLogs, StorageQueueLogs).
// Reads are left out: the worker, verify and every third-party-api replica read all the time.
// A code costs about two records in each table.
resource blobAudit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

resource queueAudit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: queueService
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

output id string = account.id
output name string = account.name
output queueEndpoint string = account.properties.primaryEndpoints.queue
output blobEndpoint string = account.properties.primaryEndpoints.blob
