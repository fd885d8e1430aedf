#!/usr/bin/env python3
"""Drives more of Google's own clients against a running stackctl gcp-emulator: BigQuery
(google-cloud-bigquery), Billing Budgets (GAPIC REST), Cloud Run jobs (GAPIC REST, LRO
`.result()`), and Monitoring + IAM through the discovery-based googleapiclient.

Exits non-zero with `MISMATCH: ...` on the first drift.

    python_seed_stack.py --endpoint http://127.0.0.1:PORT --project p1 --region us-central1
"""

import argparse
import sys
import uuid

from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, run_v2
from google.cloud.billing import budgets_v1
from google.type import money_pb2
import googleapiclient.discovery
import googleapiclient.errors


class Mismatch(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Mismatch(message)
    print(f"  ok: {message}")


def bigquery_scenario(endpoint, project, suffix):
    print("BigQuery datasets and tables (google-cloud-bigquery)")
    client = bigquery.Client(project=project, credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": endpoint})
    dataset = bigquery.Dataset(f"{project}.raw_{suffix}")
    dataset.labels = {"stack": "conformance"}
    dataset.default_partition_expiration_ms = 7 * 86400000
    created = client.create_dataset(dataset)
    expect(created.location == "US", f"dataset location defaults to US ({created.location})")
    expect(created.etag, "dataset has an etag")
    expect(any(e.entity_type == "specialGroup" and e.entity_id == "projectOwners" for e in created.access_entries),
           "default access includes projectOwners")
    expect(created.created is not None and created.modified is not None, "creationTime/lastModifiedTime parse as timestamps")
    schema = [
        bigquery.SchemaField("ts", "TIMESTAMP", mode="REQUIRED"),
        bigquery.SchemaField("service", "STRING"),
        bigquery.SchemaField("count", "INT64"),
        bigquery.SchemaField("attrs", "RECORD", fields=[bigquery.SchemaField("k", "STRING")]),
    ]
    table = bigquery.Table(f"{project}.raw_{suffix}.events", schema=schema)
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="ts")
    table.clustering_fields = ["service"]
    table.require_partition_filter = True
    table.labels = {"stack": "conformance"}
    table = client.create_table(table)
    fetched = client.get_table(f"{project}.raw_{suffix}.events")
    expect(fetched.time_partitioning.type_ == "DAY" and fetched.time_partitioning.field == "ts", "partitioning round-trips")
    expect(fetched.time_partitioning.expiration_ms == 7 * 86400000, "dataset default partition expiration applies")
    expect(fetched.clustering_fields == ["service"], "clustering round-trips")
    expect(fetched.require_partition_filter is True, "requirePartitionFilter round-trips")
    expect([f.field_type for f in fetched.schema] == ["TIMESTAMP", "STRING", "INTEGER", "RECORD"], "legacy type names are served")
    expect(fetched.schema[1].mode == "NULLABLE", "mode defaults to NULLABLE")
    expect(fetched.num_rows == 0 and fetched.num_bytes == 0, "numRows/numBytes are 0")
    expect(fetched.table_type == "TABLE", "type TABLE")
    fetched.clustering_fields = ["count", "service"]
    updated = client.update_table(fetched, ["clustering_fields"])
    expect(updated.clustering_fields == ["count", "service"], "clustering can change")
    fetched.description = "stale write"
    try:
        client.update_table(fetched, ["description"])  # fetched.etag is now stale
        raise Mismatch("a stale etag must fail with 412")
    except exceptions.PreconditionFailed as error:
        expect(error.code == 412, f"stale etag answers 412 ({error.message})")
    updated.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.HOUR, field="ts")
    try:
        client.update_table(updated, ["time_partitioning"])
        raise Mismatch("changing partitioning must fail")
    except exceptions.BadRequest as error:
        expect("partitioning" in error.message, f"partitioning change refused ({error.message})")
    tables = list(client.list_tables(f"{project}.raw_{suffix}"))
    expect([t.table_id for t in tables] == ["events"], "list_tables sees the table")
    try:
        client.delete_dataset(f"{project}.raw_{suffix}")
        raise Mismatch("deleting a non-empty dataset must fail")
    except exceptions.BadRequest as error:
        expect("still in use" in error.message, f"non-empty dataset delete refused ({error.message})")
    client.delete_dataset(f"{project}.raw_{suffix}", delete_contents=True)
    try:
        client.get_dataset(f"{project}.raw_{suffix}")
        raise Mismatch("deleted dataset is still readable")
    except exceptions.NotFound:
        expect(True, "deleted dataset answers NotFound")


