//! Artifact Registry rules (AR1, AR2): images no revision runs and repositories without
//! cleanup policies.

use std::collections::BTreeSet;

use super::{RuleContext, finding, gib, owned_fix, short};
use crate::audit::{Finding, Rule, Severity};
use crate::cost::{PriceItem, round_usd};
use crate::provider::artifacts::DockerImageRecord;

/// Whether a container image reference (`REGISTRY/PACKAGE[:TAG][@sha256:...]`) names `image`.
fn runs(reference: &str, image: &DockerImageRecord) -> bool {
    let Some((base, digest)) = image.uri.split_once('@') else {
        return reference == image.uri;
    };
    if let Some((_, used)) = reference.split_once('@') {
        return used == digest && reference.starts_with(base);
    }
    let tag = match reference.strip_prefix(base) {
        Some("") => "latest",
        Some(rest) => match rest.strip_prefix(':') {
            Some(tag) => tag,
            None => return false,
        },
        None => return false,
    };
    image.tags.iter().any(|t| t == tag)
}

pub(super) fn unused_images(context: &RuleContext) -> Vec<Finding> {
    let inventory = context.inventory;
    let running: BTreeSet<&str> = inventory
        .revisions
        .values()
        .flatten()
        .map(|r| r.image.as_str())
        .chain(inventory.services.iter().map(|s| s.image.as_str()))
        .collect();
    let price = context.prices.usd(PriceItem::ArtifactRegistryGbMonth);
    let mut out = Vec::new();
    for (repository, images) in &inventory.images {
        let labels = inventory
            .repositories
            .iter()
            .find(|r| &r.name == repository)
            .map(|r| r.labels.clone())
            .unwrap_or_default();
        for image in images {
            if running.iter().any(|r| runs(r, image)) {
                continue;
            }
            let gib = gib(image.size_bytes);
            let waste = round_usd(gib * price);
            let tags = if image.tags.is_empty() {
                "untagged".to_string()
            } else {
                format!("tags {}", image.tags.join(", "))
            };
            out.push(finding(
                Rule::UnusedImage,
                &image.name,
                format!(
                    "{} bytes ({gib:.2} GiB at ${price:.2}/GiB-month), {tags}; no Cloud Run revision in {} runs it",
                    image.size_bytes, inventory.region
                ),
                Some(waste),
                Severity::of_waste(waste),
                owned_fix(
                    &labels,
                    "repository",
                    short(repository),
                    "set keep_recent = N and delete_untagged_after = \"30d\" (cleanup deletes old versions)",
                    format!("delete it: gcloud artifacts docker images delete {}", image.uri),
                ),
            ));
        }
    }
    out
}

pub(super) fn repository_without_cleanup(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .repositories
        .iter()
        .filter(|r| r.policies.is_empty())
        .map(|repository| {
            let id = short(&repository.name);
            let count = context
                .inventory
                .images
                .get(&repository.name)
                .map_or(0, Vec::len);
            finding(
                Rule::RepositoryWithoutCleanup,
                &repository.name,
                format!(
                    "no cleanup policies (cleanupPolicies is empty): its {count} image(s) and every pushed version are kept forever"
                ),
                None,
                Severity::Medium,
                owned_fix(
                    &repository.labels,
                    "repository",
                    id,
                    "set keep_recent = 10 and delete_untagged_after = \"30d\"",
                    format!(
                        "declare [repository.{id}] with keep_recent and delete_untagged_after and run `stackctl adopt repository.{id}`, or: gcloud artifacts repositories set-cleanup-policies {id} --policy FILE"
                    ),
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{P, image};
    use super::runs;

    #[test]
    fn an_image_reference_runs_an_image_by_digest_tag_or_implicit_latest() {
        let repository = format!("{P}/repositories/apps");
        let i = image(&repository, "api", "aaa", &["v1", "latest"], 1);
        let base = "us-central1-docker.pkg.dev/p/apps/api";
        assert!(runs(&format!("{base}@sha256:aaa"), &i));
        assert!(runs(&format!("{base}:v1@sha256:aaa"), &i));
        assert!(runs(&format!("{base}:v1"), &i));
        assert!(runs(base, &i));
        assert!(!runs(&format!("{base}:v2"), &i));
        assert!(!runs(&format!("{base}@sha256:bbb"), &i));
        assert!(!runs(&format!("{base}-old:v1"), &i));
    }
}
