//! Which local front serves each Cloud Run service URL: the dispatcher, the scheduler and the
//! gateway rewrite `https://NAME-….run.app/path` to `http://127.0.0.1:FRONT/path` here, so stack
//! code that uses the real URLs works unchanged (no DNS or TLS interception).

use std::collections::BTreeMap;
use std::sync::RwLock;

/// The header Google's own callers (the dispatcher, the scheduler) carry to a front, so an
/// internal-only service admits them and nobody else; its value is this emulator's secret, and
/// the front strips it before the service sees the request.
pub const INTERNAL_CALLER_HEADER: &str = "x-stackctl-internal-caller";

#[derive(Debug)]
pub struct Routes {
    /// `NAME-….run.app` host -> `127.0.0.1:PORT`.
    fronts: RwLock<BTreeMap<String, String>>,
    /// The value of [`INTERNAL_CALLER_HEADER`]: random per emulator process.
    internal_key: String,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            fronts: RwLock::default(),
            internal_key: format!("{:032x}", rand::random::<u128>()),
        }
    }
}

fn host_of(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

impl Routes {
    /// Serves the host of `service_url` from `front` (`127.0.0.1:PORT`).
    pub fn set(&self, service_url: &str, front: &str) {
        if let Some((_, host, _)) = host_of(service_url) {
            let mut fronts = self.fronts.write().unwrap_or_else(|p| p.into_inner());
            fronts.insert(host.to_ascii_lowercase(), front.to_string());
        }
    }

    pub fn remove(&self, service_url: &str) {
        if let Some((_, host, _)) = host_of(service_url) {
            let mut fronts = self.fronts.write().unwrap_or_else(|p| p.into_inner());
            fronts.remove(&host.to_ascii_lowercase());
        }
    }

    /// The URL to actually call: a routed service URL on its local front, anything else as is.
    pub fn resolve(&self, url: &str) -> String {
        let Some((_, host, rest)) = host_of(url) else {
            return url.to_string();
        };
        let fronts = self.fronts.read().unwrap_or_else(|p| p.into_inner());
        match fronts.get(&host.to_ascii_lowercase()) {
            Some(front) => format!("http://{front}{rest}"),
            None => url.to_string(),
        }
    }

    /// The header that marks a request from one of Google's own products (Cloud Tasks, Cloud
    /// Scheduler), which Cloud Run counts as internal traffic.
    pub fn internal_caller(&self) -> (&'static str, &str) {
        (INTERNAL_CALLER_HEADER, &self.internal_key)
    }

    /// Whether the URL's host is a service served locally.
    pub fn is_routed(&self, url: &str) -> bool {
        host_of(url).is_some_and(|(_, host, _)| {
            let fronts = self.fronts.read().unwrap_or_else(|p| p.into_inner());
            fronts.contains_key(&host.to_ascii_lowercase())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_urls_resolve_to_their_front_with_path_and_query() {
        let routes = Routes::default();
        routes.set("https://worker-abc123-uc.a.run.app", "127.0.0.1:4100");
        assert_eq!(
            routes.resolve("https://worker-abc123-uc.a.run.app/tasks?x=1"),
            "http://127.0.0.1:4100/tasks?x=1"
        );
        assert_eq!(
            routes.resolve("https://example.com/hook"),
            "https://example.com/hook"
        );
        assert!(routes.is_routed("https://WORKER-abc123-uc.a.run.app"));
        routes.remove("https://worker-abc123-uc.a.run.app/");
        assert!(!routes.is_routed("https://worker-abc123-uc.a.run.app"));
    }
}
