//! `shopify_webhook`: the `[shopify]` shop's webhook subscriptions, reconciled through the Shopify
//! Admin GraphQL API. A subscription is this stack's when its callback URL points at one of the
//! stack's services; any other subscription of the shop is never changed or deleted.
//!
//! A declared subscription matches the live one of the same topic delivering to the same service
//! (so a new path is an update); a new topic is a delete and a create, as Shopify cannot change a
//! subscription's topic. The callback URL is the target service's URL and `path`, known after
//! apply while the service does not exist yet.

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, Ownership, Reconcile, Removal, StepError, created,
    push_if_differs, quoted,
};
use crate::config::{ShopifyConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::Cloud;
use crate::provider::run::OperationObserver;
use crate::provider::shopify::{
    PointsAt, ShopifyAdmin, SubscriptionInput, WebhookSubscriptionRecord,
};
use crate::state::Ledger;

/// The declared state of one webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopifyWebhookSpec {
    /// What plans call it before Shopify assigns its id: `SHOP: TOPIC to service.NAME`.
    pub name: String,
    pub topic: String,
    pub target: ResourceAddr,
    /// The target's Cloud Run service id (what live subscriptions are matched by).
    pub service_id: String,
    pub path: String,
    pub format: String,
    /// The Admin API version the subscription is created and updated under.
    pub api_version: String,
}

/// How stackctl reaches the shop: from `[shopify]`, for every call of a plan or an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopAccess {
    pub shop: String,
    /// `secret.NAME` holding the access token.
    pub token_source: ResourceAddr,
    /// Its Secret Manager id.
    pub token_secret_id: String,
    pub api_version: String,
}

impl ShopAccess {
    pub fn of(stack: &Stack) -> Option<Self> {
        let ShopifyConfig {
            shop,
            access_token,
            api_version,
        } = stack.shopify.as_ref()?;
        let token_secret_id = stack
            .secrets
            .get(&access_token.name)
            .map(|s| s.id.clone())
            .unwrap_or_else(|| access_token.name.clone());
        Some(Self {
            shop: shop.clone(),
            token_source: access_token.clone(),
            token_secret_id,
            api_version: api_version.clone(),
        })
    }

    /// The shop's Admin API with the token read from Secret Manager now (never shown anywhere).
    pub async fn connect(&self, cloud: &Cloud) -> Result<ShopifyAdmin, TokenError> {
        let source = self.token_source.to_string();
        match cloud.access_secret_value(&self.token_secret_id).await {
            Ok(Some(token)) => Ok(cloud.shopify_admin(&self.shop, token, &source)),
            Ok(None) => Err(TokenError::NoValue(format!(
                "the Shopify access token {source} has no value yet, so the webhook subscriptions of {} are not planned; store it with `stackctl secret set {}` (after the apply that creates the secret), then plan again",
                self.shop, self.token_secret_id
            ))),
            Err(e) => Err(TokenError::Unreadable(format!(
                "reading the Shopify access token {source}: {e}"
            ))),
        }
    }
}

/// Why the shop's access token could not be used; each message names its secret and the fix.
#[derive(Debug)]
pub enum TokenError {
    /// The secret does not exist yet or has no enabled version.
    NoValue(String),
    /// Secret Manager failed.
    Unreadable(String),
}

impl TokenError {
    pub fn message(self) -> String {
        match self {
            TokenError::NoValue(why) | TokenError::Unreadable(why) => why,
        }
    }
}

/// The declared subscriptions of `stack`.
pub fn declared(stack: &Stack) -> Vec<(ResourceAddr, ShopifyWebhookSpec)> {
    let Some(shop) = stack.shopify.as_ref().map(|s| s.shop.as_str()) else {
        return Vec::new();
    };
    stack
        .shopify_webhooks
        .iter()
        .map(|(name, cfg)| {
            let service_id = stack
                .services
                .get(&cfg.target.name)
                .map(|s| s.id.clone())
                .unwrap_or_else(|| cfg.target.name.clone());
            let spec = ShopifyWebhookSpec {
                name: format!("{shop}: {} to {}", cfg.topic, cfg.target),
                topic: cfg.topic.clone(),
                target: cfg.target.clone(),
                service_id,
                path: cfg.path.clone(),
                format: cfg.format.clone(),
                api_version: cfg.api_version.clone(),
            };
            (ResourceAddr::new(Kind::ShopifyWebhook, name), spec)
        })
        .collect()
}

