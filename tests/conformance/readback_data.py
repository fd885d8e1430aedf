#!/usr/bin/env python3
"""Reads back the data, money and observability resources stackctl created, with Google's own
clients: google-cloud-bigquery (datasets, tables), google-cloud-billing-budgets (REST transport)
and the discovery-based googleapiclient (Monitoring channels and alert policies). Prints one JSON
document a Rust test compares with the declared values:

    {"datasets": {...}, "tables": {...}, "budgets": {...}, "channels": {...}, "alerts": {...}}

    readback_data.py --endpoint http://127.0.0.1:PORT --project p1 --billing-account 012345-6789AB-CDEF01
"""

import argparse
import json
import sys

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.billing import budgets_v1
import googleapiclient.discovery


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--billing-account", required=True)
    args = parser.parse_args()
    credentials = AnonymousCredentials()
    out = {"datasets": {}, "tables": {}, "budgets": {}, "channels": {}, "alerts": {}}

    bq = bigquery.Client(project=args.project, credentials=credentials,
                         client_options={"api_endpoint": args.endpoint})
    for item in bq.list_datasets():
        dataset = bq.get_dataset(item.reference)
        out["datasets"][dataset.dataset_id] = {
            "location": dataset.location,
            "labels": dataset.labels,
            "default_partition_expiration_ms": dataset.default_partition_expiration_ms,
        }
        for t in bq.list_tables(dataset.reference):
            table = bq.get_table(t.reference)
            tp = table.time_partitioning
            out["tables"][table.table_id] = {
                "columns": [[f.name, f.field_type, f.mode] for f in table.schema],
                "partition": None if tp is None else {"type": tp.type_, "field": tp.field, "expiration_ms": tp.expiration_ms},
                "clustering": table.clustering_fields,
                "require_partition_filter": table.require_partition_filter,
                "labels": table.labels,
            }

    budgets = budgets_v1.BudgetServiceClient(credentials=credentials, transport="rest",
                                             client_options=ClientOptions(api_endpoint=args.endpoint))
    for b in budgets.list_budgets(parent=f"billingAccounts/{args.billing_account}"):
        money = b.amount.specified_amount
        out["budgets"][b.display_name] = {
            "units": money.units,
            "nanos": money.nanos,
            "currency": money.currency_code,
            "projects": list(b.budget_filter.projects),
            "thresholds": sorted(r.threshold_percent for r in b.threshold_rules),
            "channels": list(b.notifications_rule.monitoring_notification_channels),
        }

    monitoring = googleapiclient.discovery.build(
        "monitoring", "v3", credentials=credentials, static_discovery=True,
        client_options={"api_endpoint": args.endpoint})
    parent = f"projects/{args.project}"
    for c in monitoring.projects().notificationChannels().list(name=parent).execute().get("notificationChannels", []):
        out["channels"][c.get("userLabels", {}).get("stackctl-name", c["name"])] = {
            "name": c["name"], "type": c["type"], "email": c.get("labels", {}).get("email_address"),
            "display_name": c.get("displayName"),
        }
    for p in monitoring.projects().alertPolicies().list(name=parent).execute().get("alertPolicies", []):
        out["alerts"][p.get("userLabels", {}).get("stackctl-name", p["name"])] = {
            "display_name": p.get("displayName"),
            "channels": p.get("notificationChannels", []),
            "conditions": [
                {"filter": c["conditionThreshold"]["filter"],
                 "comparison": c["conditionThreshold"].get("comparison"),
                 "threshold": c["conditionThreshold"].get("thresholdValue"),
                 "duration": c["conditionThreshold"].get("duration")}
                for c in p.get("conditions", []) if "conditionThreshold" in c
            ],
        }
    json.dump(out, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
