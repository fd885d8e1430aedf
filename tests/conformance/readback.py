#!/usr/bin/env python3
"""Lists every Cloud Tasks queue, Cloud Run service and Cloud Run job in one location with Google's official
Python clients (REST transport, anonymous credentials) and prints them as one JSON document,
as the clients parse them:

    {"queues": {"<queue id>": {...}}, "services": {...}, "jobs": {"<job id>": {...}}}

Each resource is `type(x).to_dict(x, use_integers_for_enums=False)`: proto field names
(snake_case), enum *names*, int64 as strings, durations as "0.100s", timestamps RFC 3339.
A Rust test can compare it with the values a stack declared.

    readback.py --endpoint http://127.0.0.1:PORT --project p1 --region us-central1
"""

import argparse
import json
import sys

from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2, tasks_v2


def as_dict(message):
    return type(message).to_dict(message, use_integers_for_enums=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args()
    parent = f"projects/{args.project}/locations/{args.region}"
    options = ClientOptions(api_endpoint=args.endpoint)
    credentials = AnonymousCredentials()
    tasks = tasks_v2.CloudTasksClient(credentials=credentials, transport="rest", client_options=options)
    services = run_v2.ServicesClient(credentials=credentials, transport="rest", client_options=options)
    jobs = run_v2.JobsClient(credentials=credentials, transport="rest", client_options=options)
    try:
        queues = {q.name.rsplit("/", 1)[1]: as_dict(q) for q in tasks.list_queues(parent=parent)}
        listed = {s.name.rsplit("/", 1)[1]: as_dict(s) for s in services.list_services(parent=parent)}
        job_list = {j.name.rsplit("/", 1)[1]: as_dict(j) for j in jobs.list_jobs(parent=parent)}
    except exceptions.GoogleAPICallError as error:
        print(f"readback failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    json.dump({"queues": queues, "services": listed, "jobs": job_list}, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