/// `https://HOST/PATH`: where Shopify delivers.
pub fn callback_url(host: &str, path: &str) -> String {
    format!("https://{host}{path}")
}

/// The callback URL of `spec` once its service's host is known.
fn desired_callback(spec: &ShopifyWebhookSpec, known: &Known) -> Option<String> {
    known
        .hosts
        .get(&spec.target)
        .cloned()
        .flatten()
        .map(|host| callback_url(&host, &spec.path))
}

/// A service of the project as subscriptions are matched to it: host, id, owning stack.
pub struct ServiceHost {
    pub host: String,
    pub target: PointsAt,
}

impl ServiceHost {
    /// The hosts of the project's services that have a URL.
    pub fn of(services: &[crate::provider::run::ServiceRecord]) -> Vec<ServiceHost> {
        services
            .iter()
            .filter_map(|s| {
                Some(ServiceHost {
                    host: super::service::host_of(&s.uri)?,
                    target: PointsAt {
                        service: s.name.rsplit('/').next().unwrap_or_default().to_string(),
                        stack: s.labels.get(super::OWNER_LABEL).cloned(),
                    },
                })
            })
            .collect()
    }
}

/// Marks each subscription with the project's service its callback URL's host belongs to.
pub fn mark_targets(subscriptions: &mut [WebhookSubscriptionRecord], services: &[ServiceHost]) {
    for subscription in subscriptions {
        let host = subscription
            .callback_url
            .as_deref()
            .and_then(super::service::host_of);
        subscription.points_at = host.and_then(|host| {
            services
                .iter()
                .find(|s| s.host == host)
                .map(|s| s.target.clone())
        });
    }
}

/// `shopify_webhook`: webhook subscriptions of the `[shopify]` shop, owned by where they deliver.
pub struct ShopifyWebhookKind;

impl Reconcile for ShopifyWebhookKind {
    const KIND: Kind = Kind::ShopifyWebhook;
    /// After services: the callback URL is a service's URL.
    const TIER: u8 = 3;
    const APIS: &'static [&'static str] = &[];
    const ADOPTION: Adoption = Adoption::NotNeeded(
        "a Shopify webhook subscription is this stack's when its callback URL points at one of the stack's services",
    );
    type Spec = ShopifyWebhookSpec;
    type Live = WebhookSubscriptionRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, ShopifyWebhookSpec)> {
        declared(stack)
    }
    fn spec_name(spec: &ShopifyWebhookSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &WebhookSubscriptionRecord) -> &str {
        &live.id
    }
    fn spec_key(spec: &ShopifyWebhookSpec) -> String {
        format!("{} to {}", spec.topic, spec.service_id)
    }
    fn live_key(live: &WebhookSubscriptionRecord) -> String {
        match &live.points_at {
            Some(at) => format!("{} to {}", live.topic, at.service),
            None => format!(
                "{} to <{}>",
                live.topic,
                live.callback_url.as_deref().unwrap_or(&live.id)
            ),
        }
    }
    fn ownership(live: &WebhookSubscriptionRecord, stack: &str, _: &Ledger) -> Ownership {
        match live.points_at.as_ref().and_then(|at| at.stack.as_deref()) {
            Some(owner) if owner == stack => Ownership::Ours,
            Some(other) => Ownership::OtherStack(other.to_string()),
            None => Ownership::Unowned,
        }
    }
    fn address_of(live: &WebhookSubscriptionRecord, _: &Ledger) -> ResourceAddr {
        let number = live.id.rsplit('/').next().unwrap_or_default();
        ResourceAddr::new(
            Kind::ShopifyWebhook,
            format!("{}_{number}", live.topic.to_lowercase()),
        )
    }
    fn depends_on(spec: &ShopifyWebhookSpec) -> Vec<ResourceAddr> {
        vec![spec.target.clone()]
    }
    fn create_fields(spec: &ShopifyWebhookSpec, known: &Known) -> Vec<FieldChange> {
        let callback = match desired_callback(spec, known) {
            Some(url) => FieldValue::Known(quoted(&url)),
            None => FieldValue::KnownAfterApply,
        };
        vec![
            created("topic", quoted(&spec.topic)),
            FieldChange::new("callback_url", None, Some(callback)),
            created("format", quoted(&spec.format)),
            created("api_version", quoted(&spec.api_version)),
        ]
    }
    fn diff(
        spec: &ShopifyWebhookSpec,
        live: &WebhookSubscriptionRecord,
        known: &Known,
    ) -> Vec<FieldChange> {
        let mut out = Vec::new();
        let before = live.callback_url.as_deref().map(quoted);
        match desired_callback(spec, known) {
            Some(url) if live.callback_url.as_deref() != Some(url.as_str()) => {
                out.push(FieldChange::new(
                    "callback_url",
                    before,
                    Some(FieldValue::Known(quoted(&url))),
                ))
            }
            Some(_) => {}
            None => out.push(FieldChange::new(
                "callback_url",
                before,
                Some(FieldValue::KnownAfterApply),
            )),
        }
        push_if_differs(&mut out, "format", &spec.format, &live.format, |f| {
            quoted(f)
        });
        push_if_differs(
            &mut out,
            "api_version",
            &spec.api_version,
            &live.api_version,
            |v| quoted(v),
        );
        out
    }
    fn removal(live: &WebhookSubscriptionRecord, _: &Ledger, _: super::PlanOptions) -> Removal {
        Removal::Delete {
            notes: vec![format!(
                "Shopify stops delivering {} to {}",
                live.topic,
                live.callback_url.as_deref().unwrap_or("its endpoint")
            )],
        }
    }
    fn unowned_hint(address: &ResourceAddr, name: &str) -> String {
        format!(
            "{address}: {name} would deliver to a service this stack does not own; declare the target service in this stack, or remove the subscription"
        )
    }
}

