// The private network: a virtual network with one subnet for the Container Apps environment and
// one for private endpoints; Key Vault, Queue and Blob Storage reached only through those
// endpoints, whose names resolve through private DNS zones linked to the network.
//
//   apps subnet (the environment) --443--> private-endpoints subnet --> vault, queue, blob
//   Internet --443--> apps subnet (main-app's external ingress only)
//
// Every private link is one row of `links`; a new service that needs one (another storage
// sub-resource, another vault) is one more row: it gets its endpoint, zone and network link.

@description('Azure region.')
param location string

@description('Resource name prefix.')
param prefix string

@description('Tags for every resource.')
param tags object

@description('Key Vault resource id (private endpoint target).')
param vaultId string

@description('Storage account resource id (private endpoint target, queue and blob).')
param storageId string

var addressSpace = '10.40.0.0/16'
var appsPrefix = '10.40.0.0/23'
var endpointsPrefix = '10.40.2.0/24'

// name: endpoint and zone-config name; group: the private link sub-resource; zone: its DNS zone.
var links = [
  {
    name: 'vault'
    target: vaultId
    group: 'vault'
    zone: 'privatelink${replace(environment().suffixes.keyvaultDns, 'vault', 'vaultcore')}'
  }
  {
    name: 'queue'
    target: storageId
    group: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    name: 'blob'
    target: storageId
    group: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
]

// The environment's subnet: HTTPS from the Internet; the default rules keep the load balancer's
// probes and traffic inside the network, and deny the rest. What the Internet reaches is decided
// by the environment's public ingress, not by this group: in an external workload-profiles
// environment it answers on 443 (main-app) and on 80, where `allowInsecure: false` gives only a
// redirect to HTTPS (docs/deploy.md, "Network"). This rule is defence in depth for traffic that crosses
// the subnet itself.
resource appsNsg 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: '${prefix}-apps-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-https-from-internet'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: 'Internet'
          sourcePortRange: '*'
          destinationAddressPrefix: appsPrefix
          destinationPortRange: '443'
        }
      }
    ]
  }
}

// The endpoints' subnet: HTTPS from the environment's subnet, nothing else.
resource endpointsNsg 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: '${prefix}-endpoints-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: [
      {
        name: 'allow-https-from-apps'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefix: appsPrefix
          sourcePortRange: '*'
          destinationAddressPrefix: endpointsPrefix
          destinationPortRange: '443'
        }
      }
      {
        name: 'deny-other-inbound'
        properties: {
          priority: 4000
          direction: 'Inbound'
          access: 'Deny'
          protocol: '*'
          sourceAddressPrefix: '*'
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRange: '*'
        }
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: '${prefix}-vnet'
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: [addressSpace] }
    subnets: [
      {
        name: 'apps'
        properties: {
          addressPrefix: appsPrefix
          networkSecurityGroup: { id: appsNsg.id }
          delegations: [
            { name: 'container-apps', properties: { serviceName: 'Microsoft.App/environments' } }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: endpointsPrefix
          networkSecurityGroup: { id: endpointsNsg.id }
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [
  for link in links: {
    name: link.zone
    location: 'global'
    tags: tags
  }
]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [
  for (link, i) in links: {
    parent: zones[i]
    name: '${prefix}-vnet'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: { id: vnet.id }
    }
  }
]

resource endpoints 'Microsoft.Network/privateEndpoints@2023-11-01' = [
  for link in links: {
    name: '${prefix}-pe-${link.name}'
    location: location
    tags: tags
    properties: {
      subnet: { id: vnet.properties.subnets[1].id }
      privateLinkServiceConnections: [
        {
          name: link.name
          properties: { privateLinkServiceId: link.target, groupIds: [link.group] }
        }
      ]
    }
  }
]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = [
  for (link, i) in links: {
    parent: endpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        { name: link.name, properties: { privateDnsZoneId: zones[i].id } }
      ]
    }
  }
]

output appsSubnetId string = vnet.properties.subnets[0].id
output vnetName string = vnet.name
