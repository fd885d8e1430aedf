//! The emulator's state on disk: what it acknowledged survives a kill (no shutdown) and a restart.

use crate::support::*;

const QUEUES: &str = "/v2/projects/test-project/locations/us-central1/queues";

#[test]
fn a_killed_emulator_keeps_every_acknowledged_change_after_a_restart() {
    let emulator = Emulator::start();
    for i in 0..30 {
        let body =
            format!(r#"{{"name":"projects/test-project/locations/us-central1/queues/kept-{i}"}}"#);
        let (status, answer) = emulator.http("POST", QUEUES, Some(&body));
        assert_eq!(status, 200, "{answer}");
    }
    let (status, answer) = emulator.http("DELETE", &format!("{QUEUES}/kept-7"), None);
    assert_eq!(status, 200, "{answer}");

    let state_dir = emulator.kill();
    let restarted = Emulator::start_in(state_dir, &[]);
    for i in 0..30 {
        let (status, answer) = restarted.http("GET", &format!("{QUEUES}/kept-{i}"), None);
        let expected = if i == 7 { 404 } else { 200 };
        assert_eq!(status, expected, "kept-{i}: {answer}");
    }
}
