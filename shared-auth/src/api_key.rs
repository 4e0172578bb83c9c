//! API keys in the style of Azure Functions: a ring of named keys checked in constant time against
//! the `x-functions-key` header or the `code` query parameter, swappable while serving (rotation).

use crate::error_body::json_error;
use crate::secret::Secret;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures::future::{LocalBoxFuture, Ready, ready};
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Header that carries a key, as in Azure Functions.
pub const KEY_HEADER: &str = "x-functions-key";
/// Query parameter that carries a key when the header is absent.
pub const KEY_QUERY_PARAMETER: &str = "code";

/// One key in the ring: its name and a digest of its value (the value itself is not kept).
struct RingEntry {
    name: Arc<str>,
    digest: [u8; 32],
}

/// A set of named keys, any of which authorises a request. Cheap to read, replaced atomically.
/// It remembers, per key name, when it last accepted that key (kept across replacements, so a
/// rotation can see that nobody presents an old key any more).
#[derive(Default)]
pub struct ApiKeyRing {
    entries: RwLock<Arc<Vec<RingEntry>>>,
    /// Key name → milliseconds since the Unix epoch of its last acceptance.
    accepted: RwLock<HashMap<Arc<str>, AtomicU64>>,
}

impl std::fmt::Debug for ApiKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRing")
            .field("names", &self.names())
            .finish()
    }
}

/// The key that authorised a request: its name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    /// The key's name, safe to log.
    pub name: Arc<str>,
}

fn digest(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

impl ApiKeyRing {
    /// A ring holding `keys` (name, value).
    pub fn new<'a>(keys: impl IntoIterator<Item = (&'a str, &'a Secret)>) -> Self {
        let ring = Self::default();
        ring.replace(keys);
        ring
    }

    /// Replaces every key at once; requests already checked are unaffected, the next ones see
    /// the new set. A key present in both sets never fails during the swap.
    pub fn replace<'a>(&self, keys: impl IntoIterator<Item = (&'a str, &'a Secret)>) {
        let entries: Vec<RingEntry> = keys
            .into_iter()
            .map(|(name, value)| RingEntry {
                name: Arc::from(name),
                digest: digest(value.expose().as_bytes()),
            })
            .collect();
        *self.entries.write() = Arc::new(entries);
    }

    /// The names of the keys in force.
    pub fn names(&self) -> Vec<String> {
        self.snapshot().iter().map(|e| e.name.to_string()).collect()
    }

    /// The number of keys in force.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// True when no key is in force (every request is refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Arc<Vec<RingEntry>> {
        self.entries.read().clone()
    }

    /// The key `presented` matches, if any. Every entry is compared, in constant time, on
    /// digests of equal length, so neither the position of a match nor the length of the value
    /// shows in the timing.
    pub fn verify(&self, presented: &[u8]) -> Option<AuthorizedKey> {
        if presented.is_empty() {
            return None;
        }
        let candidate = digest(presented);
        let entries = self.snapshot();
        let mut found = 0u32; // index + 1 of the match, 0 for none
        for (index, entry) in entries.iter().enumerate() {
            let is_match = entry.digest.ct_eq(&candidate);
            found = u32::conditional_select(&found, &(index as u32 + 1), is_match);
        }
        let index = (found as usize).checked_sub(1)?;
        let name = entries[index].name.clone();
        self.record_acceptance(&name);
        Some(AuthorizedKey { name })
    }

    /// When the key called `name` was last accepted by this ring, if ever.
    pub fn last_accepted(&self, name: &str) -> Option<SystemTime> {
        let accepted = self.accepted.read();
        let millis = accepted.get(name)?.load(Ordering::Relaxed);
        Some(UNIX_EPOCH + Duration::from_millis(millis))
    }

    /// Notes that `name` was accepted now: an atomic store under a shared lock, the exclusive
    /// lock only the first time a name is seen.
    fn record_acceptance(&self, name: &Arc<str>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if let Some(at) = self.accepted.read().get(name) {
            at.store(now, Ordering::Relaxed);
            return;
        }
        self.accepted
            .write()
            .entry(name.clone())
            .or_default()
            .store(now, Ordering::Relaxed);
    }

    /// Checks the key a request presents: the header if present, otherwise the query parameter.
    pub fn verify_request(&self, request: &HttpRequest) -> Option<AuthorizedKey> {
        self.verify(&presented_key(request)?)
    }
}

/// The raw key a request presents, header first (as Azure Functions reads it).
fn presented_key(request: &HttpRequest) -> Option<Vec<u8>> {
    if let Some(value) = request.headers().get(KEY_HEADER) {
        return Some(value.as_bytes().to_vec());
    }
    form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(name, _)| name == KEY_QUERY_PARAMETER)
        .map(|(_, value)| value.into_owned().into_bytes())
}

/// The one answer to a missing or wrong key: it does not say which part was wrong.
pub fn unauthorized() -> actix_web::HttpResponse {
    json_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "A valid access key is required in the x-functions-key header or the code query parameter.",
    )
}

/// What a guard runs when a presented key is not in its ring, before it checks once more: the
/// ring's owner re-reading where the keys are kept.
pub type ReloadOnMiss = Arc<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// Middleware that admits only requests presenting a key of `ring`, and records which key did
/// (an [`AuthorizedKey`] in the request extensions) for handlers and the access log.
#[derive(Clone)]
pub struct RequireApiKey {
    ring: Arc<ApiKeyRing>,
    reload: Option<ReloadOnMiss>,
}

