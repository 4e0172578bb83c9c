// The Container Apps environment, in its own subnet of the private network (modules/network.bicep):
// the apps resolve Key Vault and Storage to their private endpoints. Console and system logs go
// to Log Analytics through diagnostic settings (no workspace key); OpenTelemetry traces and logs
// go to Application Insights through the environment's managed OpenTelemetry agent (OTLP over
// gRPC: the platform gives each app OTEL_EXPORTER_OTLP_ENDPOINT), so no app holds a connection
// string. openTelemetryConfiguration exists only in preview API versions (none of the stable
// ones, 2025-01-01 and 2025-07-01, has it), hence the version below.

@description('Azure region.')
param location string

@description('Resource name prefix.')
param prefix string

@description('Tags for every resource.')
param tags object

@description('Log Analytics workspace name.')
param workspaceName string

@description('Application Insights name.')
param insightsName string

@description('The subnet delegated to the environment.')
param subnetId string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: insightsName
}

resource environment 'Microsoft.App/managedEnvironments@2024-10-02-preview' = {
  name: '${prefix}-env'
  location: location
  tags: tags
  properties: {
    vnetConfiguration: {
      infrastructureSubnetId: subnetId
      // false: main-app's ingress is public; third-party-api's stays internal to the environment.
      internal: false
    }
    appLogsConfiguration: {
      destination: 'azure-monitor'
    }
    appInsightsConfiguration: {
      connectionString: insights.properties.ConnectionString
    }
    openTelemetryConfiguration: {
      tracesConfiguration: { destinations: ['appInsights'] }
      logsConfiguration: { destinations: ['appInsights'] }
    }
    workloadProfiles: [
      { name: 'Consumption', workloadProfileType: 'Consumption' }
    ]
  }
}

resource logs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'logs-to-workspace'
  scope: environment
  properties: {
    workspaceId: workspace.id
    logs: [
      { category: 'ContainerAppConsoleLogs', enabled: true }
      { category: 'ContainerAppSystemLogs', enabled: true }
    ]
  }
}

output id string = environment.id
output defaultDomain string = environment.properties.defaultDomain
