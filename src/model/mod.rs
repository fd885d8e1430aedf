//! The vocabulary every layer shares: resource kinds and addresses like `service.worker`.

pub mod change;
pub mod live;

use std::fmt;
use std::str::FromStr;

/// Every kind of resource a stack can declare. The one exhaustive registry of kinds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Service,
    Queue,
    Dataset,
    Table,
    Repository,
    Channel,
    Budget,
    Alert,
    ServiceAccount,
    Secret,
    Job,
    Schedule,
    /// A Firestore database (and the TTL policies of its collection groups).
    Firestore,
    /// A Shopify webhook subscription (Shopify Admin GraphQL API), not a Google resource.
    ShopifyWebhook,
    /// An enabled Google API (Service Usage), implied by the kinds in use.
    Api,
    /// One IAM member added to one role on one resource's policy (`iam: ROLE on TARGET for MEMBER`).
    Grant,
    /// A Cloud Monitoring uptime check on a public HTTPS URL.
    Uptime,
    /// An API Gateway (api, api config, gateway) in front of one Cloud Run service.
    Gateway,
    /// An API Keys v2 key restricted to one gateway's API.
    ApiKey,
    /// A Cloud Monitoring dashboard rendered from a template.
    Dashboard,
}

impl Kind {
    pub const ALL: [Kind; 20] = [
        Kind::Service,
        Kind::Queue,
        Kind::Dataset,
        Kind::Table,
        Kind::Repository,
        Kind::Channel,
        Kind::Budget,
        Kind::Alert,
        Kind::ServiceAccount,
        Kind::Secret,
        Kind::Job,
        Kind::Schedule,
        Kind::Firestore,
        Kind::ShopifyWebhook,
        Kind::Api,
        Kind::Grant,
        Kind::Uptime,
        Kind::Gateway,
        Kind::ApiKey,
        Kind::Dashboard,
    ];

    /// The table prefix in stack.toml and in addresses (`service`, `queue`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Queue => "queue",
            Kind::Dataset => "dataset",
            Kind::Table => "table",
            Kind::Repository => "repository",
            Kind::Channel => "channel",
            Kind::Budget => "budget",
            Kind::Alert => "alert",
            Kind::ServiceAccount => "service_account",
            Kind::Secret => "secret",
            Kind::Job => "job",
            Kind::Schedule => "schedule",
            Kind::Firestore => "firestore",
            Kind::ShopifyWebhook => "shopify_webhook",
            Kind::Api => "api",
            Kind::Grant => "iam",
            Kind::Uptime => "uptime",
            Kind::Gateway => "gateway",
            Kind::ApiKey => "api_key",
            Kind::Dashboard => "dashboard",
        }
    }

    /// Whether stack.toml declares this kind as `[<kind>.NAME]` tables (grants and APIs are implied).
    pub fn is_declared_as_table(self) -> bool {
        !matches!(self, Kind::Grant | Kind::Api)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown kind `{s}` (known kinds: {})", known.join(", "))
            })
    }
}

/// The address of a declared resource: `<kind>.<name>`, e.g. `queue.webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceAddr {
    pub kind: Kind,
    pub name: String,
}

impl ResourceAddr {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            // A grant reads as a sentence: `iam: roles/run.invoker on service.worker for service_account.tasks`.
            Kind::Grant => write!(f, "{}: {}", self.kind, self.name),
            _ => write!(f, "{}.{}", self.kind, self.name),
        }
    }
}

/// How a grant's address starts (`iam: `).
const GRANT_PREFIX: &str = "iam: ";

impl FromStr for ResourceAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(grant) = s.strip_prefix(GRANT_PREFIX) {
            return Ok(Self::new(Kind::Grant, grant));
        }
        let (kind, name) = s.split_once('.').ok_or_else(|| {
            format!("`{s}` is not a reference: write `<kind>.<name>`, e.g. `service.worker`")
        })?;
        if name.is_empty() {
            return Err(format!("`{s}` has no name after the kind"));
        }
        Ok(Self {
            kind: kind.parse()?,
            name: name.to_string(),
        })
    }
}

