// One service as a Container App: its own user-assigned identity (images pulled with it), the
// environment variables the service reads, probes on /healthz and /readyz, and scale rules.
// Ingress, liveness and readiness all target `port`, the port the image listens on (its PORT
// variable, set in `env` to the same number, and its Dockerfile EXPOSE): the tests check that.

@description('Azure region.')
param location string

@description('App name (the service name).')
param name string

@description('Tags for every resource.')
param tags object

@description('Container Apps environment id.')
param environmentId string

@description('User-assigned identity resource id.')
param identityId string

@description('Registry login server.')
param registryServer string

@description('Image reference; until azd deploys the service image, a placeholder that listens on PORT and answers 200 on every path, probes included.')
param image string

@description('Port the service listens on (its PORT variable).')
param port int

@description('external, internal, or none (no ingress; probes still reach the port).')
@allowed(['external', 'internal', 'none'])
param ingress string

@description('Environment variables: [{ name, value } or { name, secretRef }].')
param env array

@description('Container App secrets: [{ name, keyVaultUrl, identity }].')
param secrets array = []

@description('Scale rules.')
param scaleRules array

@description('Replica bounds.')
param minReplicas int
param maxReplicas int

resource app 'Microsoft.App/containerApps@2024-10-02-preview' = {
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
      activeRevisionsMode: 'Single'
      registries: [{ server: registryServer, identity: identityId }]
      secrets: secrets
      // One line for the condition: checkov's Bicep parser rejects a line that starts with '?'.
      ingress: ingress == 'none' ? null : {
        external: ingress == 'external'
        targetPort: port
        transport: 'http'
        allowInsecure: false
      }
    }
    template: {
      containers: [
        {
          name: name
          image: image
          env: env
          resources: { cpu: json('0.25'), memory: '0.5Gi' }
          probes: [
            {
              type: 'Liveness'
              httpGet: { path: '/healthz', port: port }
              periodSeconds: 10
            }
            {
              type: 'Readiness'
              httpGet: { path: '/readyz', port: port }
              periodSeconds: 5
              failureThreshold: 3
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: scaleRules
      }
    }
  }
}

output fqdn string = ingress == 'none' ? '' : app.properties.configuration.ingress.fqdn
