//! Fault injection: seeded, rate-limited, n-shot error and latency rules for API requests
//! (`POST /_emulator/faults`, env `STACKCTL_EMULATOR_FAULTS`). Admin paths are never faulted.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The fault rules in effect, as posted to `/_emulator/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Seeds the random draws of `rate`; without it the draws are unpredictable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// One rule. Every field is optional: no method/path matches every API request, `rate` defaults
/// to 1.0, `count` expires the rule after that many hits, a rule without `status` only adds latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    /// Matches the raw (percent-encoded) query string, e.g. an upload's `name=` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

impl FaultRule {
    fn matches(&self, method: &str, path: &str, query: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
            && self
                .query_contains
                .as_deref()
                .is_none_or(|q| query.contains(q))
    }
}

/// What the injector decided for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultDecision {
    pub latency: Duration,
    pub error_status: Option<u16>,
}

/// The live rules with their remaining counts and the random source.
#[derive(Debug)]
pub struct FaultInjector {
    plan: FaultPlan,
    rng: StdRng,
}

impl FaultInjector {
    pub fn new(plan: FaultPlan) -> Self {
        let rng = match plan.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self { plan, rng }
    }

    pub fn replace(&mut self, plan: FaultPlan) {
        *self = Self::new(plan);
    }

    /// The current rules; `count` shows what is left of n-shot rules.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Decides the fate of one API request without a query string; consumes n-shot counts.
    #[cfg(test)]
    pub fn decide(&mut self, method: &str, path: &str) -> FaultDecision {
        self.decide_request(method, path, "")
    }

    /// Decides the fate of one API request; consumes n-shot counts.
    pub fn decide_request(&mut self, method: &str, path: &str, query: &str) -> FaultDecision {
        let mut decision = FaultDecision::default();
        let mut index = 0;
        while index < self.plan.rules.len() {
            let rule = &self.plan.rules[index];
            let hit = rule.matches(method, path, query) && {
                let rate = rule.rate.unwrap_or(1.0).clamp(0.0, 1.0);
                rate >= 1.0 || self.rng.random_bool(rate)
            };
            if !hit {
                index += 1;
                continue;
            }
            let rule = &mut self.plan.rules[index];
            decision.latency += Duration::from_millis(rule.latency_ms.unwrap_or(0));
            let status = rule.status;
            let expired = match rule.count.as_mut() {
                Some(count) => {
                    *count = count.saturating_sub(1);
                    *count == 0
                }
                None => false,
            };
            if expired {
                self.plan.rules.remove(index);
            } else {
                index += 1;
            }
            if let Some(status) = status {
                decision.error_status = Some(status);
                break;
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str) -> FaultPlan {
        serde_json::from_str(json).expect("valid plan")
    }

    #[test]
    fn query_rules_match_the_raw_query() {
        let mut injector = FaultInjector::new(plan(
            r#"{"rules":[{"method":"POST","query_contains":"name=a%2Fledger.json","status":503,"count":1}]}"#,
        ));
        let upload = "/upload/storage/v1/b/b/o";
        assert_eq!(
            injector
                .decide_request("POST", upload, "uploadType=media&name=a%2Fapply.lock")
                .error_status,
            None
        );
        assert_eq!(
            injector
                .decide_request("POST", upload, "uploadType=media&name=a%2Fledger.json")
                .error_status,
            Some(503)
        );
        assert_eq!(injector.decide("POST", upload).error_status, None);
    }

    #[test]
    fn n_shot_rules_expire_after_count_failures() {
        let mut injector = FaultInjector::new(plan(
            r#"{"rules":[{"method":"PATCH","path_contains":"/queues","status":503,"count":2}]}"#,
        ));
        assert_eq!(injector.decide("GET", "/v2/x/queues").error_status, None);
        assert_eq!(
            injector.decide("PATCH", "/v2/x/queues/q").error_status,
            Some(503)
        );
        assert_eq!(
            injector.decide("PATCH", "/v2/x/queues/q").error_status,
            Some(503)
        );
        assert_eq!(
            injector.decide("PATCH", "/v2/x/queues/q").error_status,
            None
        );
        assert!(injector.plan().rules.is_empty());
    }

    #[test]
    fn seeded_rates_are_reproducible_and_latency_only_rules_do_not_fail() {
        let text = r#"{"seed":7,"rules":[{"status":429,"rate":0.5},{"latency_ms":20}]}"#;
        let draws = |mut injector: FaultInjector| {
            (0..32)
                .map(|_| injector.decide("GET", "/a").error_status)
                .collect::<Vec<_>>()
        };
        let first = draws(FaultInjector::new(plan(text)));
        assert_eq!(first, draws(FaultInjector::new(plan(text))));
        assert!(first.contains(&Some(429)) && first.contains(&None));
        let mut latency_only = FaultInjector::new(plan(r#"{"rules":[{"latency_ms":20}]}"#));
        let decision = latency_only.decide("GET", "/a");
        assert_eq!(
            decision,
            FaultDecision {
                latency: Duration::from_millis(20),
                error_status: None
            }
        );
        assert!(serde_json::from_str::<FaultPlan>(r#"{"rules":[{"stauts":1}]}"#).is_err());
    }
}