/// The shop of the stack being applied, with its token, or why not.
async fn shop_admin(ctx: &ApplyCtx, change: &Step) -> Result<(ShopifyAdmin, String), StepError> {
    let access = ctx.shopify.as_ref().ok_or_else(|| {
        StepError::Plan(format!(
            "{}: the stack has no [shopify] table, so stackctl cannot reach the shop; restore [shopify] and plan again",
            change.address
        ))
    })?;
    let admin = access
        .connect(&ctx.cloud)
        .await
        .map_err(|e| StepError::Plan(e.message()))?;
    Ok((admin, access.api_version.clone()))
}

/// The callback URL of `spec` now that its service was applied.
async fn applied_callback(ctx: &ApplyCtx, spec: &ShopifyWebhookSpec) -> Result<String, StepError> {
    match ctx.hosts.lock().await.get(&spec.target) {
        Some(host) => Ok(callback_url(host, &spec.path)),
        None => Err(StepError::Plan(format!(
            "the URL of {} is unknown: the service has no URL yet; re-run apply",
            spec.target
        ))),
    }
}

impl Converge for ShopifyWebhookKind {
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&ShopifyWebhookSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let (admin, shop_version) = shop_admin(ctx, change).await?;
        let resource = change.address.to_string();
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                let url = applied_callback(ctx, spec).await?;
                let input = SubscriptionInput {
                    callback_url: &url,
                    format: &spec.format,
                };
                observer.phase("creating webhook subscription");
                admin
                    .create_webhook_subscription(
                        &spec.api_version,
                        &resource,
                        &spec.topic,
                        &input,
                        observer,
                    )
                    .await?;
            }
            (Action::Update, Some(spec)) => {
                let url = applied_callback(ctx, spec).await?;
                let input = SubscriptionInput {
                    callback_url: &url,
                    format: &spec.format,
                };
                observer.phase("updating webhook subscription");
                admin
                    .update_webhook_subscription(
                        &spec.api_version,
                        &resource,
                        &change.name,
                        &input,
                        observer,
                    )
                    .await?;
            }
            (Action::Delete, _) => {
                observer.phase("deleting webhook subscription");
                admin
                    .delete_webhook_subscription(&shop_version, &change.name, observer)
                    .await?;
            }
            (action, _) => {
                return Err(StepError::Plan(format!(
                    "stackctl never replaces webhook subscriptions in place, yet the plan asks to {action:?} {}; re-run `stackctl plan`",
                    change.address
                )));
            }
        }
        Ok(())
    }
}

/// What a plan reads of the shop.
#[derive(Debug, Default)]
pub struct Observation {
    pub subscriptions: Vec<WebhookSubscriptionRecord>,
    /// Why the subscriptions were not read (the token has no value yet).
    pub unread: Option<String>,
}

