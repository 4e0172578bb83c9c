// The whole system on Azure Container Apps, deployed by `azd up`: see docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(48)
@description('azd environment name; names the resource group and prefixes resources.')
param environmentName string

@minLength(1)
@description('Azure region for every resource.')
param location string

// No key is a parameter: Key Vault holds them, written by `keyless rotate` (the key-rotation job).
// A provision creates a key secret only when it is absent, with a placeholder that is no key.
// azd resolves every parameter before any hook runs (and asks for those with no value and no
// default), then again after preprovision, from the environment the hook wrote. So each flag
// defaults to '' ("not known"): azd asks nothing, the deployment gets the hook's answer, and a
// deployment that does not know (no hook ran) stops instead of overwriting a key.
@allowed(['true', 'false', ''])
@description('Whether the vault holds third-party-api-key already (THIRD_PARTY_API_KEY_EXISTS, set by the preprovision hook from ARM). Empty, the default: not known, and the deployment stops.')
param thirdPartyApiKeyExists string = ''

@allowed(['true', 'false', ''])
@description('Whether the vault holds third-party-api-master-key already (THIRD_PARTY_API_MASTER_KEY_EXISTS, as above).')
param thirdPartyApiMasterKeyExists string = ''

@description('Images, set by azd deploy; a public placeholder until then.')
param mainAppImage string = ''
param queueWorkerImage string = ''
param thirdPartyApiImage string = ''
param keyRotationImage string = ''

@description('When the key-rotation job runs: a cron expression, UTC (KEY_ROTATION_SCHEDULE). Empty: weekly, Monday 03:00. It must run at least weekly, "<minute> <hour> * * <days of the week>" (any day of the month, any month), so the key, which each rotation gives 90 days, is never near its expiry; any other schedule fails the deployment.')
param keyRotationSchedule string = ''

@maxLength(6)
@description('Suffix of the names soft delete holds after `azd down` (the vault): AZURE_DEPLOYMENT_SUFFIX, made by the preprovision hook and renewed by the postdown hook. Empty: one is derived from the deployment time.')
param deploymentSuffix string = ''

@description('Comma-separated public IPv4 addresses of developers that Key Vault and Storage accept through their firewalls (DEVELOPER_IP_ADDRESSES; infra/scripts/grant-developer-access.sh adds yours). Single addresses only: anything after a "/" is dropped. Empty (the default): no public network access at all.')
param developerIpAddresses string = ''

@description('Deployment time (ISO 8601); sets a placeholder secret\'s expiry.')
param deployedAt string = utcNow('u')

var tags = { 'azd-env-name': environmentName }
var suffix = empty(deploymentSuffix) ? take(uniqueString(subscription().id, environmentName, deployedAt), 6) : toLower(deploymentSuffix)
var developerIps = filter(split(developerIpAddresses, ','), ip => !empty(trim(ip)))
var weekly = '0 3 * * 1'
// The schedule runs at least weekly: five fields, the day of the month and the month '*', so the
// job runs on every day the days-of-the-week field names, one a week at least. Each rotation's key
// expires after 90 days, so the key in use outlives a dozen runs (failed ones included). Any
// other schedule (monthly, yearly, a 31st of February) stops the deployment, whoever deploys:
// ARM evaluates only the branch of `?:` taken, and on the other one reading a property of an
// empty object fails with the property's name, the message below. (Bicep's fail() would say it
// plainly, but checkov's Bicep parser cannot read it, and a file it cannot parse goes unchecked.)
var rotationSchedule = empty(trim(keyRotationSchedule)) ? weekly : trim(keyRotationSchedule)
var rotationFields = filter(split(rotationSchedule, ' '), f => !empty(f))
var rotationAtLeastWeekly = length(rotationFields) == 5 && join(take(skip(rotationFields, 2), 2), ' ') == '* *'
var refused = {}

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
    thirdPartyApiKeyExists: empty(thirdPartyApiKeyExists) ? any(refused)['THIRD_PARTY_API_KEY_EXISTS is not set: provision with azd, whose preprovision hook (infra/scripts/key-secrets.sh) asks ARM whether the vault holds the key'] : thirdPartyApiKeyExists == 'true'
    thirdPartyApiMasterKeyExists: empty(thirdPartyApiMasterKeyExists) ? any(refused)['THIRD_PARTY_API_MASTER_KEY_EXISTS is not set: provision with azd, whose preprovision hook (infra/scripts/key-secrets.sh) asks ARM whether the vault holds the master key'] : thirdPartyApiMasterKeyExists == 'true'
    mainAppImage: mainAppImage
    queueWorkerImage: queueWorkerImage
    thirdPartyApiImage: thirdPartyApiImage
    keyRotationImage: keyRotationImage
    keyRotationSchedule: rotationAtLeastWeekly ? join(rotationFields, ' ') : any(refused)['KEY_ROTATION_SCHEDULE must run at least weekly, "<minute> <hour> * * <days of the week>" (each rotation\'s key expires after 90 days), not "${keyRotationSchedule}"']
    deploymentSuffix: suffix
    // As a rotation's versions: 90 days, later than the job's next run.
    secretExpiresOn: dateTimeToEpoch(dateTimeAdd(deployedAt, 'P90D'))
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
output KEY_ROTATION_JOB_NAME string = resources.outputs.keyRotationJobName
// The schedule the job gets (checked above): the postdeploy hook puts it in after the first
// deployment, when the job had the placeholder's manual trigger.
output KEY_ROTATION_CRON string = join(rotationFields, ' ')
output THIRD_PARTY_API_KEYS_URL string = resources.outputs.keysUrl
// The custom role's name (its hash makes it unique in the tenant): grant-developer-access.sh and
// `keyless doctor`'s az lines use it.
output QUEUE_MESSAGE_UPDATER_ROLE string = resources.outputs.updaterRoleName
