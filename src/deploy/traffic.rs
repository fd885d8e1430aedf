//! Traffic arithmetic for rollouts, canaries, shifts and rollbacks. Pure: from a service's
//! observed routing to the traffic list to write.
//!
//! What serves now is read from `trafficStatuses` (falling back to `traffic`), with LATEST
//! resolved to the latest ready revision; tags are kept (at 0%) unless moved.

use std::collections::BTreeMap;

use crate::provider::run::{Readiness, RevisionRecord, RolloutState, TrafficTarget};

/// Why a traffic change cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrafficError {
    #[error("`{0}` is not a tag or revision of this service; tags: {1}")]
    UnknownTarget(String, String),
    #[error("`{0}` is not TARGET=PERCENT (e.g. candidate=10)")]
    BadAssignment(String),
    #[error("percentages add up to {0}, more than 100")]
    OverHundred(i32),
    #[error(
        "percentages add up to {0} and nothing else serves to take the other {rest}%; name where it goes (e.g. latest={rest})",
        rest = 100 - .0
    )]
    Unassigned(i32),
    #[error("no ready revision older than {0} to roll back to; name one with --to REVISION")]
    NothingToRollBackTo(String),
    #[error("revision {0} is not ready ({1}); it cannot take traffic")]
    NotReady(String, String),
    #[error("revision {0} does not exist; revisions: {1}")]
    NoSuchRevision(String, String),
}

/// Traffic as it is served now: revision (LATEST resolved) -> percent, plus tags by revision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Serving {
    pub percents: BTreeMap<String, i32>,
    /// tag -> revision
    pub tags: BTreeMap<String, String>,
}

impl Serving {
    pub fn of(state: &RolloutState) -> Self {
        let targets: Vec<&TrafficTarget> = if state.traffic_statuses.is_empty() {
            state.traffic.iter().collect()
        } else {
            state.traffic_statuses.iter().map(|s| &s.target).collect()
        };
        let mut serving = Serving::default();
        for target in targets {
            let revision = match &target.revision {
                Some(revision) => revision.clone(),
                None if state.latest_ready_revision.is_empty() => continue,
                None => state.latest_ready_revision.clone(),
            };
            if target.percent > 0 {
                *serving.percents.entry(revision.clone()).or_default() += target.percent;
            }
            if let Some(tag) = &target.tag {
                serving.tags.insert(tag.clone(), revision);
            }
        }
        serving
    }

    /// The revision with the most traffic (ties: the greater name, i.e. the newer generated one).
    pub fn main_revision(&self) -> Option<&str> {
        self.percents
            .iter()
            .max_by_key(|(revision, percent)| (**percent, (*revision).clone()))
            .map(|(revision, _)| revision.as_str())
    }

    /// Pinned targets: every serving revision with its percent (and a tag it carries), then
    /// the remaining tags at 0%.
    fn pinned(&self) -> Vec<TrafficTarget> {
        let mut tags_by_revision: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (tag, revision) in &self.tags {
            tags_by_revision.entry(revision).or_default().push(tag);
        }
        let mut out = Vec::new();
        for (revision, percent) in &self.percents {
            let mut tags = tags_by_revision
                .remove(revision.as_str())
                .unwrap_or_default();
            let tag = (!tags.is_empty()).then(|| tags.remove(0).to_string());
            out.push(TrafficTarget {
                revision: Some(revision.clone()),
                percent: *percent,
                tag,
            });
            for tag in tags {
                out.push(tagged(revision, tag));
            }
        }
        for (revision, tags) in tags_by_revision {
            for tag in tags {
                out.push(tagged(revision, tag));
            }
        }
        out
    }
}

fn tagged(revision: &str, tag: &str) -> TrafficTarget {
    TrafficTarget {
        revision: Some(revision.to_string()),
        percent: 0,
        tag: Some(tag.to_string()),
    }
}

/// Rollout step one: the new revision is created with 0% (tagged when asked) while everything
/// that serves now stays pinned where it is, so a revision that fails changes nothing.
pub fn stage(state: &RolloutState, new_revision: &str, tag: Option<&str>) -> Vec<TrafficTarget> {
    let mut serving = Serving::of(state);
    if serving.percents.is_empty() {
        // Nothing ready serves yet (a fresh or failed service): the new revision takes it all.
        let mut out = vec![TrafficTarget {
            revision: None,
            percent: 100,
            tag: None,
        }];
        out.extend(serving.tags.iter().map(|(t, r)| tagged(r, t)));
        return out;
    }
    if let Some(tag) = tag {
        serving
            .tags
            .insert(tag.to_string(), new_revision.to_string());
    }
    let mut out = serving.pinned();
    if tag.is_none() {
        out.push(TrafficTarget {
            revision: Some(new_revision.to_string()),
            percent: 0,
            tag: None,
        });
    }
    out
}

