"""Google's Python Cloud Tasks client (REST transport, anonymous credentials) creates a named task
with an OIDC token on a queue of the emulator, lists it, and finds a duplicate name refused:

    python_tasks.py --endpoint http://127.0.0.1:PORT --queue projects/P/locations/L/queues/Q \
        --url http://127.0.0.1:PORT/hook --service-account SA_EMAIL

Prints one JSON line: the created task's name and what list returned.
"""

import argparse
import json

from google.api_core.client_options import ClientOptions
from google.api_core.exceptions import Conflict
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--service-account", required=True)
    args = parser.parse_args()
    client = tasks_v2.CloudTasksClient(
        credentials=AnonymousCredentials(),
        transport="rest",
        client_options=ClientOptions(api_endpoint=args.endpoint),
    )
    task = tasks_v2.Task(
        name=f"{args.queue}/tasks/orders-create-1001",
        http_request=tasks_v2.HttpRequest(
            http_method=tasks_v2.HttpMethod.POST,
            url=args.url,
            headers={"Content-Type": "application/json"},
            body=b'{"id": 1001}',
            oidc_token=tasks_v2.OidcToken(service_account_email=args.service_account),
        ),
    )
    created = client.create_task(parent=args.queue, task=task)
    listed = [t.name for t in client.list_tasks(parent=args.queue)]
    try:
        client.create_task(parent=args.queue, task=task)
        duplicate = "accepted"
    except Conflict as error:  # HTTP 409; the REST transport maps by HTTP status
        duplicate = f"{int(error.code)} {error.message}"
    print(json.dumps({"created": created.name, "listed": listed, "duplicate": duplicate}))


if __name__ == "__main__":
    main()
