// Log Analytics (Container Apps logs, through diagnostic settings) and Application Insights
// (OpenTelemetry traces and logs from the environment's managed agent). Local (key)
// authentication is off: Application Insights takes Entra-authenticated telemetry only, and no
// app is given its connection string.

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
    DisableLocalAuth: true
  }
}

output workspaceId string = workspace.id
output workspaceName string = workspace.name
output insightsName string = insights.name
