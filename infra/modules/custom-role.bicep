// The one custom role: the single data action Update Message needs, which neither Message
// Processor nor Message Sender grants (visibility renewal and early retry in queue-worker).
// Role names are unique in a tenant, so the name carries a hash of the resource group's id
// (subscription and group): two subscriptions of one tenant with the same environment name get
// two roles. Its own module (a deployment of its own), so the definition exists before the
// roles module, which takes `id` from it, assigns it.

@description('The role\'s name without its hash (ops::roles::Role::StorageQueueDataMessageUpdater).')
param baseName string = 'Storage Queue Data Message Updater'

var roleName = '${baseName} (${uniqueString(resourceGroup().id)})'

resource updater 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, baseName)
  properties: {
    roleName: roleName
    description: 'Update queue messages (visibility timeout, content): messages/write only.'
    type: 'CustomRole'
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: ['Microsoft.Storage/storageAccounts/queueServices/queues/messages/write']
        notDataActions: []
      }
    ]
    assignableScopes: [resourceGroup().id]
  }
}

// A role definition's id is subscription-level whatever scope deployed it.
output id string = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', updater.name)
output roleName string = roleName