/// Reads the shop's subscriptions for a plan, each marked with the service it delivers to;
/// nothing when the stack has no `[shopify]`.
pub async fn observe(
    cloud: &Cloud,
    stack: &Stack,
    services: &[crate::provider::run::ServiceRecord],
) -> Result<Observation, String> {
    let Some(access) = ShopAccess::of(stack) else {
        return Ok(Observation::default());
    };
    let admin = match access.connect(cloud).await {
        Ok(admin) => admin,
        Err(TokenError::NoValue(why)) => {
            return Ok(Observation {
                subscriptions: Vec::new(),
                unread: Some(why),
            });
        }
        Err(TokenError::Unreadable(why)) => return Err(why),
    };
    let mut subscriptions = admin
        .list_webhook_subscriptions(&access.api_version, &crate::provider::Silent)
        .await
        .map_err(|e| e.to_string())?;
    mark_targets(&mut subscriptions, &ServiceHost::of(services));
    Ok(Observation {
        subscriptions,
        unread: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ShopifyWebhookSpec {
        ShopifyWebhookSpec {
            name: "acme.myshopify.com: ORDERS_UPDATED to service.relay".into(),
            topic: "ORDERS_UPDATED".into(),
            target: ResourceAddr::new(Kind::Service, "relay"),
            service_id: "relay".into(),
            path: "/webhooks/shopify".into(),
            format: "JSON".into(),
            api_version: "2025-10".into(),
        }
    }

    fn live(url: &str, stack: Option<&str>) -> WebhookSubscriptionRecord {
        WebhookSubscriptionRecord {
            id: "gid://shopify/WebhookSubscription/7".into(),
            topic: "ORDERS_UPDATED".into(),
            callback_url: Some(url.into()),
            format: "JSON".into(),
            api_version: "2025-10".into(),
            points_at: stack.map(|s| PointsAt {
                service: "relay".into(),
                stack: Some(s.into()),
            }),
        }
    }

    fn known(host: Option<&str>) -> Known {
        Known {
            hosts: [(
                ResourceAddr::new(Kind::Service, "relay"),
                host.map(str::to_string),
            )]
            .into(),
            ..Known::default()
        }
    }

    #[test]
    fn a_subscription_is_ours_only_when_it_delivers_to_our_service() {
        let ledger = Ledger::empty("shop");
        let ours = live("https://relay-x.a.run.app/webhooks/shopify", Some("shop"));
        assert_eq!(
            ShopifyWebhookKind::ownership(&ours, "shop", &ledger),
            Ownership::Ours
        );
        let elsewhere = live("https://crm.example.com/hook", None);
        assert_eq!(
            ShopifyWebhookKind::ownership(&elsewhere, "shop", &ledger),
            Ownership::Unowned
        );
        assert_eq!(
            ShopifyWebhookKind::live_key(&ours),
            ShopifyWebhookKind::spec_key(&spec())
        );
        assert_ne!(
            ShopifyWebhookKind::live_key(&elsewhere),
            ShopifyWebhookKind::spec_key(&spec())
        );
    }

    #[test]
    fn a_new_path_is_an_update_of_the_callback_url_and_an_unknown_host_is_known_after_apply() {
        let current = live("https://relay-x.a.run.app/old", Some("shop"));
        let fields = ShopifyWebhookKind::diff(&spec(), &current, &known(Some("relay-x.a.run.app")));
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].field, "callback_url");
        assert_eq!(
            fields[0].after,
            Some(FieldValue::Known(
                "\"https://relay-x.a.run.app/webhooks/shopify\"".into()
            ))
        );
        let create = ShopifyWebhookKind::create_fields(&spec(), &known(None));
        assert_eq!(create[1].after, Some(FieldValue::KnownAfterApply));
    }

    #[test]
    fn targets_are_marked_by_the_callback_host() {
        let mut subscriptions = vec![live("https://relay-x.a.run.app/w", None)];
        subscriptions[0].points_at = None;
        let relay = ServiceHost {
            host: "relay-x.a.run.app".into(),
            target: PointsAt {
                service: "relay".into(),
                stack: Some("shop".into()),
            },
        };
        mark_targets(&mut subscriptions, &[relay]);
        assert_eq!(
            subscriptions[0].points_at,
            Some(PointsAt {
                service: "relay".into(),
                stack: Some("shop".into())
            })
        );
    }
}
