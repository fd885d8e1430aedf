#!/usr/bin/env python3
"""Drives Google's official Python clients (REST transport, anonymous credentials) through a
full Cloud Tasks + Cloud Run scenario against a running stackctl gcp-emulator.

Exits non-zero with a clear message on the first mismatch.

    python_clients.py --endpoint http://127.0.0.1:PORT --project p1 --region us-central1
"""

import argparse
import sys
import uuid

from google.api import launch_stage_pb2
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2, tasks_v2
from google.protobuf import duration_pb2, field_mask_pb2


class Mismatch(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Mismatch(message)
    print(f"  ok: {message}")


def expect_error(kind, call, message, status=None):
    """Python's REST clients map errors by HTTP status (409 -> Conflict, 400 -> BadRequest);
    `status` checks Google's canonical status name in the error body too."""
    try:
        call()
    except kind as error:
        if status is not None:
            body_status = error.response.json().get("error", {}).get("status") if error.response is not None else None
            if body_status != status:
                raise Mismatch(f"{message}: expected status {status}, got {body_status}")
        print(f"  ok: {message} ({type(error).__name__} {status or ''}: {error.message})")
        return error
    except exceptions.GoogleAPICallError as error:
        raise Mismatch(f"{message}: expected {kind.__name__}, got {type(error).__name__} {error}")
    raise Mismatch(f"{message}: expected {kind.__name__}, the call succeeded")


def clients(endpoint):
    options = ClientOptions(api_endpoint=endpoint)
    credentials = AnonymousCredentials()
    tasks = tasks_v2.CloudTasksClient(credentials=credentials, transport="rest", client_options=options)
    services = run_v2.ServicesClient(credentials=credentials, transport="rest", client_options=options)
    revisions = run_v2.RevisionsClient(credentials=credentials, transport="rest", client_options=options)
    return tasks, services, revisions


def tasks_scenario(tasks, parent, suffix):
    print("Cloud Tasks queues")
    names = [f"{parent}/queues/conf-{suffix}-{i}" for i in range(3)]
    created = tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=names[0]))
    expect(created.name == names[0], "create_queue echoes the name")
    expect(created.state == tasks_v2.Queue.State.RUNNING, "a new queue is RUNNING")
    expect(created.rate_limits.max_dispatches_per_second == 500.0, "default maxDispatchesPerSecond 500")
    expect(created.rate_limits.max_burst_size == 100, "default maxBurstSize 100")
    expect(created.rate_limits.max_concurrent_dispatches == 1000, "default maxConcurrentDispatches 1000")
    expect(created.retry_config.max_attempts == 100, "default maxAttempts 100")
    expect(created.retry_config.min_backoff.total_seconds() == 0.1, "default minBackoff 0.1s")
    expect(created.retry_config.max_backoff.total_seconds() == 3600, "default maxBackoff 3600s")
    expect(created.retry_config.max_doublings == 16, "default maxDoublings 16")
    expect_error(exceptions.Conflict, lambda: tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=names[0])),
                 "creating it again is 409", status="ALREADY_EXISTS")

    fetched = tasks.get_queue(name=names[0])
    expect(fetched == created, "get_queue returns what create returned")

    target = tasks_v2.HttpTarget(
        http_method=tasks_v2.HttpMethod.PUT,
        uri_override=tasks_v2.UriOverride(
            scheme=tasks_v2.UriOverride.Scheme.HTTPS, host="svc.example.com", port=8443,
            path_override=tasks_v2.PathOverride(path="/hooks/x"),
            uri_override_enforce_mode=tasks_v2.UriOverride.UriOverrideEnforceMode.ALWAYS),
        header_overrides=[tasks_v2.HttpTarget.HeaderOverride(header=tasks_v2.HttpTarget.Header(key="X-A", value="1"))],
        oidc_token=tasks_v2.OidcToken(service_account_email="invoker@p.iam.gserviceaccount.com", audience="https://svc"),
    )
    for name in names[1:]:
        tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=name, http_target=target))
    round_trip = tasks.get_queue(name=names[1]).http_target
    expect(round_trip == target, "httpTarget (uriOverride, httpMethod, oidcToken, headerOverrides) round-trips")

    mine = [q.name for q in tasks.list_queues(request={"parent": parent, "page_size": 1}) if f"conf-{suffix}-" in q.name]
    expect(mine == names, f"list_queues with page_size=1 pages through all {len(names)} queues in name order")
    first_page = tasks.list_queues(request={"parent": parent, "page_size": 1})
    expect(first_page.next_page_token != "", "a short page carries next_page_token")
    expect_error(exceptions.BadRequest, lambda: list(tasks.list_queues(request={"parent": parent, "page_token": "garbage"})),
                 "an invalid page token is BadRequest")

    update = tasks_v2.Queue(
        name=names[0],
        rate_limits=tasks_v2.RateLimits(max_dispatches_per_second=7, max_concurrent_dispatches=3),
        retry_config=tasks_v2.RetryConfig(max_attempts=5, min_backoff=duration_pb2.Duration(seconds=2)),
    )
    mask = field_mask_pb2.FieldMask(paths=["rate_limits.max_dispatches_per_second", "retry_config.max_attempts"])
    updated = tasks.update_queue(queue=update, update_mask=mask)
    expect(updated.rate_limits.max_dispatches_per_second == 7, "update_queue applies masked maxDispatchesPerSecond")
    expect(updated.retry_config.max_attempts == 5, "update_queue applies masked maxAttempts")
    expect(updated.rate_limits.max_concurrent_dispatches == 1000, "fields outside the mask are untouched")
    expect(updated.retry_config.min_backoff.total_seconds() == 0.1, "minBackoff outside the mask is untouched")

    upserted_name = f"{parent}/queues/conf-{suffix}-upsert"
    upserted = tasks.update_queue(queue=tasks_v2.Queue(name=upserted_name, retry_config=tasks_v2.RetryConfig(max_attempts=3)))
    expect(upserted.retry_config.max_attempts == 3 and upserted.state == tasks_v2.Queue.State.RUNNING,
           "update_queue without a mask creates a missing queue")

    paused = tasks.pause_queue(name=names[0])
    expect(paused.state == tasks_v2.Queue.State.PAUSED, "pause_queue -> PAUSED")
    resumed = tasks.resume_queue(name=names[0])
    expect(resumed.state == tasks_v2.Queue.State.RUNNING, "resume_queue -> RUNNING")
    purged = tasks.purge_queue(name=names[0])
    expect(purged.purge_time is not None and purged.purge_time.year >= 2024, "purge_queue sets purge_time")

    for name in names + [upserted_name]:
        tasks.delete_queue(name=name)
    expect_error(exceptions.NotFound, lambda: tasks.get_queue(name=names[0]), "get after delete is NotFound")
    error = expect_error(exceptions.BadRequest,
                         lambda: tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=names[0])),
                         "re-creating a just-deleted queue is refused by the tombstone", status="FAILED_PRECONDITION")
    expect("existed too recently" in error.message, "the tombstone message matches Google's")
    expect_error(exceptions.BadRequest,
                 lambda: tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=f"{parent}/queues/bad_name")),
                 "an invalid queue id is BadRequest", status="INVALID_ARGUMENT")


