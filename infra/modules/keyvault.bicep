// Key Vault with RBAC authorisation (no access policies), soft delete and purge protection,
// holding the two key secrets: `third-party-api-key` (main-app's function key for third-party-api)
// and `third-party-api-master-key` (third-party-api's admin key). Each is created here only when
// it does not exist yet (the preprovision hook asks ARM, infra/scripts/key-secrets.sh), holding
// the placeholder `pending:first-rotation`, which is no key: `:` is outside the key alphabet, so
// no service ever accepts it. The real values are written by `keyless rotate` (the key-rotation
// job) as new versions; a later provision never touches them. No value is ever an output.
// Private: public network access is disabled and the apps reach it through its private endpoint
// (modules/network.bicep); `developerIps` opens it to those single addresses only.

@description('Azure region.')
param location string

@description('Globally unique vault name (carries the deployment suffix: soft delete holds a name 90 days).')
param name string

@description('Tags for every resource.')
param tags object

@description('Name of the secret main-app reads (THIRD_PARTY_API_SECRET_NAME).')
param secretName string

@description('Name of the secret third-party-api reads its master key from (THIRD_PARTY_API_MASTER_KEY_SECRET_NAME).')
param masterKeySecretName string

@description('Create `secretName` (with the placeholder): false when it exists already, so its versions are kept.')
param createSecret bool

@description('Create `masterKeySecretName` (with the placeholder): false when it exists already.')
param createMasterKeySecret bool

@description('Expiry of a placeholder written here (seconds since the epoch): later than the rotation schedule, which replaces it.')
param secretExpiresOn int

@description('Developers\' public IPv4 addresses allowed through the firewall; empty: no public access at all.')
param developerIps array = []

@allowed(['Disabled', 'Enabled'])
@description('Enabled only together with developerIps (resources.bicep); the firewall then admits those addresses alone.')
param publicNetworkAccess string = 'Disabled'

@description('Log Analytics workspace the vault\'s audit log goes to.')
param workspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'None'
      // One rule per address; anything after a '/' is dropped, so no range is ever opened.
      ipRules: [for ip in developerIps: { value: first(split(trim(ip), '/')) }]
      virtualNetworkRules: []
    }
  }
}

// Not a secret: a marker that cannot be a key (`:` is outside the key alphabet).
var placeholder = 'pending:first-rotation'

// The key secrets this provision creates: those absent from the vault. A loop over the absent
// ones rather than `if`: checkov reads a loop's properties (expiry, content type), not a condition's.
var absentSecrets = filter([
  { name: secretName, contentType: 'third-party-api function key for main-app', create: createSecret }
  { name: masterKeySecretName, contentType: 'third-party-api master key', create: createMasterKeySecret }
], s => s.create)

resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [
  for s in absentSecrets: {
    parent: vault
    name: s.name
    properties: {
      value: placeholder
      contentType: s.contentType
      attributes: { enabled: true, exp: secretExpiresOn }
    }
  }
]

// Who read or wrote which secret, and from where: every data-plane request (AuditEvent) goes to
// Log Analytics (table AzureDiagnostics, or AZKVAuditLogs in resource-specific mode).
resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [{ category: 'AuditEvent', enabled: true }]
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