/// Rollout step two: all traffic to the latest ready revision; tags stay at 0%.
pub fn promote(state: &RolloutState) -> Vec<TrafficTarget> {
    let serving = Serving::of(state);
    let mut out = vec![TrafficTarget {
        revision: None,
        percent: 100,
        tag: None,
    }];
    out.extend(serving.tags.iter().map(|(t, r)| tagged(r, t)));
    out
}

/// `TARGET=PERCENT` assignments: named targets (tags, revision ids, or `latest`) get exactly
/// their percent; what is left is shared by the other serving revisions in proportion.
pub fn shift(
    state: &RolloutState,
    assignments: &[String],
) -> Result<Vec<TrafficTarget>, TrafficError> {
    let mut serving = Serving::of(state);
    let mut named: BTreeMap<String, i32> = BTreeMap::new();
    for assignment in assignments {
        let (target, percent) = assignment
            .split_once('=')
            .and_then(|(t, p)| {
                Some((
                    t.trim(),
                    p.trim().trim_end_matches('%').parse::<i32>().ok()?,
                ))
            })
            .filter(|(_, p)| (0..=100).contains(p))
            .ok_or_else(|| TrafficError::BadAssignment(assignment.clone()))?;
        let revision = resolve(state, &serving, target)?;
        *named.entry(revision).or_default() += percent;
    }
    let total: i32 = named.values().sum();
    if total > 100 {
        return Err(TrafficError::OverHundred(total));
    }
    let others: Vec<(String, i32)> = serving
        .percents
        .iter()
        .filter(|(revision, _)| !named.contains_key(*revision))
        .map(|(r, p)| (r.clone(), *p))
        .collect();
    let rest = 100 - total;
    let weight: i32 = others.iter().map(|(_, p)| p).sum();
    if rest > 0 && weight == 0 {
        return Err(TrafficError::Unassigned(total));
    }
    let mut percents = named;
    if rest > 0 {
        // Largest remainder: shares add up to exactly `rest`.
        let mut shares: Vec<(String, i32, i32)> = others
            .iter()
            .map(|(r, p)| (r.clone(), rest * p / weight, (rest * p) % weight))
            .collect();
        let mut left = rest - shares.iter().map(|s| s.1).sum::<i32>();
        shares.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        for share in &mut shares {
            if left == 0 {
                break;
            }
            share.1 += 1;
            left -= 1;
        }
        for (revision, percent, _) in shares {
            percents.insert(revision, percent);
        }
    }
    serving.percents = percents.into_iter().filter(|(_, p)| *p > 0).collect();
    Ok(serving.pinned())
}

fn resolve(state: &RolloutState, serving: &Serving, target: &str) -> Result<String, TrafficError> {
    if let Some(revision) = serving.tags.get(target) {
        return Ok(revision.clone());
    }
    if target == "latest" && !state.latest_ready_revision.is_empty() {
        return Ok(state.latest_ready_revision.clone());
    }
    if serving.percents.contains_key(target)
        || target == state.latest_ready_revision
        || target == state.latest_created_revision
    {
        return Ok(target.to_string());
    }
    let tags: Vec<&str> = serving.tags.keys().map(String::as_str).collect();
    Err(TrafficError::UnknownTarget(
        target.to_string(),
        if tags.is_empty() {
            "none".into()
        } else {
            tags.join(", ")
        },
    ))
}

