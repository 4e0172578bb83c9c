//! One trace end to end: the three services as real processes export over OTLP/HTTP to a
//! receiver inside this test (passed through devstack's telemetry variables, as a person's
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is), and each getcode gives one trace holding main-app's request,
//! its third-party call and enqueue, third-party-api's handling, and queue-worker's processing and
//! ledger write.

use actix_web::{App, HttpResponse, HttpServer, web};
use devstack::stack::{DevStack, Service, StackOptions};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One exported span: which service, its name, its trace.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    name: String,
    trace_id: String,
}

type Received = Arc<Mutex<Vec<Exported>>>;

async fn receive(received: web::Data<Mutex<Vec<Exported>>>, body: web::Bytes) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut received = received.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref()?.value.as_ref())
            .map(|v| match v {
                Value::StringValue(name) => name.clone(),
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.push(Exported {
                    service: service.clone(),
                    name: span.name,
                    trace_id: span.trace_id.iter().map(|b| format!("{b:02x}")).collect(),
                });
            }
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(Vec::new())
}

/// An OTLP/HTTP (protobuf) trace receiver on a free loopback port.
fn start_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let data = web::Data::from(received.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
            .route("/v1/traces", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}"), received)
}

#[tokio::test]
async fn each_getcode_is_one_trace_across_the_three_services() {
    let (endpoint, received) = start_receiver();
    let dir = tempfile::tempdir().unwrap();
    let mut options = StackOptions::for_tests(dir.path());
    options.services = Service::ALL.to_vec();
    options.telemetry_env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY".into(), "200".into()),
    ];
    let sink = options.sink.clone();
    let stack = match DevStack::start(options).await {
        Ok(stack) => stack,
        Err(e) => panic!("the stack failed to start: {e:?}\n{}", sink.captured()),
    };
    let http = reqwest::Client::new();
    const CODES: usize = 3;
    for _ in 0..CODES {
        let res = http
            .get(format!("{}/api/v1/getcode", stack.urls.main_app))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    // Per trace: the (service, span) pairs seen, for the traces main-app started with a code.
    let wanted: BTreeSet<(&str, &str)> = [
        ("main-app", "issue_code"),
        ("main-app", "GET RandomNumber"),
        ("main-app", "queue.send code-issued"),
        ("third-party-api", "RandomNumber"),
        ("queue-worker", "queue.process"),
        ("queue-worker", "ledger.record"),
    ]
    .into();
    let deadline = Instant::now() + Duration::from_secs(30);
    let complete = loop {
        let mut traces: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        for span in received.lock().unwrap().iter() {
            traces
                .entry(span.trace_id.clone())
                .or_default()
                .insert((span.service.clone(), span.name.clone()));
        }
        let issued: Vec<_> = traces
            .values()
            .filter(|spans| spans.iter().any(|(_, n)| n == "issue_code"))
            .collect();
        let complete = issued
            .iter()
            .filter(|spans| {
                wanted
                    .iter()
                    .all(|(s, n)| spans.contains(&(s.to_string(), n.to_string())))
            })
            .count();
        if complete == CODES || Instant::now() > deadline {
            assert_eq!(issued.len(), CODES, "one trace per getcode: {issued:#?}");
            break complete;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        complete,
        CODES,
        "every getcode's trace holds {wanted:?}: {:#?}",
        received.lock().unwrap()
    );
    stack.stop().await;
}