def budgets_scenario(endpoint, project_number, suffix):
    print("Billing budgets (google-cloud-billing-budgets, REST)")
    client = budgets_v1.BudgetServiceClient(credentials=AnonymousCredentials(), transport="rest",
                                            client_options=ClientOptions(api_endpoint=endpoint))
    parent = "billingAccounts/0123AB-4567CD-89EF01"
    budget = budgets_v1.Budget(
        display_name=f"conformance-{suffix}",
        budget_filter=budgets_v1.Filter(projects=[f"projects/{project_number}"]),
        amount=budgets_v1.BudgetAmount(specified_amount=money_pb2.Money(currency_code="USD", units=50)),
        threshold_rules=[budgets_v1.ThresholdRule(threshold_percent=0.5),
                         budgets_v1.ThresholdRule(threshold_percent=1.0,
                                                  spend_basis=budgets_v1.ThresholdRule.Basis.FORECASTED_SPEND)],
    )
    created = client.create_budget(parent=parent, budget=budget)
    expect(created.name.startswith(f"{parent}/budgets/") and len(created.name.rsplit("/", 1)[1]) == 36,
           f"server-assigned UUID id ({created.name})")
    expect(created.budget_filter.credit_types_treatment == budgets_v1.Filter.CreditTypesTreatment.INCLUDE_ALL_CREDITS,
           "creditTypesTreatment defaults to INCLUDE_ALL_CREDITS")
    expect(created.budget_filter.calendar_period == budgets_v1.CalendarPeriod.MONTH, "calendarPeriod defaults to MONTH")
    expect(created.threshold_rules[0].spend_basis == budgets_v1.ThresholdRule.Basis.CURRENT_SPEND, "spendBasis defaults to CURRENT_SPEND")
    expect(created.amount.specified_amount.units == 50, "amount units round-trip")
    expect(created.etag, "budget has an etag")
    fetched = client.get_budget(name=created.name)
    expect(fetched == created, "get returns what create returned")
    listed = [b.name for b in client.list_budgets(parent=parent)]
    expect(created.name in listed, "list_budgets sees the budget")
    bad = budgets_v1.Budget(display_name="by-id", budget_filter=budgets_v1.Filter(projects=["projects/my-project-id"]),
                            amount=budgets_v1.BudgetAmount(last_period_amount=budgets_v1.LastPeriodAmount()))
    try:
        client.create_budget(parent=parent, budget=bad)
        raise Mismatch("a project id in budgetFilter.projects must fail")
    except exceptions.BadRequest:
        expect(True, "projects/<id> (not a number) answers 400")
    client.delete_budget(name=created.name)


def run_jobs_scenario(endpoint, project, region, suffix):
    print("Cloud Run jobs (google-cloud-run JobsClient, REST)")
    options = ClientOptions(api_endpoint=endpoint)
    jobs = run_v2.JobsClient(credentials=AnonymousCredentials(), transport="rest", client_options=options)
    executions = run_v2.ExecutionsClient(credentials=AnonymousCredentials(), transport="rest", client_options=options)
    parent = f"projects/{project}/locations/{region}"
    job = run_v2.Job(template=run_v2.ExecutionTemplate(template=run_v2.TaskTemplate(
        containers=[run_v2.Container(image="us-docker.pkg.dev/p1/r/ingest@sha256:" + "a" * 64)])))
    created = jobs.create_job(parent=parent, job=job, job_id=f"ingest-{suffix}").result()
    expect(created.name == f"{parent}/jobs/ingest-{suffix}", "job name")
    expect(created.template.task_count == 1, "taskCount defaults to 1")
    expect(created.template.template.max_retries == 3, "maxRetries defaults to 3")
    expect(created.template.template.timeout.total_seconds() == 600, "timeout defaults to 600s")
    expect(created.template.template.service_account.endswith("-compute@developer.gserviceaccount.com"), "default service account")
    expect(created.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED, "job is ready")
    expect(created.generation == 1 and created.observed_generation == 1, "generation/observedGeneration 1")
    execution = jobs.run_job(name=created.name).result()
    expect(execution.succeeded_count == 1, "the execution succeeds")
    fetched = jobs.get_job(name=created.name)
    expect(fetched.latest_created_execution.name == execution.name, "latestCreatedExecution points at it")
    expect(fetched.latest_created_execution.completion_status == run_v2.ExecutionReference.CompletionStatus.EXECUTION_SUCCEEDED,
           "completionStatus EXECUTION_SUCCEEDED")
    listed = [e.name for e in executions.list_executions(parent=created.name)]
    expect(listed == [execution.name], "list_executions sees it")
    jobs.delete_job(name=created.name).result()


