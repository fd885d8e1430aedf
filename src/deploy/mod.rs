//! Build, push and roll out workers without Docker: cargo -> static binary -> reproducible OCI
//! image -> registry -> Cloud Run revision pinned by digest (services) or the job's container
//! image pinned by digest (jobs); plus traffic shifts and rollback.
//!
//! The engine never prints: every step is reported through [`DeployReporter`].

pub mod compile;
pub mod image;
pub mod push;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{ServiceConfig, Stack};
use crate::model::ResourceAddr;
use crate::provider::jobs::JobRecord;
use crate::provider::run::{OperationObserver, RolloutState, RolloutWrite};
use crate::provider::{ApiError, Cloud, RetryObserver};
use crate::resources::service::full_name;

pub use compile::{CompileError, CompiledBinary, Platform};
pub use image::{ImageError, OciImage};
pub use push::{BlobOutcome, ImageName, PushError, PushReport, Pusher, Transport};
pub use traffic::TrafficError;

/// The CA bundle copied into every image's base layer (Debian/Ubuntu's path).
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a build, push or rollout failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{address}: {source}")]
    Compile {
        address: ResourceAddr,
        source: CompileError,
    },
    #[error("{address}: {source}")]
    Image {
        address: ResourceAddr,
        source: ImageError,
    },
    #[error(
        "{address}: cannot read the CA bundle {path}: {source}\n  hint: install the ca-certificates package"
    )]
    CaBundle {
        address: ResourceAddr,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{address}: {source}")]
    Push {
        address: ResourceAddr,
        source: PushError,
    },
    #[error("{address}: {source}")]
    Api {
        address: ResourceAddr,
        source: ApiError,
    },
    #[error("{address}: {source}")]
    Traffic {
        address: ResourceAddr,
        source: TrafficError,
    },
    #[error(
        "{address}: the service {name} does not exist yet\n  hint: run `stackctl apply` first (it creates the service with a placeholder image), then deploy"
    )]
    NoService { address: ResourceAddr, name: String },
    #[error(
        "{address}: the job {name} does not exist yet\n  hint: run `stackctl apply` first (it creates the job with a placeholder image), then deploy"
    )]
    NoJob { address: ResourceAddr, name: String },
    #[error(
        "{address}: revision {revision} failed to become ready: {message}\n  traffic is unchanged: {traffic}"
    )]
    RevisionFailed {
        address: ResourceAddr,
        revision: String,
        message: String,
        traffic: String,
    },
}

/// One step of a deploy, for progress output.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployEvent {
    Compiling {
        package: String,
        platform: Platform,
    },
    Compiled {
        bytes: u64,
        elapsed: Duration,
    },
    ImageBuilt {
        digest: String,
        bytes: u64,
    },
    Blob {
        digest: String,
        bytes: u64,
        outcome: BlobOutcome,
    },
    Pushed {
        image: String,
        tag: Option<String>,
    },
    Unchanged {
        image: String,
    },
    Creating {
        revision: String,
    },
    Shifting {
        traffic: String,
    },
    Waiting {
        phase: String,
    },
    Retrying {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
}

/// Receives deploy progress. Implemented by the terminal UI and by tests.
pub trait DeployReporter: Send + Sync {
    fn event(&self, address: &ResourceAddr, event: DeployEvent);
}

/// Adapts a [`DeployReporter`] to the provider's and the pusher's observers for one resource.
struct Observer<'a> {
    address: &'a ResourceAddr,
    reporter: &'a dyn DeployReporter,
}

impl RetryObserver for Observer<'_> {
    fn retrying(&self, attempt: u32, delay: Duration, reason: &str) {
        self.reporter.event(
            self.address,
            DeployEvent::Retrying {
                attempt,
                delay,
                reason: reason.to_string(),
            },
        );
    }
}

impl OperationObserver for Observer<'_> {
    fn phase(&self, phase: &str) {
        self.reporter.event(
            self.address,
            DeployEvent::Waiting {
                phase: phase.to_string(),
            },
        );
    }
}

impl push::PushObserver for Observer<'_> {
    fn retrying(&self, attempt: u32, delay: Duration, reason: &str) {
        RetryObserver::retrying(self, attempt, delay, reason);
    }

    fn blob(&self, digest: &str, size: u64, outcome: BlobOutcome) {
        self.reporter.event(
            self.address,
            DeployEvent::Blob {
                digest: digest.to_string(),
                bytes: size,
                outcome,
            },
        );
    }
}

/// A built image and where it goes.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub address: ResourceAddr,
    pub name: ImageName,
    pub image: OciImage,
    pub binary_bytes: u64,
    pub compile_time: Duration,
}