/// Rollback: 100% to `to`; else, while a canary splits traffic, to the revision with the most
/// traffic besides the newest serving one; else to the newest ready revision created before the
/// one serving now. Returns the revision and the traffic to write (tags kept at 0%).
pub fn rollback(
    state: &RolloutState,
    revisions: &[RevisionRecord],
    to: Option<&str>,
) -> Result<(String, Vec<TrafficTarget>), TrafficError> {
    let names = || {
        revisions
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut serving = Serving::of(state);
    let target = match to {
        Some(to) => {
            let to = to.rsplit('/').next().unwrap_or(to);
            let revision = revisions
                .iter()
                .find(|r| r.id == to)
                .ok_or_else(|| TrafficError::NoSuchRevision(to.to_string(), names()))?;
            match &revision.readiness {
                Readiness::Ready => revision.id.clone(),
                Readiness::Failed { message } => {
                    return Err(TrafficError::NotReady(revision.id.clone(), message.clone()));
                }
                Readiness::Pending => {
                    return Err(TrafficError::NotReady(
                        revision.id.clone(),
                        "still starting".into(),
                    ));
                }
            }
        }
        None => {
            // The newest revision that takes any traffic is what is rolled back.
            let current = revisions
                .iter()
                .find(|r| serving.percents.get(&r.id).is_some_and(|p| *p > 0))
                .map(|r| r.id.clone())
                .or_else(|| serving.main_revision().map(str::to_string))
                .unwrap_or_else(|| state.latest_ready_revision.clone());
            // During a canary the others still serve: the one with the most traffic takes it all.
            let stable = serving
                .percents
                .iter()
                .filter(|(revision, _)| **revision != current)
                .max_by_key(|(revision, percent)| (**percent, (*revision).clone()))
                .map(|(revision, _)| revision.clone());
            match stable {
                Some(stable) => stable,
                // Otherwise: the newest ready revision created before it.
                None => revisions
                    .iter()
                    .skip_while(|r| r.id != current)
                    .skip(1)
                    .find(|r| r.readiness == Readiness::Ready)
                    .map(|r| r.id.clone())
                    .ok_or(TrafficError::NothingToRollBackTo(current))?,
            }
        }
    };
    serving.percents = BTreeMap::from([(target.clone(), 100)]);
    Ok((target, serving.pinned()))
}

/// `worker-1a2b3c4-5d6e7`: the service id, 7 hex of the image digest, 5 hex of the template,
/// so the name changes whenever the template does (Cloud Run refuses a reused name otherwise).
pub fn revision_id(service_id: &str, digest: &str, template_fingerprint: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!(
        "{service_id}-{}-{}",
        &hex[..hex.len().min(7)],
        &template_fingerprint[..template_fingerprint.len().min(5)]
    )
}

/// A one-line summary like `worker-00002-abc 90%, worker-1a2b3c4-5d6e7 10% (candidate)`.
pub fn describe(state: &RolloutState) -> String {
    let serving = Serving::of(state);
    let mut parts: Vec<String> = serving
        .percents
        .iter()
        .map(|(revision, percent)| {
            let tags: Vec<&str> = serving
                .tags
                .iter()
                .filter(|(_, r)| *r == revision)
                .map(|(t, _)| t.as_str())
                .collect();
            if tags.is_empty() {
                format!("{revision} {percent}%")
            } else {
                format!("{revision} {percent}% ({})", tags.join(", "))
            }
        })
        .collect();
    for (tag, revision) in &serving.tags {
        if !serving.percents.contains_key(revision) {
            parts.push(format!("{revision} 0% ({tag})"));
        }
    }
    if parts.is_empty() {
        "no ready revision".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::run::TrafficStatus;

    fn target(revision: Option<&str>, percent: i32, tag: Option<&str>) -> TrafficTarget {
        TrafficTarget {
            revision: revision.map(str::to_string),
            percent,
            tag: tag.map(str::to_string),
        }
    }

    fn state(statuses: Vec<TrafficTarget>) -> RolloutState {
        RolloutState {
            name: "projects/p/locations/r/services/w".into(),
            etag: "e".into(),
            uri: "https://w-uc.a.run.app".into(),
            latest_ready_revision: "w-a".into(),
            latest_created_revision: "w-a".into(),
            image: "img".into(),
            failure: None,
            traffic: vec![],
            traffic_statuses: statuses
                .into_iter()
                .map(|target| TrafficStatus { target, uri: None })
                .collect(),
            template_fingerprint: "0123456789".into(),
        }
    }

    fn revision(id: &str, time: &str, readiness: Readiness) -> RevisionRecord {
        RevisionRecord {
            name: format!("projects/p/locations/r/services/w/revisions/{id}"),
            id: id.into(),
            create_time: time.into(),
            image: "img".into(),
            readiness,
            min_instances: 0,
            limits: Default::default(),
            cpu_idle: true,
        }
    }

    #[test]
    fn staging_pins_what_serves_and_adds_the_new_revision_at_zero() {
        let s = state(vec![target(None, 100, None)]);
        assert_eq!(
            stage(&s, "w-b", None),
            vec![target(Some("w-a"), 100, None), target(Some("w-b"), 0, None)]
        );
        assert_eq!(
            stage(&s, "w-b", Some("candidate")),
            vec![
                target(Some("w-a"), 100, None),
                target(Some("w-b"), 0, Some("candidate"))
            ]
        );
    }

    #[test]
    fn promoting_sends_everything_to_latest_and_keeps_tags() {
        let s = state(vec![
            target(Some("w-a"), 100, None),
            target(Some("w-b"), 0, Some("candidate")),
        ]);
        assert_eq!(
            promote(&s),
            vec![
                target(None, 100, None),
                target(Some("w-b"), 0, Some("candidate"))
            ]
        );
    }

    #[test]
    fn shifting_gives_named_targets_their_share_and_the_rest_in_proportion() {
        let s = state(vec![
            target(Some("w-a"), 100, None),
            target(Some("w-b"), 0, Some("candidate")),
        ]);
        assert_eq!(
            shift(&s, &["candidate=10".into()]).unwrap(),
            vec![
                target(Some("w-a"), 90, None),
                target(Some("w-b"), 10, Some("candidate"))
            ]
        );
        let three = state(vec![
            target(Some("w-a"), 50, None),
            target(Some("w-b"), 50, None),
            target(Some("w-c"), 0, Some("c")),
        ]);
        let shifted = shift(&three, &["c=33".into()]).unwrap();
        assert_eq!(shifted.iter().map(|t| t.percent).sum::<i32>(), 100);
        assert_eq!(shifted[2], target(Some("w-c"), 33, Some("c")));
        assert!(matches!(
            shift(&s, &["nope=5".into()]),
            Err(TrafficError::UnknownTarget(..))
        ));
        assert!(matches!(
            shift(&s, &["candidate".into()]),
            Err(TrafficError::BadAssignment(_))
        ));
        assert!(matches!(
            shift(&s, &["candidate=60".into(), "w-a=50".into()]),
            Err(TrafficError::OverHundred(110))
        ));
        assert!(matches!(
            shift(&s, &["w-a=50".into()]),
            Err(TrafficError::Unassigned(50))
        ));
    }

    #[test]
    fn rollback_picks_the_newest_ready_revision_older_than_the_serving_one() {
        let mut s = state(vec![target(None, 100, None)]);
        s.latest_ready_revision = "w-c".into();
        let revisions = vec![
            revision(
                "w-d",
                "2026-01-04T00:00:00Z",
                Readiness::Failed {
                    message: "boom".into(),
                },
            ),
            revision("w-c", "2026-01-03T00:00:00Z", Readiness::Ready),
            revision(
                "w-b",
                "2026-01-02T00:00:00Z",
                Readiness::Failed {
                    message: "x".into(),
                },
            ),
            revision("w-a", "2026-01-01T00:00:00Z", Readiness::Ready),
        ];
        let (to, traffic) = rollback(&s, &revisions, None).unwrap();
        assert_eq!(to, "w-a");
        assert_eq!(traffic, vec![target(Some("w-a"), 100, None)]);
        assert_eq!(rollback(&s, &revisions, Some("w-c")).unwrap().0, "w-c");
        assert!(matches!(
            rollback(&s, &revisions, Some("w-d")),
            Err(TrafficError::NotReady(..))
        ));
        assert!(matches!(
            rollback(&s, &revisions, Some("w-z")),
            Err(TrafficError::NoSuchRevision(..))
        ));
        s.latest_ready_revision = "w-a".into();
        assert!(matches!(
            rollback(&s, &revisions, None),
            Err(TrafficError::NothingToRollBackTo(_))
        ));
    }

    #[test]
    fn rolling_back_a_canary_goes_to_the_revision_before_it() {
        let s = state(vec![
            target(Some("w-a"), 90, None),
            target(Some("w-b"), 10, Some("candidate")),
        ]);
        let revisions = vec![
            revision("w-b", "2026-01-02T00:00:00Z", Readiness::Ready),
            revision("w-a", "2026-01-01T00:00:00Z", Readiness::Ready),
            revision("w-0", "2026-01-00T00:00:00Z", Readiness::Ready),
        ];
        let (to, traffic) = rollback(&s, &revisions, None).unwrap();
        assert_eq!(to, "w-a");
        assert_eq!(
            traffic,
            vec![
                target(Some("w-a"), 100, None),
                target(Some("w-b"), 0, Some("candidate"))
            ]
        );
    }

    #[test]
    fn revision_ids_carry_the_digest_and_template_and_fit_63_characters() {
        let id = revision_id(&"w".repeat(49), "sha256:1a2b3c4d5e", "abcdef0123");
        assert_eq!(id, format!("{}-1a2b3c4-abcde", "w".repeat(49)));
        assert_eq!(id.len(), 63);
    }

    #[test]
    fn describe_lists_percents_and_tags() {
        let s = state(vec![
            target(Some("w-a"), 90, None),
            target(Some("w-b"), 10, Some("candidate")),
        ]);
        assert_eq!(describe(&s), "w-a 90%, w-b 10% (candidate)");
    }
}