def monitoring_scenario(endpoint, project, suffix):
    print("Monitoring channels and alert policies (googleapiclient, static discovery)")
    monitoring = googleapiclient.discovery.build(
        "monitoring", "v3", static_discovery=True, credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint + "/"})
    channel = monitoring.projects().notificationChannels().create(
        name=f"projects/{project}", body={"type": "email", "displayName": f"ops-{suffix}",
                                           "labels": {"email_address": "ops@example.com"}}).execute()
    expect(channel["name"].startswith(f"projects/{project}/notificationChannels/"), f"channel id assigned ({channel['name']})")
    expect(channel.get("enabled") is True, "channel enabled defaults to true")
    policy = monitoring.projects().alertPolicies().create(name=f"projects/{project}", body={
        "displayName": f"5xx-{suffix}", "combiner": "OR", "notificationChannels": [channel["name"]],
        "userLabels": {"managed-by": "stackctl"},
        "conditions": [{"displayName": "5xx ratio", "conditionThreshold": {
            "filter": "resource.type=\"cloud_run_revision\" AND metric.type=\"run.googleapis.com/request_count\"",
            "comparison": "COMPARISON_GT", "thresholdValue": 0.05, "duration": "300s",
            "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_DELTA", "crossSeriesReducer": "REDUCE_SUM"}],
            "trigger": {"count": 1}}}]}).execute()
    condition = policy["conditions"][0]
    expect(condition["name"].startswith(policy["name"] + "/conditions/"), "condition id assigned")
    expect(condition["conditionThreshold"]["filter"] == 'resource.type = "cloud_run_revision" AND metric.type = "run.googleapis.com/request_count"',
           f"filter normalized ({condition['conditionThreshold']['filter']})")
    expect(condition["conditionThreshold"]["aggregations"][0]["perSeriesAligner"] == "ALIGN_DELTA", "string enums for discovery clients")
    expect(policy.get("enabled") is True and "creationRecord" in policy, "enabled default and creationRecord")
    disabled = monitoring.projects().alertPolicies().patch(name=policy["name"], updateMask="enabled", body={"enabled": False}).execute()
    expect(disabled.get("enabled") is False, "explicit enabled=false is served")
    listed = monitoring.projects().alertPolicies().list(name=f"projects/{project}").execute()
    expect(any(p["name"] == policy["name"] for p in listed.get("alertPolicies", [])), "list sees the policy")
    monitoring.projects().alertPolicies().delete(name=policy["name"]).execute()
    monitoring.projects().notificationChannels().delete(name=channel["name"]).execute()


def iam_scenario(endpoint, project, suffix):
    print("IAM service accounts and resource policies (googleapiclient)")
    iam = googleapiclient.discovery.build("iam", "v1", static_discovery=True, credentials=AnonymousCredentials(),
                                          client_options={"api_endpoint": endpoint + "/"})
    crm = googleapiclient.discovery.build("cloudresourcemanager", "v3", static_discovery=True,
                                          credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint + "/"})
    account = iam.projects().serviceAccounts().create(name=f"projects/{project}", body={
        "accountId": f"runner-{suffix}", "serviceAccount": {"displayName": "Runner"}}).execute()
    expect(account["email"] == f"runner-{suffix}@{project}.iam.gserviceaccount.com", "service account email")
    policy = crm.projects().getIamPolicy(resource=f"projects/{project}", body={}).execute()
    policy.setdefault("bindings", []).append({"role": "roles/run.invoker", "members": [f"serviceAccount:{account['email']}"]})
    written = crm.projects().setIamPolicy(resource=f"projects/{project}", body={"policy": policy}).execute()
    expect(written["etag"] != policy.get("etag"), "setIamPolicy returns a new etag")
    try:
        crm.projects().setIamPolicy(resource=f"projects/{project}", body={"policy": policy}).execute()
        raise Mismatch("a stale etag must fail")
    except googleapiclient.errors.HttpError as error:
        expect(error.resp.status == 409, "stale policy etag answers 409 ABORTED")
    missing = {"bindings": [{"role": "roles/viewer", "members": [f"serviceAccount:ghost-{suffix}@{project}.iam.gserviceaccount.com"]}]}
    try:
        crm.projects().setIamPolicy(resource=f"projects/{project}", body={"policy": missing}).execute()
        raise Mismatch("binding a missing service account must fail")
    except googleapiclient.errors.HttpError as error:
        expect(error.resp.status == 400 and b"does not exist" in error.content, "missing SA in a binding answers 400")
    iam.projects().serviceAccounts().delete(name=f"projects/{project}/serviceAccounts/{account['email']}").execute()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project", default="p1")
    parser.add_argument("--region", default="us-central1")
    args = parser.parse_args()
    suffix = uuid.uuid4().hex[:6]
    crm = googleapiclient.discovery.build("cloudresourcemanager", "v3", static_discovery=True,
                                          credentials=AnonymousCredentials(), client_options={"api_endpoint": args.endpoint + "/"})
    project_number = crm.projects().get(name=f"projects/{args.project}").execute()["name"].split("/")[1]
    try:
        bigquery_scenario(args.endpoint, args.project, suffix)
        budgets_scenario(args.endpoint, project_number, suffix)
        run_jobs_scenario(args.endpoint, args.project, args.region, suffix)
        monitoring_scenario(args.endpoint, args.project, suffix)
        iam_scenario(args.endpoint, args.project, suffix)
    except Mismatch as mismatch:
        print(f"MISMATCH: {mismatch}")
        return 1
    print("all scenarios matched")
    return 0


if __name__ == "__main__":
    sys.exit(main())
