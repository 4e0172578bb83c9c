# azd postdeploy hook on Windows (azure.yaml): first-rotation.sh in PowerShell. If the key-rotation
# job has never succeeded and is not running, starts it once and waits for it, so the first
# `azd up` ends with real keys in place of the placeholder. Later deployments do nothing.
#   FIRST_ROTATION_WAIT_SECONDS (default 1800): how long to wait; the run goes on after that.
$ErrorActionPreference = 'Stop'

. (Join-Path $PSScriptRoot 'azd-helpers.ps1')

$job = Get-AzdValue KEY_ROTATION_JOB_NAME
$group = Get-AzdValue AZURE_RESOURCE_GROUP
$subscription = Get-AzdValue AZURE_SUBSCRIPTION_ID
if (-not $job -or -not $group -or -not $subscription) {
  throw 'KEY_ROTATION_JOB_NAME, AZURE_RESOURCE_GROUP or AZURE_SUBSCRIPTION_ID is not set: run azd provision'
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
  throw 'the Azure CLI (az) is needed to start the first key rotation: install it, az login, then azd hooks run postdeploy'
}
$where = @('--name', $job, '--resource-group', $group, '--subscription', $subscription)

# The first deployment: the job had the placeholder's manual trigger; the real image is there
# now, so it gets its schedule (a JSON merge patch; later provisions pass it too).
$trigger = Invoke-Az containerapp job show @where --query properties.configuration.triggerType --output tsv
if ($trigger -eq 'Manual') {
  $cron = Get-AzdValue KEY_ROTATION_CRON
  if (-not $cron) { throw 'KEY_ROTATION_CRON is not set: run azd provision' }
  $id = Invoke-Az containerapp job show @where --query id --output tsv
  $body = @{ properties = @{ configuration = @{ triggerType = 'Schedule'; manualTriggerConfig = $null;
        scheduleTriggerConfig = @{ cronExpression = $cron; parallelism = 1; replicaCompletionCount = 1 } } } } |
    ConvertTo-Json -Depth 5 -Compress
  $file = New-TemporaryFile
  Set-Content -Path $file -Value $body
  Invoke-Az rest --method patch --url "https://management.azure.com${id}?api-version=2024-03-01" --body "@$file" --output none | Out-Null
  Remove-Item $file
  Write-Output "${job}: on its schedule from now on ($cron, UTC)"
}

$statuses = @(Invoke-Az containerapp job execution list @where --query '[].properties.status' --output tsv)
if ($statuses -contains 'Succeeded') {
  Write-Output "$job has rotated the keys before: nothing to do (next run on its schedule)"
  exit 0
}
$execution = Invoke-Az containerapp job execution list @where `
  --query "[?properties.status=='Running' || properties.status=='Processing'].name | [0]" --output tsv
if ($execution) {
  Write-Output "$job is running already ($execution): waiting for it"
} else {
  Write-Output "first key rotation: starting $job (keyless rotate)"
  $execution = Invoke-Az containerapp job start @where --query name --output tsv
}

$limit = if ($env:FIRST_ROTATION_WAIT_SECONDS) { [int] $env:FIRST_ROTATION_WAIT_SECONDS } else { 1800 }
$waited = 0
while ($true) {
  $status = Invoke-Az containerapp job execution show @where --job-execution-name $execution `
    --query properties.status --output tsv
  if ($status -eq 'Succeeded') {
    Write-Output "${execution}: Succeeded: both key secrets hold real keys"
    exit 0
  }
  if ($status -in @('Failed', 'Stopped', 'Degraded')) {
    Write-Error ("${execution}: $status. Its console log: the job's execution history in the portal (Log Analytics). " +
      'Run it again with: azd hooks run postdeploy')
    exit 1
  }
  if ($waited -ge $limit) {
    Write-Output "$execution still $status after ${limit}s; it goes on in Azure. Check it with:"
    Write-Output "  az containerapp job execution show $($where -join ' ') --job-execution-name $execution"
    exit 0
  }
  Write-Output "${execution}: $status (${waited}s)"
  Start-Sleep -Seconds 15
  $waited += 15
}