/// The Artifact Registry name of a built service's or job's image: its GCP id is the image's
/// name, `REGION-docker.pkg.dev/PROJECT/REPO/ID`.
pub fn image_name(stack: &Stack, id: &str) -> Option<ImageName> {
    let repository = stack.settings.image_repository.as_deref()?;
    Some(ImageName::artifact_registry(
        &stack.settings.region,
        &stack.settings.project,
        repository,
        id,
    ))
}

/// Compiles a service's or job's `build` package (`id` is its GCP id) and assembles its image.
pub async fn build(
    stack: &Stack,
    address: &ResourceAddr,
    id: &str,
    package_dir: &Path,
    platform: Platform,
    reporter: &dyn DeployReporter,
) -> Result<BuiltImage, DeployError> {
    let name = image_name(stack, id).unwrap_or_else(|| {
        ImageName::artifact_registry(&stack.settings.region, &stack.settings.project, "-", id)
    });
    reporter.event(
        address,
        DeployEvent::Compiling {
            package: package_dir.display().to_string(),
            platform,
        },
    );
    let binary = compile::compile(package_dir, platform)
        .await
        .map_err(|source| DeployError::Compile {
            address: address.clone(),
            source,
        })?;
    reporter.event(
        address,
        DeployEvent::Compiled {
            bytes: binary.bytes.len() as u64,
            elapsed: binary.elapsed,
        },
    );
    let ca_bundle = std::fs::read(HOST_CA_BUNDLE).map_err(|source| DeployError::CaBundle {
        address: address.clone(),
        path: PathBuf::from(HOST_CA_BUNDLE),
        source,
    })?;
    let inputs = image::ImageInputs {
        binary_name: binary.name.clone(),
        binary: binary.bytes,
        ca_bundle,
        env: Vec::new(),
        created: image::created_time(std::env::var("SOURCE_DATE_EPOCH").ok().as_deref()),
    };
    let built = image::build_image(&inputs).map_err(|source| DeployError::Image {
        address: address.clone(),
        source,
    })?;
    reporter.event(
        address,
        DeployEvent::ImageBuilt {
            digest: built.digest().to_string(),
            bytes: built.total_size(),
        },
    );
    Ok(BuiltImage {
        address: address.clone(),
        name,
        binary_bytes: inputs.binary.len() as u64,
        compile_time: binary.elapsed,
        image: built,
    })
}

/// `git-<12 hex>` of the commit checked out at `dir` (`-dirty` when the package has
/// uncommitted changes); `None` outside a git checkout.
pub async fn git_tag(dir: &Path) -> Option<String> {
    let head = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .await
        .ok()
        .filter(|o| o.status.success())?;
    let sha = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let clean = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["diff", "--quiet", "HEAD", "--", "."])
        .status()
        .await
        .is_ok_and(|s| s.success());
    Some(if clean {
        format!("git-{sha}")
    } else {
        format!("git-{sha}-dirty")
    })
}

/// Pushes a built image.
pub async fn push(
    pusher: &Pusher,
    built: &BuiltImage,
    tag: Option<&str>,
    reporter: &dyn DeployReporter,
) -> Result<PushReport, DeployError> {
    let observer = Observer {
        address: &built.address,
        reporter,
    };
    let report = pusher
        .push(&built.name, &built.image, tag, &observer)
        .await
        .map_err(|source| DeployError::Push {
            address: built.address.clone(),
            source,
        })?;
    reporter.event(
        &built.address,
        DeployEvent::Pushed {
            image: report.image.clone(),
            tag: report.tag.clone(),
        },
    );
    Ok(report)
}

/// How a rollout moves traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficMode {
    /// Once the new revision is ready, all traffic goes to the latest ready revision.
    Promote,
    /// The new revision gets 0% (and the tag, if any, for its own URL); traffic stays put.
    NoTraffic { tag: Option<String> },
}

/// Where a service stands after a rollout, shift or rollback.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RolloutOutcome {
    pub address: String,
    /// The revision this command created or routed to.
    pub revision: String,
    pub image: String,
    pub url: String,
    /// e.g. `worker-00001-abc 90%, worker-1a2b3c4-5d6e7 10% (candidate)`
    pub traffic: String,
    /// The URL of the tag the command set, if any.
    pub tag_url: Option<String>,
    /// The service already ran this image: no new revision.
    pub unchanged: bool,
}

fn outcome(
    address: &ResourceAddr,
    state: &RolloutState,
    revision: &str,
    tag: Option<&str>,
    unchanged: bool,
) -> RolloutOutcome {
    RolloutOutcome {
        address: address.to_string(),
        revision: revision.to_string(),
        image: state.image.clone(),
        url: state.uri.clone(),
        traffic: traffic::describe(state),
        tag_url: tag.and_then(|tag| {
            state
                .traffic_statuses
                .iter()
                .find(|s| s.target.tag.as_deref() == Some(tag))
                .and_then(|s| s.uri.clone())
        }),
        unchanged,
    }
}