impl serde::Serialize for ResourceAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ResourceAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where API calls go.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Endpoint {
    /// Google's real endpoints with Application Default Credentials.
    Google,
    /// The in-process local emulator (`--local`), state beside the stack file.
    Local { url: String },
    /// An explicit endpoint (`--endpoint`), anonymous credentials.
    Custom { url: String },
}

impl Endpoint {
    pub fn url(&self) -> Option<&str> {
        match self {
            Endpoint::Google => None,
            Endpoint::Local { url } | Endpoint::Custom { url } => Some(url),
        }
    }

    /// Whether two targets are the same kind of cloud (a local plan never applies to Google).
    pub fn same_kind(&self, other: &Endpoint) -> bool {
        matches!(
            (self, other),
            (Endpoint::Google, Endpoint::Google)
                | (Endpoint::Local { .. }, Endpoint::Local { .. })
                | (Endpoint::Custom { .. }, Endpoint::Custom { .. })
        )
    }

    /// What a `stackctl` command the user is told to run needs to reach this same cloud:
    /// nothing for Google, ` --local`, or ` --endpoint URL`.
    pub fn command_flags(&self) -> String {
        match self {
            Endpoint::Google => String::new(),
            Endpoint::Local { .. } => " --local".into(),
            Endpoint::Custom { url } => format!(" --endpoint {url}"),
        }
    }

    /// `text` with every quoted command `` `stackctl ...` `` given [`Endpoint::command_flags`],
    /// so a hint copied from a local plan acts on the local emulator too.
    pub fn in_commands(&self, text: &str) -> String {
        let flags = self.command_flags();
        if flags.is_empty() {
            return text.to_string();
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("`stackctl ") {
            let (before, command) = rest.split_at(start);
            out.push_str(before);
            match command[1..].find('`') {
                Some(end) => {
                    out.push_str(&command[..end + 1]);
                    out.push_str(&flags);
                    rest = &command[end + 1..];
                }
                None => {
                    rest = command;
                    break;
                }
            }
        }
        out.push_str(rest);
        out
    }

    pub fn describe(&self) -> String {
        match self {
            Endpoint::Google => "Google Cloud".into(),
            Endpoint::Local { .. } => "the local emulator (--local)".into(),
            Endpoint::Custom { url } => format!("the endpoint {url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_from_a_local_plan_names_the_same_emulator() {
        let hint = "store it with `stackctl secret set slack-token`, then apply (`stackctl apply`)";
        let local = Endpoint::Local {
            url: "http://127.0.0.1:1".into(),
        };
        assert_eq!(
            local.in_commands(hint),
            "store it with `stackctl secret set slack-token --local`, then apply (`stackctl apply --local`)"
        );
        let custom = Endpoint::Custom {
            url: "http://127.0.0.1:8085".into(),
        };
        assert!(
            custom
                .in_commands(hint)
                .contains("`stackctl apply --endpoint http://127.0.0.1:8085`")
        );
        assert_eq!(Endpoint::Google.in_commands(hint), hint);
        assert_eq!(
            local.in_commands("an unclosed `stackctl x"),
            "an unclosed `stackctl x"
        );
    }

    #[test]
    fn addresses_round_trip_and_reject_unknown_kinds() {
        let addr: ResourceAddr = "queue.webhooks".parse().unwrap();
        assert_eq!(addr, ResourceAddr::new(Kind::Queue, "webhooks"));
        assert_eq!(addr.to_string(), "queue.webhooks");
        assert!(
            "bucket.x"
                .parse::<ResourceAddr>()
                .unwrap_err()
                .contains("unknown kind")
        );
        assert!("service".parse::<ResourceAddr>().is_err());
    }

    #[test]
    fn grant_addresses_read_as_sentences_and_round_trip() {
        let addr = ResourceAddr::new(
            Kind::Grant,
            "roles/run.invoker on service.worker for service_account.tasks",
        );
        let text = addr.to_string();
        assert_eq!(
            text,
            "iam: roles/run.invoker on service.worker for service_account.tasks"
        );
        assert_eq!(text.parse::<ResourceAddr>().unwrap(), addr);
        assert_eq!(
            "service_account.tasks"
                .parse::<ResourceAddr>()
                .unwrap()
                .kind,
            Kind::ServiceAccount
        );
    }
}
