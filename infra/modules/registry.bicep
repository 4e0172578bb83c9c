// Container registry: images are pulled by each app's managed identity; the admin user is off.

@description('Azure region.')
param location string

@description('Globally unique registry name (alphanumeric).')
param name string

@description('Tags for every resource.')
param tags object

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Basic' }
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
  }
}

output name string = registry.name
output loginServer string = registry.properties.loginServer