async fn current_state(
    cloud: &Cloud,
    address: &ResourceAddr,
    name: &str,
    observer: &Observer<'_>,
) -> Result<RolloutState, DeployError> {
    cloud
        .get_rollout_state(name, observer)
        .await
        .map_err(|source| DeployError::Api {
            address: address.clone(),
            source,
        })?
        .ok_or_else(|| DeployError::NoService {
            address: address.clone(),
            name: name.to_string(),
        })
}

/// Points the service at the pushed image (`NAME@sha256:...`): a new revision at 0% first, so a
/// revision that fails leaves traffic untouched; then, unless `NoTraffic`, all traffic to it.
pub async fn roll_out(
    cloud: &Cloud,
    stack: &Stack,
    address: &ResourceAddr,
    cfg: &ServiceConfig,
    pushed: &PushReport,
    mode: &TrafficMode,
    reporter: &dyn DeployReporter,
) -> Result<RolloutOutcome, DeployError> {
    let (image_ref, digest) = (pushed.image.as_str(), pushed.digest.as_str());
    let observer = Observer { address, reporter };
    let name = full_name(stack, &cfg.id);
    let api = |source| DeployError::Api {
        address: address.clone(),
        source,
    };
    let state = current_state(cloud, address, &name, &observer).await?;
    let tag = match mode {
        TrafficMode::NoTraffic { tag } => tag.as_deref(),
        TrafficMode::Promote => None,
    };
    let already = state.image == image_ref
        && state.failure.is_none()
        && state.latest_ready_revision == state.latest_created_revision;
    if already && tag.is_none() {
        reporter.event(
            address,
            DeployEvent::Unchanged {
                image: image_ref.to_string(),
            },
        );
        let serving = traffic::Serving::of(&state);
        let all_on_latest =
            serving.percents.get(&state.latest_ready_revision).copied() == Some(100);
        let state = if *mode == TrafficMode::Promote && !all_on_latest {
            let traffic = traffic::promote(&state);
            reporter.event(
                address,
                DeployEvent::Shifting {
                    traffic: "100% to the latest ready revision".into(),
                },
            );
            let write = RolloutWrite {
                template: None,
                traffic,
                expected_etag: state.etag.clone(),
            };
            cloud
                .roll_out(&name, &write, &observer)
                .await
                .map_err(api)?
        } else {
            state
        };
        let revision = state.latest_ready_revision.clone();
        return Ok(outcome(address, &state, &revision, None, true));
    }

    let revision = traffic::revision_id(&cfg.id, digest, &state.template_fingerprint);
    reporter.event(
        address,
        DeployEvent::Creating {
            revision: revision.clone(),
        },
    );
    let write = RolloutWrite {
        template: Some((image_ref.to_string(), revision.clone())),
        traffic: traffic::stage(&state, &revision, tag),
        expected_etag: state.etag.clone(),
    };
    let staged = match cloud.roll_out(&name, &write, &observer).await {
        Ok(staged) => staged,
        Err(error) => {
            let after = current_state(cloud, address, &name, &observer).await?;
            return match after.failure.clone() {
                Some(message) if after.latest_created_revision == revision => {
                    Err(DeployError::RevisionFailed {
                        address: address.clone(),
                        revision,
                        message,
                        traffic: traffic::describe(&after),
                    })
                }
                _ => Err(api(error)),
            };
        }
    };
    if staged.latest_ready_revision != revision {
        return Err(DeployError::RevisionFailed {
            address: address.clone(),
            revision,
            message: format!(
                "the service reports {} as its latest ready revision",
                staged.latest_ready_revision
            ),
            traffic: traffic::describe(&staged),
        });
    }
    let state = match mode {
        TrafficMode::NoTraffic { .. } => staged,
        TrafficMode::Promote => {
            let traffic = traffic::promote(&staged);
            reporter.event(
                address,
                DeployEvent::Shifting {
                    traffic: format!("100% to {revision}"),
                },
            );
            let write = RolloutWrite {
                template: None,
                traffic,
                expected_etag: staged.etag.clone(),
            };
            cloud
                .roll_out(&name, &write, &observer)
                .await
                .map_err(api)?
        }
    };
    Ok(outcome(address, &state, &revision, tag, false))
}

/// Where a job stands after `stackctl deploy`: the image its next execution runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobOutcome {
    pub address: String,
    /// `projects/P/locations/L/jobs/ID`
    pub job: String,
    /// `NAME@sha256:...`
    pub image: String,
    /// The job already ran this image: nothing was written.
    pub unchanged: bool,
}

