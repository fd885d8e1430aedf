//! The emulator's BigQuery rows as Google's Python `google-cloud-bigquery` client sees them:
//! load jobs (resumable and multipart uploads, explicit schema), a partition replaced with
//! WRITE_TRUNCATE on its decorator, streaming inserts with insertIds, `list_rows` (every type
//! round-trips), BigQuery's error shapes, and no acknowledged row lost when the emulator is
//! killed.

use serde_json::{Value, json};

use crate::support::*;

/// Runs `tests/conformance/bigquery_rows.py PHASE` against `emulator`.
fn bigquery_rows(emulator: &Emulator, phase: &str) -> Value {
    conformance_script(
        "bigquery_rows.py",
        &[phase, "--endpoint", &emulator.url, "--project", "p1"],
    )
}

/// `(order_id, customer, created_at day)` of each row, in the order listed.
fn orders(rows: &Value) -> Vec<(i64, String, String)> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            (
                row["order_id"].as_i64().expect("order_id"),
                row["customer"].as_str().unwrap_or_default().to_string(),
                row["created_at"].as_str().unwrap_or_default()[..10].to_string(),
            )
        })
        .collect()
}

fn order(id: i64, customer: &str, day: u32) -> (i64, String, String) {
    (id, customer.to_string(), format!("2024-01-{day:02}"))
}

#[test]
fn googles_bigquery_client_loads_replaces_a_partition_streams_and_reads_rows() {
    let emulator = Emulator::start();
    let seen = bigquery_rows(&emulator, "write");

    for load in seen["loads"].as_array().expect("loads") {
        assert_eq!(
            (&load["state"], &load["output_rows"], &load["errors"]),
            (&json!("DONE"), &json!(2), &Value::Null),
            "{load}"
        );
        assert!(load["output_bytes"].as_i64().unwrap_or(0) > 0, "{load}");
    }
    assert_eq!(
        orders(&seen["after_loads"]),
        [
            order(1, "ann", 1),
            order(2, "ann", 1),
            order(3, "bob", 2),
            order(4, "cy", 2)
        ]
    );
    assert_eq!(
        orders(&seen["after_replace"]),
        [order(5, "dee", 1), order(3, "bob", 2), order(4, "cy", 2)],
        "WRITE_TRUNCATE on $20240101 replaced that partition only"
    );
    assert_eq!(seen["after_replace"][0]["total"], 99.0);

    let mismatch = &seen["schema_mismatch"];
    assert_eq!(
        (
            &mismatch["exception"],
            &mismatch["code"],
            &mismatch["job_state"]
        ),
        (&json!("BadRequest"), &json!(400), &json!("DONE")),
        "{mismatch}"
    );
    assert_eq!(
        mismatch["error_result"],
        json!({"reason": "invalid", "message": "Provided Schema does not match Table p1:shop.orders. Field order_id has changed type from INTEGER to STRING"})
    );
    assert_eq!(mismatch["errors"][0]["reason"], "invalid");
    let outside = &seen["outside_partition"];
    assert_eq!(outside["exception"], "BadRequest", "{outside}");
    assert_eq!(
        outside["error_result"],
        json!({"reason": "invalid", "message": "Some rows belong to different partitions rather than destination partition 20240101"})
    );
    let bad_value = &seen["bad_value"];
    assert_eq!(bad_value["exception"], "BadRequest", "{bad_value}");
    assert!(
        bad_value["job_errors"][1]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("Field: order_id; Value: eight")),
        "{bad_value}"
    );

    // Streaming: the repeated insertId "s-10" was dropped; the request with a bad row wrote
    // nothing (its good row reported `stopped`).
    assert_eq!(seen["streaming_errors"][0], json!([]));
    assert_eq!(seen["streaming_errors"][1], json!([]));
    let refused = &seen["streaming_errors"][2];
    assert_eq!(refused[0]["errors"][0]["reason"], "stopped", "{refused}");
    assert_eq!(
        refused[1]["errors"][0],
        json!({"reason": "invalid", "location": "nope", "debugInfo": "", "message": "no such field: nope."})
    );
    let expected = [
        order(5, "dee", 1),
        order(3, "bob", 2),
        order(4, "cy", 2),
        order(10, "eve", 3),
        order(11, "fay", 3),
        order(12, "gus", 3),
    ];
    assert_eq!(orders(&seen["rows"]), expected);
    assert_eq!(seen["page_sizes"], json!([2, 2, 2]));
    assert_eq!(
        seen["selected"][0],
        json!({"customer": "dee", "order_id": 5})
    );
    // 6 rows of INT64 + TIMESTAMP + FLOAT (8 bytes each) + STRING (2 + length).
    let strings: usize = expected.iter().map(|(_, c, _)| 2 + c.len()).sum();
    assert_eq!(
        seen["table"],
        json!({"num_rows": 6, "num_bytes": 6 * 24 + strings})
    );
    // Every type, written by insert_rows and read by list_rows, comes back as it was sent.
    let types = &seen["types"];
    assert_eq!(types["errors"], json!([]), "{types}");
    assert_eq!(types["read"][0], types["sent"]);
    assert_eq!(
        types["read"][1],
        "{'i': None, 'f': None, 'b': None, 's': None, 'by': None, 'd': None, 'dt': None, 't': None, 'ts': None, 'n': None, 'bn': None, 'j': None, 'r': [], 'rec': []}"
    );
    // A resumable upload in 256 KiB chunks: several PUTs, one job, every row.
    let chunked = &seen["chunked"];
    assert_eq!(
        (&chunked["output_rows"], &chunked["num_rows"]),
        (&json!(10_000), &json!(10_000)),
        "{chunked}"
    );
    let (_, log) = emulator.http("GET", "/_emulator/requests", None);
    let log: Value = serde_json::from_str(&log).expect("request log");
    let mut puts_per_session = std::collections::BTreeMap::<String, usize>::new();
    for request in log.as_array().expect("requests") {
        if request["method"] == "PUT" && request["path"] == "/upload/bigquery/v2/projects/p1/jobs" {
            *puts_per_session
                .entry(request["query"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    let chunks = puts_per_session.values().max().copied().unwrap_or(0);
    let bytes = chunked["bytes"].as_u64().unwrap_or(0) as usize;
    assert_eq!(
        chunks,
        bytes.div_ceil(256 * 1024),
        "{bytes} bytes in 256 KiB chunks"
    );
    assert_eq!(seen["query"]["exception"], "MethodNotImplemented");
    assert!(
        seen["query"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Queries are not supported by this emulator")),
        "{}",
        seen["query"]
    );
}

#[test]
fn a_killed_emulator_keeps_every_acknowledged_row() {
    let emulator = Emulator::start();
    let written = bigquery_rows(&emulator, "write");
    assert_eq!(orders(&written["rows"]).len(), 6, "{written}");
    let state_dir = emulator.kill();

    let restarted = Emulator::start_in(state_dir, &[]);
    let read = bigquery_rows(&restarted, "read");
    assert_eq!(orders(&read["rows"]), orders(&written["rows"]));
    assert_eq!(read["rows"], written["rows"], "every column of every row");
    assert_eq!(read["table"], written["table"]);
}
