//! The API-key middleware through actix-web: header and query keys, refusals, and rotation while
//! requests are in flight.

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, test, web};
use service_kit::{ErrorBody, RequireApiKey};
use shared_auth::{ApiKeyRing, AuthorizedKey, Secret};
use std::sync::Arc;

const OLD: &str = "old-key-value-AAAAAAAAAAAAAAAA";
const SHARED: &str = "shared-key-value-BBBBBBBBBBBBBB";
const NEW: &str = "new-key-value-CCCCCCCCCCCCCCCC";

fn ring_of(keys: &[(&str, &str)]) -> Vec<(String, Secret)> {
    keys.iter()
        .map(|(n, v)| (n.to_string(), Secret::new(*v)))
        .collect()
}

fn set(ring: &ApiKeyRing, keys: &[(&str, &str)]) {
    let keys = ring_of(keys);
    ring.replace(keys.iter().map(|(n, s)| (n.as_str(), s)));
}

async fn whoami(key: web::ReqData<AuthorizedKey>) -> HttpResponse {
    HttpResponse::Ok().body(key.name.to_string())
}

async fn slow_whoami(key: web::ReqData<AuthorizedKey>) -> HttpResponse {
    actix_web::rt::time::sleep(std::time::Duration::from_millis(2)).await;
    HttpResponse::Ok().body(key.name.to_string())
}

macro_rules! app {
    ($ring:expr) => {
        test::init_service(
            App::new().service(
                web::scope("/api")
                    .wrap(RequireApiKey::new($ring.clone()))
                    .route("/whoami", web::get().to(whoami))
                    .route("/slow-whoami", web::get().to(slow_whoami)),
            ),
        )
        .await
    };
}

#[actix_web::test]
async fn header_or_query_key_is_accepted_and_named() {
    let ring = Arc::new(ApiKeyRing::default());
    set(&ring, &[("old", OLD), ("shared", SHARED)]);
    let app = app!(ring);

    let req = test::TestRequest::get()
        .uri("/api/whoami")
        .insert_header(("x-functions-key", OLD))
        .to_request();
    assert_eq!(test::call_and_read_body(&app, req).await, "old");

    let req = test::TestRequest::get()
        .uri(&format!("/api/whoami?code={SHARED}"))
        .to_request();
    assert_eq!(test::call_and_read_body(&app, req).await, "shared");

    // The header wins over the query, as in Azure Functions.
    let req = test::TestRequest::get()
        .uri(&format!("/api/whoami?code={SHARED}"))
        .insert_header(("x-functions-key", "wrong"))
        .to_request();
    assert_eq!(test::call_service(&app, req).await.status(), 401);
}

#[actix_web::test]
async fn missing_wrong_and_odd_keys_get_the_same_401() {
    let ring = Arc::new(ApiKeyRing::default());
    set(&ring, &[("old", OLD)]);
    let app = app!(ring);
    let odd_bytes = actix_web::http::header::HeaderValue::from_bytes(&[0xff, 0xfe, b'a']).unwrap();
    let requests = vec![
        test::TestRequest::get().uri("/api/whoami"),
        test::TestRequest::get().uri("/api/whoami?code="),
        test::TestRequest::get().uri("/api/whoami?code=%FF%00"),
        test::TestRequest::get()
            .uri("/api/whoami")
            .insert_header(("x-functions-key", "")),
        test::TestRequest::get()
            .uri("/api/whoami")
            .insert_header(("x-functions-key", &OLD[..OLD.len() - 1])),
        test::TestRequest::get()
            .uri("/api/whoami")
            .insert_header(("x-functions-key", "x".repeat(8000))),
        test::TestRequest::get()
            .uri("/api/whoami")
            .insert_header(("x-functions-key", odd_bytes)),
    ];
    let mut bodies = Vec::new();
    for req in requests {
        let res = test::call_service(&app, req.to_request()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let body: ErrorBody = test::read_body_json(res).await;
        bodies.push(body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "one answer for all"
    );
    assert_eq!(bodies[0].error, "unauthorized");
}

#[actix_web::test]
async fn rotation_while_requests_are_in_flight_never_refuses_a_key_in_both_sets() {
    let ring = Arc::new(ApiKeyRing::default());
    set(&ring, &[("old", OLD), ("shared", SHARED)]);
    let app = app!(ring);

    // Readers hammer the ring from other threads while the app serves and the ring flips.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (ring, stop) = (ring.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut checks = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = ring.verify(SHARED.as_bytes()).map(|k| k.name.to_string());
                    assert_eq!(name.as_deref(), Some("shared"));
                    if let Some(k) = ring.verify(OLD.as_bytes()) {
                        assert_eq!(&*k.name, "old");
                    }
                    checks += 1;
                }
                checks
            })
        })
        .collect();

    // 400 requests in flight (each handler yields mid-request) while the ring flips under them.
    let requests = (0..400).map(|_| {
        let req = test::TestRequest::get()
            .uri("/api/slow-whoami")
            .insert_header(("x-functions-key", SHARED))
            .to_request();
        test::call_service(&app, req)
    });
    let rotator = async {
        for i in 0..100 {
            let keys: &[(&str, &str)] = if i % 2 == 0 {
                &[("shared", SHARED), ("new", NEW)]
            } else {
                &[("old", OLD), ("shared", SHARED)]
            };
            set(&ring, keys);
            actix_web::rt::time::sleep(std::time::Duration::from_micros(200)).await;
        }
    };
    let (responses, ()) = futures::join!(futures::future::join_all(requests), rotator);
    for res in responses {
        assert_eq!(res.status(), 200);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().expect("reader saw a wrong answer") > 0);
    }

    set(&ring, &[("shared", SHARED), ("new", NEW)]);
    let old = test::TestRequest::get()
        .uri("/api/whoami")
        .insert_header(("x-functions-key", OLD))
        .to_request();
    assert_eq!(test::call_service(&app, old).await.status(), 401);
    let new = test::TestRequest::get()
        .uri("/api/whoami")
        .insert_header(("x-functions-key", NEW))
        .to_request();
    assert_eq!(test::call_and_read_body(&app, new).await, "new");
}