/// Points the job's container at the pushed image (`NAME@sha256:...`) by a read-modify-write
/// with its etag, and waits for the update. Jobs have no revisions or traffic.
pub async fn update_job(
    cloud: &Cloud,
    stack: &Stack,
    address: &ResourceAddr,
    id: &str,
    pushed: &PushReport,
    reporter: &dyn DeployReporter,
) -> Result<JobOutcome, DeployError> {
    let observer = Observer { address, reporter };
    let name = crate::resources::job::full_name(stack, id);
    let api = |source| DeployError::Api {
        address: address.clone(),
        source,
    };
    let no_job = || DeployError::NoJob {
        address: address.clone(),
        name: name.clone(),
    };
    let done = |job: JobRecord, unchanged: bool| JobOutcome {
        address: address.to_string(),
        job: job.name,
        image: job.image,
        unchanged,
    };
    let live = cloud
        .get_job(&name, &observer)
        .await
        .map_err(api)?
        .ok_or_else(no_job)?;
    if live.image == pushed.image {
        reporter.event(
            address,
            DeployEvent::Unchanged {
                image: pushed.image.clone(),
            },
        );
        return Ok(done(live, true));
    }
    reporter.event(
        address,
        DeployEvent::Waiting {
            phase: "updating the job's image".into(),
        },
    );
    let updated = cloud
        .set_job_image(&name, &pushed.image, &observer)
        .await
        .map_err(api)?
        .ok_or_else(no_job)?;
    Ok(done(updated, false))
}

/// Writes a traffic split computed from the service's current state.
async fn retarget(
    cloud: &Cloud,
    stack: &Stack,
    address: &ResourceAddr,
    cfg: &ServiceConfig,
    reporter: &dyn DeployReporter,
    compute: impl FnOnce(
        &RolloutState,
        Vec<crate::provider::run::RevisionRecord>,
    )
        -> Result<(String, Vec<crate::provider::run::TrafficTarget>), TrafficError>,
) -> Result<RolloutOutcome, DeployError> {
    let observer = Observer { address, reporter };
    let name = full_name(stack, &cfg.id);
    let api = |source| DeployError::Api {
        address: address.clone(),
        source,
    };
    let state = current_state(cloud, address, &name, &observer).await?;
    let revisions = cloud.list_revisions(&name, &observer).await.map_err(api)?;
    let images: std::collections::BTreeMap<String, String> = revisions
        .iter()
        .map(|r| (r.id.clone(), r.image.clone()))
        .collect();
    let (revision, traffic) =
        compute(&state, revisions).map_err(|source| DeployError::Traffic {
            address: address.clone(),
            source,
        })?;
    reporter.event(
        address,
        DeployEvent::Shifting {
            traffic: traffic
                .iter()
                .map(|t| {
                    format!(
                        "{} {}%{}",
                        t.revision.as_deref().unwrap_or("latest"),
                        t.percent,
                        t.tag
                            .as_deref()
                            .map(|t| format!(" ({t})"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        },
    );
    let write = RolloutWrite {
        template: None,
        traffic,
        expected_etag: state.etag.clone(),
    };
    let state = cloud
        .roll_out(&name, &write, &observer)
        .await
        .map_err(api)?;
    let mut done = outcome(address, &state, &revision, None, false);
    if let Some(image) = images.get(&revision) {
        done.image = image.clone();
    }
    Ok(done)
}

/// `stackctl traffic service.NAME candidate=10 ...`
pub async fn shift_traffic(
    cloud: &Cloud,
    stack: &Stack,
    address: &ResourceAddr,
    cfg: &ServiceConfig,
    assignments: &[String],
    reporter: &dyn DeployReporter,
) -> Result<RolloutOutcome, DeployError> {
    retarget(cloud, stack, address, cfg, reporter, |state, _| {
        let traffic = traffic::shift(state, assignments)?;
        let main = traffic
            .iter()
            .max_by_key(|t| t.percent)
            .and_then(|t| t.revision.clone())
            .unwrap_or_default();
        Ok((main, traffic))
    })
    .await
}

/// `stackctl rollback service.NAME [--to REVISION]`
pub async fn rollback(
    cloud: &Cloud,
    stack: &Stack,
    address: &ResourceAddr,
    cfg: &ServiceConfig,
    to: Option<&str>,
    reporter: &dyn DeployReporter,
) -> Result<RolloutOutcome, DeployError> {
    retarget(cloud, stack, address, cfg, reporter, |state, revisions| {
        traffic::rollback(state, &revisions, to)
    })
    .await
}
