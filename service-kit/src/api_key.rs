//! The actix-web guard for Azure-Functions-style API keys: [`RequireApiKey`] checks the key a
//! request presents (the `x-functions-key` header, else the `code` query parameter) against a
//! [`shared_auth::ApiKeyRing`], and puts the [`AuthorizedKey`] in the request's extensions
//! (`web::ReqData<AuthorizedKey>` in a handler) or answers 401.

use crate::error_body::json_error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest};
use futures::future::{LocalBoxFuture, Ready, ready};
use shared_auth::ApiKeyRing;
use shared_auth::api_key::{AuthorizedKey, KEY_HEADER, KEY_QUERY_PARAMETER};
use std::rc::Rc;
use std::sync::Arc;

/// Checks the key `request` presents against `ring`: the header if present, otherwise the query
/// parameter.
pub fn verify_request(ring: &ApiKeyRing, request: &HttpRequest) -> Option<AuthorizedKey> {
    ring.verify(&presented_key(request)?)
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
        match (verify_request(&self.ring, request.request()), &self.reload) {
            (Some(key), _) => Box::pin(admit(service, request, key)),
            (None, None) => Box::pin(refuse(request)),
            (None, Some(reload)) => {
                let (reload, ring) = (reload.clone(), self.ring.clone());
                Box::pin(async move {
                    reload().await;
                    match verify_request(&ring, request.request()) {
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