def service_template(image, **extra):
    return run_v2.RevisionTemplate(containers=[run_v2.Container(image=image)], **extra)


def run_scenario(services, revisions, parent, suffix):
    print("Cloud Run services")
    service_id = f"conf-{suffix}"
    name = f"{parent}/services/{service_id}"
    operation = services.create_service(
        parent=parent, service_id=service_id,
        service=run_v2.Service(template=service_template("us-docker.pkg.dev/p/r/app:1"), labels={"owner": "stackctl"}))
    expect(operation.operation.name.startswith(f"{parent}/operations/") and not operation.operation.done,
           "create_service returns a running operation")
    created = operation.result(timeout=30)
    expect(created.name == name, "the LRO result is the service")
    expect(created.generation == 1 and created.observed_generation == 1, "generation 1 observed")
    expect(not created.reconciling, "reconciling is false once the operation is done")
    expect(created.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED, "terminal condition succeeded")
    expect(launch_stage_pb2.LaunchStage.Name(created.launch_stage) == "GA", "launch_stage GA (proto number 4)")
    expect(created.ingress == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL, "ingress defaults to ALL")
    container = created.template.containers[0]
    expect(dict(container.resources.limits) == {"cpu": "1000m", "memory": "512Mi"}, "default resource limits echoed")
    expect(container.resources.cpu_idle, "cpu_idle defaults to true")
    expect(created.template.max_instance_request_concurrency == 80, "default concurrency 80")
    expect(created.template.timeout.total_seconds() == 300, "default timeout 300s")
    expect(created.template.scaling.max_instance_count == 100, "default max instances 100")
    expect(created.template.service_account.endswith("-compute@developer.gserviceaccount.com"), "default service account")
    expect(len(created.traffic) == 1 and created.traffic[0].type_ == run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
           and created.traffic[0].percent == 100, "default traffic LATEST 100")
    expect(created.latest_ready_revision == created.latest_created_revision != "", "latest ready == latest created")
    expect(created.uri.startswith(f"https://{service_id}-"), "uri assigned")
    expect(dict(created.labels) == {"owner": "stackctl"}, "labels kept")

    fetched = services.get_service(name=name)
    expect(fetched.etag == created.etag and fetched.generation == 1, "get_service matches the LRO result")
    listed = [s.name for s in services.list_services(request={"parent": parent, "page_size": 1})]
    expect(name in listed, "list_services includes the service")

    relabelled = run_v2.Service(name=name, labels={"owner": "stackctl", "tier": "b"}, template=fetched.template)
    after_labels = services.update_service(service=relabelled).result(timeout=30)
    expect(after_labels.generation == 2, "a label change bumps generation")
    expect(after_labels.latest_ready_revision == created.latest_ready_revision, "a label change creates no revision")

    rollout = run_v2.Service(name=name, template=service_template("us-docker.pkg.dev/p/r/app:2"))
    mask = field_mask_pb2.FieldMask(paths=["template"])
    rolled = services.update_service(service=rollout, update_mask=mask).result(timeout=30)
    expect(rolled.generation == 3, "a template change bumps generation")
    expect(rolled.latest_ready_revision != created.latest_ready_revision, "a template change creates a new revision")
    expect(dict(rolled.labels) == {"owner": "stackctl", "tier": "b"}, "the masked update kept the labels")
    revision_names = [r.name for r in revisions.list_revisions(parent=name)]
    expect(len(revision_names) == 2 and rolled.latest_ready_revision in revision_names, "two revisions listed")
    revision = revisions.get_revision(name=rolled.latest_ready_revision)
    expect(revision.containers[0].image.endswith("app:2"), "get_revision returns the new image")

    stale = run_v2.Service(name=name, template=service_template("us-docker.pkg.dev/p/r/app:3"), etag=created.etag)
    expect_error(exceptions.Conflict, lambda: services.update_service(service=stale), "a stale etag is 409", status="ABORTED")
    reused = run_v2.Service(name=name, template=service_template(
        "us-docker.pkg.dev/p/r/app:4", revision=rolled.latest_ready_revision.rsplit("/", 1)[1]))
    expect_error(exceptions.Conflict, lambda: services.update_service(service=reused),
                 "reusing a revision name with a different template is a 409", status="ALREADY_EXISTS")

    expect_error(exceptions.BadRequest,
                 lambda: services.create_service(parent=parent, service_id="Bad_Id", service=run_v2.Service(template=service_template("x"))),
                 "an invalid service id is rejected", status="INVALID_ARGUMENT")

    deleted = services.delete_service(name=name).result(timeout=30)
    expect(deleted.name == name, "delete_service's LRO returns the deleted service")
    expect_error(exceptions.NotFound, lambda: services.get_service(name=name), "get after delete is NotFound")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", required=True)
    args = parser.parse_args()
    parent = f"projects/{args.project}/locations/{args.region}"
    suffix = uuid.uuid4().hex[:6]
    tasks, services, revisions = clients(args.endpoint)
    try:
        tasks_scenario(tasks, parent, suffix)
        run_scenario(services, revisions, parent, suffix)
    except Mismatch as mismatch:
        print(f"MISMATCH: {mismatch}", file=sys.stderr)
        return 1
    except exceptions.GoogleAPICallError as error:
        print(f"MISMATCH: unexpected API error {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print("python clients: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
