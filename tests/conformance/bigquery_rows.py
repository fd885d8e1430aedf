#!/usr/bin/env python3
"""Drives Google's google-cloud-bigquery client against the emulator's BigQuery rows: load jobs
with an explicit schema (a resumable upload and a multipart one), a partition replaced with
WRITE_TRUNCATE on its decorator, streaming inserts with insertIds, list_rows, and the errors of
a schema mismatch and of rows outside the decorator's partition, and a value of every type
round-tripped by insert_rows and list_rows. Prints one JSON document of
what the client saw, for a Rust test to check.

    bigquery_rows.py write --endpoint http://127.0.0.1:PORT --project p1
    bigquery_rows.py read  --endpoint http://127.0.0.1:PORT --project p1   (rows only)
"""

import argparse
import datetime
import decimal
import io
import json

from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery import client as bigquery_client

SCHEMA = [
    bigquery.SchemaField("order_id", "INTEGER", mode="REQUIRED"),
    bigquery.SchemaField("created_at", "TIMESTAMP", mode="REQUIRED"),
    bigquery.SchemaField("customer", "STRING"),
    bigquery.SchemaField("total", "FLOAT"),
]


def ndjson(rows):
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def order(order_id, day, customer="ann", total=10.5):
    return {"order_id": order_id, "created_at": f"2024-01-{day:02d} 12:00:00 UTC",
            "customer": customer, "total": total}


def load_config(write="WRITE_APPEND", schema=SCHEMA):
    return bigquery.LoadJobConfig(schema=schema, write_disposition=write,
                                  source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON)


def failed_load(client, data, destination, config):
    """Runs a load expected to fail; returns what the client raised and what the job reports."""
    job = client.load_table_from_file(io.BytesIO(data), destination, job_config=config)
    try:
        job.result()
    except exceptions.GoogleAPICallError as error:
        return {"exception": type(error).__name__, "code": error.code,
                "message": error.message, "errors": error.errors,
                "job_state": job.state, "error_result": job.error_result, "job_errors": job.errors}
    return {"exception": None, "job_state": job.state}


def rows_of(client, table, **kwargs):
    return [{key: (value.isoformat() if hasattr(value, "isoformat") else value)
             for key, value in row.items()}
            for row in client.list_rows(table, **kwargs)]


def round_trip_every_type(client, project):
    """insert_rows one row with a value of every type, and one of NULLs; list_rows reads them."""
    schema = [bigquery.SchemaField(name, kind, mode=mode) for name, kind, mode in [
        ("i", "INT64", "NULLABLE"), ("f", "FLOAT64", "NULLABLE"), ("b", "BOOL", "NULLABLE"),
        ("s", "STRING", "NULLABLE"), ("by", "BYTES", "NULLABLE"), ("d", "DATE", "NULLABLE"),
        ("dt", "DATETIME", "NULLABLE"), ("t", "TIME", "NULLABLE"), ("ts", "TIMESTAMP", "NULLABLE"),
        ("n", "NUMERIC", "NULLABLE"), ("bn", "BIGNUMERIC", "NULLABLE"), ("j", "JSON", "NULLABLE"),
        ("r", "STRING", "REPEATED")]]
    schema.append(bigquery.SchemaField("rec", "RECORD", mode="REPEATED", fields=[
        bigquery.SchemaField("k", "STRING"), bigquery.SchemaField("v", "INT64")]))
    table = client.create_table(bigquery.Table(f"{project}.shop.types", schema=schema))
    sent = {"i": 7, "f": 1.25, "b": True, "s": "héllo", "by": b"\x00\x01",
            "d": datetime.date(2024, 1, 2), "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, 678900),
            "t": datetime.time(3, 4, 5),
            "ts": datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc),
            "n": decimal.Decimal("1.23"), "bn": decimal.Decimal("123456789.123"),
            "j": {"a": [1, 2]}, "r": ["x", "y"], "rec": [{"k": "a", "v": 1}, {"k": "b", "v": None}]}
    errors = client.insert_rows(table, [sent, {"i": None}])
    read = [dict(row) for row in client.list_rows(client.get_table(table.reference))]
    return {"errors": errors, "sent": repr(sent), "read": [repr(row) for row in read]}


