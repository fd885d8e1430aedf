#!/usr/bin/env bash
# gcloud against a running gcp-emulator: Scheduler, Secret Manager, IAM, Artifact Registry and
# Service Usage through CLOUDSDK_API_ENDPOINT_OVERRIDES_*. Exits 1 on the first failing command.
#
#   tests/conformance/gcloud_probes.sh http://127.0.0.1:PORT/
set -euo pipefail
endpoint=${1:?usage: gcloud_probes.sh http://127.0.0.1:PORT/}
CLOUDSDK_CONFIG=$(mktemp -d)
export CLOUDSDK_CONFIG CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true CLOUDSDK_CORE_PROJECT=p1
for api in CLOUDSCHEDULER SECRETMANAGER IAM ARTIFACTREGISTRY SERVICEUSAGE; do
  export "CLOUDSDK_API_ENDPOINT_OVERRIDES_${api}=${endpoint}"
done
suffix=$RANDOM
loc=(--location us-central1)
policy=$(mktemp)
cat > "$policy" <<'JSON'
[{"name": "keep-last-10", "action": {"type": "Keep"}, "mostRecentVersions": {"keepCount": 10}},
 {"name": "delete-untagged", "action": {"type": "Delete"}, "condition": {"tagState": "untagged", "olderThan": "7d"}}]
JSON
run() { echo "+ gcloud $*"; gcloud "$@" >/dev/null; }
fails() { echo "+ (must fail) gcloud $*"; if gcloud "$@" >/dev/null 2>&1; then echo "expected a failure"; exit 1; fi; }

run scheduler jobs create http "nightly-$suffix" "${loc[@]}" --schedule "0 3 * * *" --time-zone Etc/UTC \
  --uri "https://run.googleapis.com/v2/projects/p1/locations/us-central1/jobs/ingest:run" --http-method POST \
  --oauth-service-account-email "sched@p1.iam.gserviceaccount.com"
run scheduler jobs pause "nightly-$suffix" "${loc[@]}"
run scheduler jobs update http "nightly-$suffix" "${loc[@]}" --schedule "*/15 9-17 * * MON-FRI" --time-zone America/New_York
run scheduler jobs resume "nightly-$suffix" "${loc[@]}"
run scheduler jobs run "nightly-$suffix" "${loc[@]}"
run scheduler jobs list "${loc[@]}"
fails scheduler jobs create http "bad-$suffix" "${loc[@]}" --schedule bogus --uri https://x.example.com
run scheduler jobs delete "nightly-$suffix" "${loc[@]}" --quiet

printf 's3cr3t' | run secrets create "db-pass-$suffix" --data-file=- --labels=stack=prod
test "$(gcloud secrets versions access latest --secret "db-pass-$suffix")" = s3cr3t
run secrets update "db-pass-$suffix" --update-labels=team=data
run secrets add-iam-policy-binding "db-pass-$suffix" --member=user:a@example.com --role=roles/secretmanager.secretAccessor
run secrets delete "db-pass-$suffix" --quiet

run iam service-accounts create "runner-$suffix" --display-name "Runner"
run iam service-accounts update "runner-$suffix@p1.iam.gserviceaccount.com" --description runs
run iam service-accounts add-iam-policy-binding "runner-$suffix@p1.iam.gserviceaccount.com" --member=user:a@example.com --role=roles/iam.serviceAccountUser
fails iam service-accounts describe "ghost-$suffix@p1.iam.gserviceaccount.com"
run iam service-accounts delete "runner-$suffix@p1.iam.gserviceaccount.com" --quiet

run artifacts repositories create "workers-$suffix" --repository-format=docker "${loc[@]}"
run artifacts repositories set-cleanup-policies "workers-$suffix" "${loc[@]}" --policy="$policy" --no-dry-run
run artifacts docker images list "us-central1-docker.pkg.dev/p1/workers-$suffix"
run artifacts repositories delete "workers-$suffix" "${loc[@]}" --quiet

run services enable run.googleapis.com cloudtasks.googleapis.com
gcloud services list --enabled --format='value(config.name)' | grep -qx run.googleapis.com
run services disable run.googleapis.com --quiet
echo "gcloud probes: all commands behaved"
