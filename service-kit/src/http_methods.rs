//! `405 Method Not Allowed` with an `Allow` header for actix-web, instead of the 404 actix answers
//! when a path exists but no route declares the request's method.
//!
//! actix-web's `App::route(path, web::get().to(h))` makes a resource that matches only GET, so a
//! DELETE on that path falls through to the next resource and ends as a 404. Declaring the
//! methods of a path once, with [`resource`], gives one resource per path whose default service
//! answers any other method with status 405, `Allow` listing the declared methods (in
//! declaration order, no duplicate) and the JSON [`ErrorBody`](crate::ErrorBody)
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

use crate::error_body::json_error;
use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, Handler, HttpResponse, Resource, Responder, web};
use std::sync::Arc;

/// The 405 response: `Allow: <allow>` and the JSON error body `method_not_allowed`.
fn method_not_allowed(allow: &str) -> HttpResponse {
    let message = format!("Allowed methods: {allow}.");
    let mut response = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        message,
    );
    // Method names are tokens, always valid header text.
    if let Ok(value) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// A handler answering `document` as `application/json` (a service's OpenAPI document).
pub fn json_document(
    document: &'static str,
) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone + 'static {
    move || {
        let response = HttpResponse::Ok()
            .content_type("application/json")
            .body(document);
        std::future::ready(response)
    }
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
/// `ServiceConfig::service`.
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

    /// Serves DELETE with `handler`.
    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.route(Method::DELETE, handler)
    }
}

impl HttpServiceFactory for MethodResource {
    /// Registers the resource, its default service answering 405 with `Allow`.
    fn register(self, config: &mut AppService) {
        let allow: Vec<&str> = self.allow.iter().map(Method::as_str).collect();
        let allow: Arc<str> = allow.join(", ").into();
        let default = web::to(move || {
            let allow = allow.clone();
            async move { method_not_allowed(&allow) }
        });
        self.resource.default_service(default).register(config);
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

    #[actix_web::test]
    async fn declared_methods_answer_and_others_get_405_with_allow() {
        let app =
            actix_test::init_service(App::new().service(resource("/r").get(ok).post(ok).post(ok)))
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
            ("/r", Method::PUT, "GET, POST"),
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
