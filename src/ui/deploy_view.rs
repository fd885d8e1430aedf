//! Deploy output: one progress line per step on stderr, and the closing summaries on stdout.

use std::fmt::Write;

use crate::deploy::{
    BlobOutcome, BuiltImage, DeployEvent, DeployReporter, JobOutcome, PushReport, RolloutOutcome,
};
use crate::model::ResourceAddr;

/// `1.2 MiB`, `516.7 KiB`, `812 B`.
pub fn human_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB {
        format!("{:.1} MiB", b / KIB / KIB)
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// `sha256:0123456789ab`
fn short_digest(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

/// The text of one progress event.
pub fn event_text(event: &DeployEvent) -> String {
    match event {
        DeployEvent::Compiling { package, platform } => {
            format!("compiling {package} ({})", platform.describe())
        }
        DeployEvent::Compiled { bytes, elapsed } => format!(
            "compiled a {} binary in {:.1}s",
            human_bytes(*bytes),
            elapsed.as_secs_f64()
        ),
        DeployEvent::ImageBuilt { digest, bytes } => {
            format!("image {digest} ({} compressed)", human_bytes(*bytes))
        }
        DeployEvent::Blob {
            digest,
            bytes,
            outcome,
        } => {
            let what = match outcome {
                BlobOutcome::Exists => "already in the registry",
                BlobOutcome::Mounted => "mounted from another repository",
                BlobOutcome::Uploaded => "uploaded",
            };
            format!(
                "blob {} ({}) {what}",
                short_digest(digest),
                human_bytes(*bytes)
            )
        }
        DeployEvent::Pushed { image, tag } => match tag {
            Some(tag) => format!("pushed {image} (tag {tag})"),
            None => format!("pushed {image}"),
        },
        DeployEvent::Unchanged { image } => format!("already runs {image}: no new revision"),
        DeployEvent::Creating { revision } => format!("creating revision {revision}"),
        DeployEvent::Shifting { traffic } => format!("traffic: {traffic}"),
        DeployEvent::Waiting { phase } => phase.clone(),
        DeployEvent::Retrying {
            attempt,
            delay,
            reason,
        } => format!(
            "retrying in {:.1}s (attempt {attempt}): {reason}",
            delay.as_secs_f64()
        ),
    }
}

/// Plain progress lines on stderr (`service.worker: uploaded ...`), for terminals and CI alike.
pub struct DeployProgress;

impl DeployReporter for DeployProgress {
    fn event(&self, address: &ResourceAddr, event: DeployEvent) {
        eprintln!("{address}: {}", event_text(&event));
    }
}

/// `stackctl build`'s summary.
pub fn render_built(built: &[BuiltImage]) -> String {
    let mut out = String::new();
    for b in built {
        let _ = writeln!(
            out,
            "{}: {}@{} ({} compressed, binary {})",
            b.address,
            b.name,
            b.image.digest(),
            human_bytes(b.image.total_size()),
            human_bytes(b.binary_bytes)
        );
    }
    out
}

/// One service's state after a rollout, shift or rollback.
pub fn render_outcome(outcome: &RolloutOutcome) -> String {
    let mut out = String::new();
    let verb = if outcome.unchanged {
        "unchanged, serving"
    } else {
        "revision"
    };
    let _ = writeln!(out, "{}: {verb} {}", outcome.address, outcome.revision);
    let _ = writeln!(out, "  image   {}", outcome.image);
    let _ = writeln!(out, "  url     {}", outcome.url);
    if let Some(tag_url) = &outcome.tag_url {
        let _ = writeln!(out, "  tag url {tag_url}");
    }
    let _ = writeln!(out, "  traffic {}", outcome.traffic);
    out
}

/// The `pushed` line under a deployed service or job.
fn push_line(out: &mut String, pushed: &PushReport) {
    let _ = writeln!(
        out,
        "  pushed  {} blobs uploaded ({}), {} already there, {} mounted",
        pushed.count(BlobOutcome::Uploaded),
        human_bytes(pushed.uploaded_bytes),
        pushed.count(BlobOutcome::Exists),
        pushed.count(BlobOutcome::Mounted)
    );
}

/// `stackctl deploy`'s summary: uploads and the rollout of each service.
pub fn render_outcomes(outcomes: &[(PushReport, RolloutOutcome)]) -> String {
    let mut out = String::new();
    for (pushed, outcome) in outcomes {
        out.push_str(&render_outcome(outcome));
        push_line(&mut out, pushed);
    }
    out
}

/// `stackctl deploy`'s summary for jobs: the image each job's next execution runs.
pub fn render_job_outcomes(outcomes: &[(PushReport, JobOutcome)]) -> String {
    let mut out = String::new();
    for (pushed, outcome) in outcomes {
        let verb = if outcome.unchanged {
            "unchanged, job"
        } else {
            "job"
        };
        let _ = writeln!(out, "{}: {verb} {}", outcome.address, outcome.job);
        let _ = writeln!(out, "  image   {}", outcome.image);
        let _ = writeln!(out, "  digest  {}", pushed.digest);
        push_line(&mut out, pushed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_events_read_naturally() {
        assert_eq!(human_bytes(812), "812 B");
        assert_eq!(human_bytes(529_138), "516.7 KiB");
        assert_eq!(
            event_text(&DeployEvent::Blob {
                digest: "sha256:0123456789abcdef".into(),
                bytes: 2048,
                outcome: BlobOutcome::Exists
            }),
            "blob sha256:0123456789ab (2.0 KiB) already in the registry"
        );
    }
}
