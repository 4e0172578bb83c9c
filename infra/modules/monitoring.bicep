// Log Analytics (Container Apps logs, through diagnostic settings) and Application Insights
// (OpenTelemetry traces and logs from the environment's managed agent). No app is given the
// connection string: only the environment holds it (modules/apps-env.bicep).
// Local authentication stays on: the managed agent sends with the connection string and cannot
// use Entra ID ("the Application Insights resource must allow local authentication to receive
// data from the OpenTelemetry data agent", learn.microsoft.com/azure/container-apps/
// opentelemetry-agents). The connection string lets its holder send telemetry, not read any;
// docs/ARCHITECTURE.md, "Telemetry in Azure", weighs this against a collector of our own.

@description('Azure region.')
param location string

@description('Resource name prefix.')
param prefix string

@description('Tags for every resource.')
param tags object

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${prefix}-logs'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${prefix}-insights'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: false
  }
}

output workspaceId string = workspace.id
output workspaceName string = workspace.name
output insightsName string = insights.name