mod properties {
    //! Property tests of the ring: what is added validates under its name, nothing else does,
    //! what is removed stops validating; any name, value or presented bytes, never a panic.

    use super::{ApiKeyRing, Arc, RequireApiKey, Secret, StatusCode, whoami};
    use actix_web::test as actix_test;
    use actix_web::{App, web};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Keys by value (so values are distinct): arbitrary unicode names, values of 8 characters or
    /// more (real keys have 16 or more; a 1-character value could appear in any text by chance).
    fn keys() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map(
            prop_oneof![".{8,80}", "[A-Za-z0-9+/=_.-]{16,64}"],
            any::<String>(),
            0..8,
        )
    }

    fn ring_with(keys: &BTreeMap<String, String>) -> ApiKeyRing {
        let secrets: Vec<(String, Secret)> = keys
            .iter()
            .map(|(value, name)| (name.clone(), Secret::new(value.as_str())))
            .collect();
        ApiKeyRing::new(secrets.iter().map(|(n, s)| (n.as_str(), s)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_key_added_validates_under_its_name(keys in keys()) {
            let ring = ring_with(&keys);
            prop_assert_eq!(ring.len(), keys.len());
            for (value, name) in &keys {
                let found = ring.verify(value.as_bytes()).map(|k| k.name.to_string());
                prop_assert_eq!(found.as_deref(), Some(name.as_str()));
            }
        }

        #[test]
        fn any_other_bytes_do_not_validate(keys in keys(), presented in prop::collection::vec(any::<u8>(), 0..300)) {
            let ring = ring_with(&keys);
            let is_a_key = keys.keys().any(|v| v.as_bytes() == presented.as_slice());
            prop_assert_eq!(ring.verify(&presented).is_some(), is_a_key);
            // Near misses: one byte more, one byte less.
            for value in keys.keys() {
                let mut longer = value.as_bytes().to_vec();
                longer.push(b'x');
                let shorter = &value.as_bytes()[..value.len() - 1];
                for miss in [&longer[..], shorter] {
                    let is_a_key = !miss.is_empty() && keys.keys().any(|v| v.as_bytes() == miss);
                    prop_assert_eq!(ring.verify(miss).is_some(), is_a_key);
                }
            }
            prop_assert!(ring.verify(b"").is_none());
        }

        #[test]
        fn a_removed_key_stops_validating_and_the_others_stay(keys in keys(), pick in any::<prop::sample::Index>()) {
            prop_assume!(!keys.is_empty());
            let ring = ring_with(&keys);
            let removed = keys.keys().nth(pick.index(keys.len())).unwrap().clone();
            let mut rest = keys.clone();
            rest.remove(&removed);
            let secrets: Vec<(String, Secret)> = rest
                .iter()
                .map(|(value, name)| (name.clone(), Secret::new(value.as_str())))
                .collect();
            ring.replace(secrets.iter().map(|(n, s)| (n.as_str(), s)));
            prop_assert!(ring.verify(removed.as_bytes()).is_none());
            for (value, name) in &rest {
                let found = ring.verify(value.as_bytes()).map(|k| k.name.to_string());
                prop_assert_eq!(found.as_deref(), Some(name.as_str()));
            }
        }

        #[test]
        fn debug_shows_names_never_values(keys in keys()) {
            let printed = format!("{:?}", ring_with(&keys));
            for (value, name) in &keys {
                let in_a_name = keys.values().any(|n| n.contains(value.as_str()))
                    || format!("{name:?}").contains(value.as_str());
                prop_assert!(in_a_name || !printed.contains(value.as_str()));
            }
        }

        #[test]
        fn any_header_bytes_get_200_for_a_key_and_401_otherwise(
            keys in keys(),
            presented in prop::collection::vec(prop_oneof![9u8..=9, 32u8..=126, 128u8..=255], 0..200),
        ) {
            let ring = Arc::new(ring_with(&keys));
            let is_a_key = !presented.is_empty() && keys.keys().any(|v| v.as_bytes() == presented.as_slice());
            let header = actix_web::http::header::HeaderValue::from_bytes(&presented).unwrap();
            let status = actix_web::rt::System::new().block_on(async {
                let app = actix_test::init_service(
                    App::new().service(
                        web::scope("/api")
                            .wrap(RequireApiKey::new(ring.clone()))
                            .route("/whoami", web::get().to(whoami)),
                    ),
                )
                .await;
                let req = actix_test::TestRequest::get()
                    .uri("/api/whoami")
                    .insert_header(("x-functions-key", header))
                    .to_request();
                actix_test::call_service(&app, req).await.status()
            });
            let expected = if is_a_key { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
            prop_assert_eq!(status, expected);
        }
    }
}
