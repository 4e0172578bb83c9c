// Container registry: images are pulled by each app's managed identity; the admin user is off,
// anonymous pull is off. Basic SKU, reached over its public endpoint with Entra tokens only: the
// network features below need Premium, and `azd deploy` pushes from the developer's machine.

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
    // checkov:skip=CKV_AZURE_139: public endpoint kept: private endpoints need Premium (about ten times Basic's price) and `azd deploy` pushes from the developer's machine; pulls and pushes need an Entra token (admin user and anonymous pull off)
    // checkov:skip=CKV_AZURE_163: image scanning is Microsoft Defender for Containers, a subscription plan that scans registries of any SKU, not a registry property; the images hold only this repository's binaries on a distroless base
    // checkov:skip=CKV_AZURE_166: quarantine is a Premium preview that holds every pushed image until a scanner releases it, which would stop `azd deploy`
    adminUserEnabled: false
    anonymousPullEnabled: false
  }
}

output name string = registry.name
output loginServer string = registry.properties.loginServer