impl RequireApiKey {
    /// Guards a scope with `ring`.
    pub fn new(ring: Arc<ApiKeyRing>) -> Self {
        Self { ring, reload: None }
    }

    /// The same guard, running `reload` when a key is not in the ring, then checking again.
    pub fn reloading_on_miss(self, reload: ReloadOnMiss) -> Self {
        Self {
            reload: Some(reload),
            ..self
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireApiKey
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireApiKeyService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireApiKeyService {
            service: Rc::new(service),
            ring: self.ring.clone(),
            reload: self.reload.clone(),
        }))
    }
}

/// The service [`RequireApiKey`] wraps around a scope.
pub struct RequireApiKeyService<S> {
    service: Rc<S>,
    ring: Arc<ApiKeyRing>,
    reload: Option<ReloadOnMiss>,
}

impl<S, B> Service<ServiceRequest> for RequireApiKeyService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        match (self.ring.verify_request(request.request()), &self.reload) {
            (Some(key), _) => Box::pin(admit(service, request, key)),
            (None, None) => Box::pin(refuse(request)),
            (None, Some(reload)) => {
                let (reload, ring) = (reload.clone(), self.ring.clone());
                Box::pin(async move {
                    reload().await;
                    match ring.verify_request(request.request()) {
                        Some(key) => admit(service, request, key).await,
                        None => refuse(request).await,
                    }
                })
            }
        }
    }
}

/// Passes a request `key` admitted on to `service`, the key recorded for handlers and the log.
async fn admit<S, B>(
    service: Rc<S>,
    request: ServiceRequest,
    key: AuthorizedKey,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    tracing::Span::current().record("api_key.name", &*key.name);
    request.extensions_mut().insert(key);
    Ok(service.call(request).await?.map_into_left_body())
}

/// The 401 for a request with no key of the ring.
async fn refuse<B>(
    request: ServiceRequest,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    Ok(request.into_response(unauthorized()).map_into_right_body())
}

/// Handlers behind [`RequireApiKey`] take the key that admitted the request as an argument.
impl FromRequest for AuthorizedKey {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(
            request
                .extensions()
                .get::<AuthorizedKey>()
                .cloned()
                .ok_or_else(|| {
                    actix_web::error::InternalError::from_response(
                        "route not guarded by RequireApiKey",
                        unauthorized(),
                    )
                    .into()
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[(&str, &str)]) -> ApiKeyRing {
        let secrets: Vec<(String, Secret)> = keys
            .iter()
            .map(|(n, v)| (n.to_string(), Secret::new(*v)))
            .collect();
        ApiKeyRing::new(secrets.iter().map(|(n, s)| (n.as_str(), s)))
    }

    #[test]
    fn the_ring_remembers_when_each_key_was_last_accepted_across_replacements() {
        let r = ring(&[("old", "k-old-0123456789"), ("new", "k-new-0123456789")]);
        assert_eq!(r.last_accepted("old"), None);
        let before = SystemTime::now() - Duration::from_millis(1);
        assert!(r.verify(b"k-old-0123456789").is_some());
        assert!(r.verify(b"k-wrong-123456789").is_none());
        let at = r.last_accepted("old").expect("recorded");
        assert!(at >= before && at <= SystemTime::now() + Duration::from_millis(1));
        assert_eq!(r.last_accepted("new"), None, "only the key presented");
        let new = Secret::new("k-new-0123456789");
        r.replace([("new", &new)]);
        assert_eq!(r.last_accepted("old"), Some(at), "kept after the key left");
        assert!(r.verify(b"k-old-0123456789").is_none());
        assert_eq!(
            r.last_accepted("old"),
            Some(at),
            "a refused key is not recorded"
        );
    }

    #[test]
    fn right_key_gives_its_name_and_wrong_keys_give_nothing() {
        let ring = ring(&[
            ("default", "k-default-0123456789"),
            ("ops", "k-ops-0123456789"),
        ]);
        assert_eq!(
            ring.verify(b"k-ops-0123456789").map(|k| k.name.to_string()),
            Some("ops".into())
        );
        assert_eq!(
            ring.verify(b"k-default-0123456789")
                .map(|k| k.name.to_string()),
            Some("default".into())
        );
        for wrong in [
            &b""[..],
            b"k",
            b"k-ops-012345678",
            b"k-ops-01234567890",
            b"K-OPS-0123456789",
            &[0xff, 0x00, 0xfe, b'\n'][..],
            &[b'a'; 10_000][..],
        ] {
            assert!(ring.verify(wrong).is_none());
        }
    }

    #[test]
    fn empty_ring_refuses_everything() {
        let ring = ApiKeyRing::default();
        assert!(ring.is_empty());
        assert!(ring.verify(b"anything").is_none());
    }

    #[test]
    fn debug_lists_names_only() {
        let ring = ring(&[("default", "value-that-stays-hidden")]);
        let printed = format!("{ring:?}");
        assert!(printed.contains("default"));
        assert!(!printed.contains("value-that-stays-hidden"));
    }
}
