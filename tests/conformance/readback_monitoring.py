#!/usr/bin/env python3
"""Reads what `[channel.*]`, `[uptime.*]`, `[alert.*]` and `[dashboard.*]` made with Google's
discovery-based googleapiclient (monitoring v3 and v1 from its bundled discovery documents,
anonymous credentials) and prints one JSON document keyed by each resource's `stackctl-name`
user label:

    {"channels": {"<name>": {...}}, "uptime_checks": {...}, "alerts": {...},
     "dashboards": {"<name>": {...dashboard, "chart_filters": ["...", ...]}}}

    readback_monitoring.py --endpoint http://127.0.0.1:PORT --project p1
"""

import argparse
import json
import sys

import googleapiclient.discovery
from googleapiclient.errors import HttpError
from google.auth.credentials import AnonymousCredentials


def by_name(items, labels_key):
    return {item.get(labels_key, {}).get("stackctl-name", item["name"]): item for item in items}


def chart_filters(dashboard):
    """Every time-series filter of the dashboard's widgets, wherever the layout puts them."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "filter" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard.get("mosaicLayout", dashboard.get("gridLayout", {})))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project", required=True)
    args = parser.parse_args()
    options = {"api_endpoint": args.endpoint}
    credentials = AnonymousCredentials()
    v3 = googleapiclient.discovery.build(
        "monitoring", "v3", credentials=credentials, static_discovery=True, client_options=options)
    v1 = googleapiclient.discovery.build(
        "monitoring", "v1", credentials=credentials, static_discovery=True, client_options=options)
    parent = f"projects/{args.project}"
    try:
        channels = v3.projects().notificationChannels().list(name=parent).execute()
        uptimes = v3.projects().uptimeCheckConfigs().list(parent=parent).execute()
        alerts = v3.projects().alertPolicies().list(name=parent).execute()
        dashboards = v1.projects().dashboards().list(parent=parent).execute()
        out = {
            "channels": by_name(channels.get("notificationChannels", []), "userLabels"),
            "uptime_checks": by_name(uptimes.get("uptimeCheckConfigs", []), "userLabels"),
            "alerts": by_name(alerts.get("alertPolicies", []), "userLabels"),
            "dashboards": {},
        }
        for listed in dashboards.get("dashboards", []):
            # Read each one again by name, as a console link would.
            dashboard = v1.projects().dashboards().get(name=listed["name"]).execute()
            dashboard["chart_filters"] = chart_filters(dashboard)
            out["dashboards"][dashboard.get("labels", {}).get("stackctl-name", dashboard["name"])] = dashboard
    except HttpError as error:
        print(f"readback failed: {error}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