def chunked_load(client, project):
    """A resumable upload in 256 KiB chunks (the client's 100 MB default made small): each chunk
    but the last is answered 308, the last runs the job."""
    default = bigquery_client._DEFAULT_CHUNKSIZE
    bigquery_client._DEFAULT_CHUNKSIZE = 256 * 1024
    try:
        rows = [{"order_id": i, "created_at": "2024-02-01 00:00:00", "customer": "c" * 40}
                for i in range(10000)]
        data = ndjson(rows)
        job = client.load_table_from_file(io.BytesIO(data), f"{project}.shop.chunked",
                                          job_config=load_config())
        job.result()
    finally:
        bigquery_client._DEFAULT_CHUNKSIZE = default
    return {"bytes": len(data), "output_rows": job.output_rows,
            "num_rows": client.get_table(f"{project}.shop.chunked").num_rows}


def write(client, project):
    out = {}
    client.create_dataset("shop")
    table = bigquery.Table(f"{project}.shop.orders", schema=SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY,
                                                        field="created_at")
    client.create_table(table)
    orders = f"{project}.shop.orders"

    # A resumable upload (no size given) and a multipart one (load_table_from_json), each
    # with an explicit schema.
    day1 = client.load_table_from_file(io.BytesIO(ndjson([order(1, 1), order(2, 1)])),
                                       orders, job_config=load_config())
    day1.result()
    day2 = client.load_table_from_json([order(3, 2, "bob"), order(4, 2, "cy")], orders,
                                       job_config=load_config())
    day2.result()
    out["loads"] = [{"state": job.state, "output_rows": job.output_rows,
                     "output_bytes": job.output_bytes, "errors": job.errors}
                    for job in (day1, day2)]
    out["after_loads"] = rows_of(client, client.get_table(orders))

    # WRITE_TRUNCATE on a decorator replaces exactly that partition.
    replace = client.load_table_from_file(io.BytesIO(ndjson([order(5, 1, "dee", 99.0)])),
                                          f"{orders}$20240101",
                                          job_config=load_config("WRITE_TRUNCATE"))
    replace.result()
    out["replace"] = {"state": replace.state, "output_rows": replace.output_rows}
    out["after_replace"] = rows_of(client, client.get_table(orders))

    mismatched = [bigquery.SchemaField("order_id", "STRING", mode="REQUIRED")] + SCHEMA[1:]
    out["schema_mismatch"] = failed_load(client, ndjson([order(6, 3)]), orders,
                                         load_config(schema=mismatched))
    out["outside_partition"] = failed_load(client, ndjson([order(7, 2)]), f"{orders}$20240101",
                                           load_config("WRITE_TRUNCATE"))
    out["bad_value"] = failed_load(client, ndjson([{**order(8, 3), "order_id": "eight"}]),
                                   orders, load_config())

    # Streaming: the second insert repeats insertId "s-10" (deduped) and adds one row.
    table = client.get_table(orders)
    first = client.insert_rows_json(table, [order(10, 3, "eve"), order(11, 3, "fay")],
                                    row_ids=["s-10", "s-11"])
    second = client.insert_rows_json(table, [order(10, 3, "eve"), order(12, 3, "gus")],
                                     row_ids=["s-10", "s-12"])
    invalid = client.insert_rows_json(table, [order(13, 3), {**order(14, 3), "nope": 1}],
                                      row_ids=["s-13", "s-14"])
    out["streaming_errors"] = [first, second, invalid]

    table = client.get_table(orders)
    out["table"] = {"num_rows": table.num_rows, "num_bytes": table.num_bytes}
    out["rows"] = rows_of(client, table)
    iterator = client.list_rows(table, page_size=2)
    out["page_sizes"] = [page.num_items for page in iterator.pages]
    out["selected"] = rows_of(client, table, selected_fields=[SCHEMA[2], SCHEMA[0]])
    out["types"] = round_trip_every_type(client, project)
    out["chunked"] = chunked_load(client, project)
    try:
        client.query("SELECT 1").result()
        out["query"] = None
    except exceptions.GoogleAPICallError as error:
        out["query"] = {"exception": type(error).__name__, "message": error.message}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["write", "read"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--project", required=True)
    args = parser.parse_args()
    client = bigquery.Client(project=args.project, credentials=AnonymousCredentials(),
                             client_options={"api_endpoint": args.endpoint})
    if args.phase == "write":
        out = write(client, args.project)
    else:
        table = client.get_table(f"{args.project}.shop.orders")
        out = {"rows": rows_of(client, table),
               "table": {"num_rows": table.num_rows, "num_bytes": table.num_bytes}}
    print(json.dumps(out, indent=1, sort_keys=True, default=str))


if __name__ == "__main__":
    main()
