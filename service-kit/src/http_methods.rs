//! `405 Method Not Allowed` with an `Allow` header for actix-web, instead of the 404 actix answers
//! when a path exists but no route declares the request's method.
//!
//! actix-web's `App::route(path, web::get().to(h))` makes a resource that matches only GET, so a
//! DELETE on that path falls through to the next resource and ends as a 404. Declaring the
//! methods of a path once, with [`resource`], gives one resource per path whose default service
//! answers any other method with [`method_not_allowed`]: status 405, `Allow` listing the declared
//! methods (in declaration order, no duplicate) and the JSON [`ErrorBody`](crate::ErrorBody)
//! `{"error": "method_not_allowed", "message": "Allowed methods: GET, POST."}`.
//!
//! Only the declared methods are listed and served: HEAD and OPTIONS are not implied by GET, so
//! `Allow` always matches what the OpenAPI document declares.
//!
//! ```
//! use actix_web::{App, HttpResponse, web};
//! use service_kit::http_methods::resource;
//!
//! async fn number() -> HttpResponse {
//!     HttpResponse::Ok().json(serde_json::json!({ "value": 7 }))
//! }
//!
//! // GET and POST answer; DELETE, PUT, HEAD... get 405 with `Allow: GET, POST`.
//! let app = App::new().service(web::scope("/api").service(resource("/RandomNumber").get(number).post(number)));
//! ```
//!
//! For a `web::resource` built by hand (to `.wrap` it, say), give it
//! `.default_service(method_not_allowed_service(&[Method::GET]))` with the methods its routes
//! declare.

use crate::error_body::json_error;
use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, Handler, HttpResponse, Resource, Responder, Route, web};
use std::sync::Arc;

/// The `Allow` header value for `allow`: methods joined by `, `, in order, without duplicates.
pub fn allow_header_value(allow: &[Method]) -> String {
    let mut seen: Vec<&Method> = Vec::with_capacity(allow.len());
    for method in allow {
        if !seen.contains(&method) {
            seen.push(method);
        }
    }
    seen.iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The 405 response: `Allow: <allow>` and the JSON error body `method_not_allowed`.
pub fn method_not_allowed(allow: &[Method]) -> HttpResponse {
    let listed = allow_header_value(allow);
    let message = if listed.is_empty() {
        "No method is allowed on this resource.".to_owned()
    } else {
        format!("Allowed methods: {listed}.")
    };
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    );
    // Method names are tokens, always valid header text.
    if let Ok(value) = HeaderValue::from_str(&listed) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// A route answering [`method_not_allowed`] for `allow`; for `web::resource(..).default_service(..)`.
pub fn method_not_allowed_service(allow: &[Method]) -> Route {
    let allow: Arc<[Method]> = allow.into();
    web::to(move || {
        let allow = allow.clone();
        async move { method_not_allowed(&allow) }
    })
}

/// Starts a [`MethodResource`] at `path`; add one handler per method, then pass it to `.service`.
pub fn resource(path: &str) -> MethodResource {
    MethodResource {
        resource: web::resource(path),
        allow: Vec::new(),
    }
}

/// A `web::resource` whose declared methods are served and every other method gets a 405 with
/// `Allow`. Build it with [`resource`]; register it with `App::service`, `Scope::service` or
/// `ServiceConfig::service`, or turn it into a plain [`Resource`] with [`Self::into_resource`].
pub struct MethodResource {
    resource: Resource,
    allow: Vec<Method>,
}

impl MethodResource {
    /// Serves `method` with `handler` (any actix-web handler) and lists it in `Allow`.
    pub fn route<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        if !self.allow.contains(&method) {
            self.allow.push(method);
        }
        self
    }

    /// Serves GET with `handler`.
    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::GET, handler)
    }

    /// Serves POST with `handler`.
    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::POST, handler)
    }

    /// Serves PUT with `handler`.
    pub fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::PUT, handler)
    }

    /// Serves PATCH with `handler`.
    pub fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::PATCH, handler)
    }

    /// Serves DELETE with `handler`.
    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::DELETE, handler)
    }

    /// The methods declared so far, in declaration order: what `Allow` will list.
    pub fn allowed(&self) -> &[Method] {
        &self.allow
    }

    /// The finished actix-web [`Resource`], its default service answering 405 with `Allow`.
    pub fn into_resource(self) -> Resource {
        let default = method_not_allowed_service(&self.allow);
        self.resource.default_service(default)
    }
}

impl HttpServiceFactory for MethodResource {
    fn register(self, config: &mut AppService) {
        self.into_resource().register(config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::App;
    use actix_web::test as actix_test;

    async fn ok() -> HttpResponse {
        HttpResponse::Ok().body("ok")
    }

    #[test]
    fn allow_lists_each_method_once_in_order() {
        assert_eq!(
            allow_header_value(&[Method::GET, Method::POST, Method::GET]),
            "GET, POST"
        );
        assert_eq!(allow_header_value(&[]), "");
    }

    #[actix_web::test]
    async fn declared_methods_answer_and_others_get_405_with_allow() {
        let app = actix_test::init_service(
            App::new().service(resource("/r").get(ok).post(ok)).service(
                web::resource("/hand")
                    .route(web::put().to(ok))
                    .default_service(method_not_allowed_service(&[Method::PUT])),
            ),
        )
        .await;
        for method in [Method::GET, Method::POST] {
            let req = actix_test::TestRequest::default()
                .method(method)
                .uri("/r")
                .to_request();
            assert_eq!(actix_test::call_service(&app, req).await.status(), 200);
        }
        for (uri, method, allow) in [
            ("/r", Method::DELETE, "GET, POST"),
            ("/r", Method::HEAD, "GET, POST"),
            ("/r", Method::from_bytes(b"BREW").unwrap(), "GET, POST"),
            ("/hand", Method::GET, "PUT"),
        ] {
            let req = actix_test::TestRequest::default()
                .method(method)
                .uri(uri)
                .to_request();
            let res = actix_test::call_service(&app, req).await;
            assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(res.headers().get(ALLOW).unwrap(), allow);
            let body: crate::ErrorBody = actix_test::read_body_json(res).await;
            assert_eq!(body.error, "method_not_allowed");
            assert_eq!(body.message, format!("Allowed methods: {allow}."));
        }
        let req = actix_test::TestRequest::get().uri("/nowhere").to_request();
        assert_eq!(actix_test::call_service(&app, req).await.status(), 404);
    }
}
