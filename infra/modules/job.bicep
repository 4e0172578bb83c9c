// A scheduled Container Apps job in the apps' environment (so it reaches Key Vault through its
// private endpoint and third-party-api through its internal ingress), with its own user-assigned
// identity (images pulled with it). azd deploys its image like an app's (azure.yaml, `host:
// containerapp`: azd finds the job by its azd-service-name tag, and patches the image only).
// Until then it has the placeholder image, and a manual trigger nothing pulls: a public image
// never runs with the job's identity, which may write both key secrets. The postdeploy hook
// (infra/scripts/first-rotation.sh) puts the schedule in once the real image is there, and every
// later provision passes it. One replica per run, no overlap between a run and its retry.

@description('Azure region.')
param location string

@description('Job name (the azd service name).')
param name string

@description('Tags for every resource.')
param tags object

@description('Container Apps environment id.')
param environmentId string

@description('User-assigned identity resource id.')
param identityId string

@description('Registry login server.')
param registryServer string

@description('Image reference; a placeholder until azd deploys the service image.')
param image string

@description('Arguments to the image\'s entrypoint.')
param args array

@description('Environment variables: [{ name, value }].')
param env array

@description('When it runs: a cron expression (five fields, UTC).')
param cronExpression string

@description('Whether `image` is the placeholder: then the job is manual and nothing starts it.')
param placeholder bool

@description('How long one run may take (seconds) before it is stopped and counted as failed.')
param replicaTimeout int

@description('How many times a failed run is retried.')
param replicaRetryLimit int

resource job 'Microsoft.App/jobs@2024-03-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': name })
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    environmentId: environmentId
    workloadProfileName: 'Consumption'
    configuration: {
      triggerType: placeholder ? 'Manual' : 'Schedule'
      manualTriggerConfig: placeholder ? { parallelism: 1, replicaCompletionCount: 1 } : null
      scheduleTriggerConfig: placeholder ? null : {
        cronExpression: cronExpression
        parallelism: 1
        replicaCompletionCount: 1
      }
      replicaTimeout: replicaTimeout
      replicaRetryLimit: replicaRetryLimit
      registries: [{ server: registryServer, identity: identityId }]
    }
    template: {
      containers: [
        {
          name: name
          image: image
          args: args
          env: env
          resources: { cpu: json('0.25'), memory: '0.5Gi' }
        }
      ]
    }
  }
}

output name string = job.name
