//! One trace end to end: the three services as real processes export over OTLP/HTTP to a
//! receiver inside this test (passed through devstack's telemetry variables, as a person's
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is), and each getcode gives one trace holding main-app's request,
//! its third-party call and enqueue, third-party-api's handling, and queue-worker's processing and
//! ledger write.
//!
//! main-app's Key Vault fetch (`keyvault.get_secret`, shared-auth's secret cache) is in a
//! request's trace only when that request fetches the key: after the key was refused (a
//! rotation) or when it is stale. Otherwise the key comes from the cache, loaded at start and
//! refreshed in the background before it goes stale, in traces of their own; so the fetch is
//! asserted in the trace of a getcode right after a rotation, not in the others.

use devstack::stack::{FUNCTION_KEY_NAME, SECRET_NAME, Service};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use test_kit::otlp::OtlpReceiver;
use test_kit::{eventually_ok, get_code, start_stack_with};

#[tokio::test]
async fn each_getcode_is_one_trace_across_the_three_services() {
    let receiver = OtlpReceiver::start();
    let stack = start_stack_with(|options| {
        options.services = Service::ALL.to_vec();
        options.telemetry_env = vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                receiver.endpoint().into(),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
        ];
    })
    .await;
    let http = reqwest::Client::new();
    const CODES: usize = 3;
    for _ in 0..CODES {
        get_code(&stack).await;
    }
    // A rotation: the new key in the vault, then in third-party-api (the old one revoked). The
    // next getcode is refused with the cached key and fetches the new one in its own trace.
    let new_key = "rotated-key-value-for-the-trace-test-0123";
    stack
        .vault
        .seed(SECRET_NAME, &shared_auth::Secret::new(new_key));
    let res = stack
        .http()
        .put(format!(
            "{}/admin/functions/RandomNumber/keys/{FUNCTION_KEY_NAME}",
            stack.urls.third_party_api
        ))
        .header("x-functions-key", stack.master_key().expose())
        .json(&serde_json::json!({ "value": new_key }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "key replaced");
    let rotated_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let res = http
        .get(format!("{}/api/v1/getcode", stack.urls.main_app))
        .header(
            "traceparent",
            format!("00-{rotated_trace}-00f067aa0ba902b7-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Per trace: the (service, span) pairs seen, for the traces main-app started with a code.
    let wanted: BTreeSet<(&str, &str)> = [
        ("main-app", "issue_code"),
        ("main-app", "GET RandomNumber"),
        ("main-app", "ledger.record"),
        ("main-app", "queue.send code-issued"),
        ("third-party-api", "RandomNumber"),
        ("queue-worker", "queue.process"),
        ("queue-worker", "ledger.confirm"),
    ]
    .into();
    let key_vault = ("main-app".to_owned(), "keyvault.get_secret".to_owned());
    let holds_wanted = |spans: &BTreeSet<(String, String)>| {
        wanted
            .iter()
            .all(|(s, n)| spans.contains(&(s.to_string(), n.to_string())))
    };
    let traced = "each getcode one trace holding every wanted span, the rotated one the fetch";
    eventually_ok(Duration::from_secs(30), traced, || async {
        let mut traces: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        // main-app is public: a caller's traceparent is linked, not continued
        // (INCOMING_TRACEPARENT), so the rotated getcode's trace is the one linked to it.
        let mut linked_to_caller = None;
        for span in receiver.spans() {
            if span.service == "main-app"
                && span.linked_trace_ids.iter().any(|t| t == rotated_trace)
            {
                linked_to_caller = Some(span.trace_id.clone());
            }
            traces
                .entry(span.trace_id)
                .or_default()
                .insert((span.service, span.name));
        }
        assert!(
            !traces.contains_key(rotated_trace),
            "the caller's trace is not continued"
        );
        let rotated = linked_to_caller
            .and_then(|id| traces.get(&id).cloned())
            .unwrap_or_default();
        let issued: Vec<_> = traces
            .values()
            .filter(|spans| spans.iter().any(|(_, n)| n == "issue_code"))
            .collect();
        let complete = issued.iter().filter(|spans| holds_wanted(spans)).count();
        if issued.len() == CODES + 1
            && complete == CODES + 1
            && holds_wanted(&rotated)
            && rotated.contains(&key_vault)
        {
            Ok(())
        } else {
            Err(format!(
                "{} traces with a code, {complete} complete, of {}; wanted {wanted:?}, and \
                 {key_vault:?} in the rotated one: {traces:#?}",
                issued.len(),
                CODES + 1
            ))
        }
    })
    .await;
    stack.stop().await;
}

/// What Container Apps' managed agent takes: OTLP over gRPC, set by the same variables the
/// environment injects (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`). Each
/// service sends its spans and its log records; a getcode is one trace across the three, and
/// its log records carry that trace. No secret travels.
#[tokio::test]
async fn over_grpc_every_service_sends_spans_and_logs_and_a_getcode_is_one_trace() {
    let receiver = OtlpReceiver::start_grpc();
    let stack = start_stack_with(|options| {
        options.services = Service::ALL.to_vec();
        options.telemetry_env = vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                receiver.endpoint().into(),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "grpc".into()),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
            ("OTEL_BLRP_SCHEDULE_DELAY".into(), "200".into()),
        ];
    })
    .await;
    get_code(&stack).await;

    let services = ["main-app", "third-party-api", "queue-worker"];
    eventually_ok(
        Duration::from_secs(30),
        "the getcode's trace spans the three services, and each logged in it",
        || async {
            let spans = receiver.spans();
            let trace = spans
                .iter()
                .find(|s| s.service == "main-app" && s.name == "issue_code")
                .map(|s| s.trace_id.clone())
                .ok_or("no issue_code span yet")?;
            let in_trace = |service: &str| {
                spans
                    .iter()
                    .any(|s| s.trace_id == trace && s.service == service)
            };
            let logged_in_trace = |service: &str| {
                receiver
                    .logs()
                    .iter()
                    .any(|l| l.trace_id == trace && l.service == service && !l.body.is_empty())
            };
            let missing: Vec<String> = services
                .iter()
                .flat_map(|s| {
                    [
                        (!in_trace(s)).then(|| format!("{s}: no span in trace {trace}")),
                        (!logged_in_trace(s)).then(|| format!("{s}: no log record in it")),
                    ]
                })
                .flatten()
                .collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("{missing:?}; logs: {:#?}", receiver.logs()))
            }
        },
    )
    .await;
    // The exporters' own chatter is not exported as log records (it would feed itself).
    for log in receiver.logs() {
        assert!(
            !log.body.contains("opentelemetry") && !log.body.contains("h2::"),
            "{log:?}"
        );
    }
    for secret in [stack.master_key(), stack.third_party_api_key()] {
        assert!(
            !receiver.bodies_contain(secret.expose().as_bytes()),
            "a key travelled in telemetry"
        );
    }
    stack.stop().await;
}
