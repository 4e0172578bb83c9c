#!/bin/sh
# azd postdeploy hook (azure.yaml). Until the key-rotation job has run once, the vault holds the
# placeholder `pending:first-rotation` (no key): main-app's calls to third-party-api fail. So
# after a deployment, if the job has never succeeded and is not running, this starts it once
# (`az containerapp job start`: the same run as the schedule's, `keyless rotate` with the job's
# own identity) and waits for it, so the first `azd up` ends with working keys. Later
# deployments find a succeeded run and do nothing: the schedule rotates from then on. Before
# that, a job still on the placeholder's manual trigger gets its schedule (KEY_ROTATION_CRON).
#   FIRST_ROTATION_WAIT_SECONDS (default 1800): how long to wait; the run goes on after that.
set -eu
# shellcheck source=infra/scripts/azd-helpers.sh
. "$(dirname "$0")/azd-helpers.sh"

job=$(value KEY_ROTATION_JOB_NAME)
group=$(value AZURE_RESOURCE_GROUP)
subscription=$(value AZURE_SUBSCRIPTION_ID)
: "${job:?KEY_ROTATION_JOB_NAME is not set: run azd provision}" "${group:?AZURE_RESOURCE_GROUP is not set}"
: "${subscription:?AZURE_SUBSCRIPTION_ID is not set}"
need_az "start the first key rotation: install it, az login, then azd hooks run postdeploy"
where="--name $job --resource-group $group --subscription $subscription"

# The first deployment: the job was provisioned with the placeholder image and a manual trigger
# (infra/modules/job.bicep), so no public image ran with its identity. The real image is there
# now: the job gets its schedule (a JSON merge patch; every later provision passes it too).
# shellcheck disable=SC2086
trigger=$(az containerapp job show $where --query properties.configuration.triggerType --output tsv)
if [ "$trigger" = Manual ]; then
  cron=$(value KEY_ROTATION_CRON)
  : "${cron:?KEY_ROTATION_CRON is not set: run azd provision}"
  # shellcheck disable=SC2086
  id=$(az containerapp job show $where --query id --output tsv)
  az rest --method patch --url "https://management.azure.com$id?api-version=2024-03-01" --output none \
    --body "{\"properties\":{\"configuration\":{\"triggerType\":\"Schedule\",\"manualTriggerConfig\":null,\"scheduleTriggerConfig\":{\"cronExpression\":\"$cron\",\"parallelism\":1,\"replicaCompletionCount\":1}}}}"
  echo "$job: on its schedule from now on ($cron, UTC)"
fi

# shellcheck disable=SC2086 # $where is a list of arguments without spaces in any value
statuses=$(az containerapp job execution list $where --query "[].properties.status" --output tsv)
statuses=$(echo "$statuses" | tr '\n' ' ')
case " $statuses " in
  *" Succeeded "*)
    echo "$job has rotated the keys before: nothing to do (next run on its schedule)"
    exit 0
    ;;
esac
# shellcheck disable=SC2086
execution=$(az containerapp job execution list $where \
  --query "[?properties.status=='Running' || properties.status=='Processing'].name | [0]" --output tsv)
if [ -n "$execution" ]; then
  echo "$job is running already ($execution): waiting for it"
else
  echo "first key rotation: starting $job (keyless rotate)"
  # shellcheck disable=SC2086
  execution=$(az containerapp job start $where --query name --output tsv)
fi

limit=${FIRST_ROTATION_WAIT_SECONDS:-1800}
waited=0
while :; do
  # shellcheck disable=SC2086
  status=$(az containerapp job execution show $where --job-execution-name "$execution" \
    --query properties.status --output tsv)
  case "$status" in
    Succeeded)
      echo "$execution: Succeeded: both key secrets hold real keys"
      exit 0
      ;;
    Failed | Stopped | Degraded)
      echo "$execution: $status. Its console log: the job's execution history in the portal (Log Analytics)." >&2
      echo "Run it again with: azd hooks run postdeploy" >&2
      exit 1
      ;;
  esac
  if [ "$waited" -ge "$limit" ]; then
    echo "$execution still $status after ${limit}s; it goes on in Azure. Check it with:"
    echo "  az containerapp job execution show $where --job-execution-name $execution"
    exit 0
  fi
  echo "$execution: $status (${waited}s)"
  sleep 15
  waited=$((waited + 15))
done
