//! One trace end to end: the three services as real processes export over OTLP/HTTP to a
//! receiver inside this test (passed through devstack's telemetry variables, as a person's
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is), and each getcode gives one trace holding main-app's request,
//! its third-party call and enqueue, third-party-api's handling, and queue-worker's processing and
//! ledger write.

use devstack::stack::Service;
use devstack::testing::otlp::OtlpReceiver;
use devstack::testing::start_stack_with;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

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
        for span in receiver.spans() {
            traces
                .entry(span.trace_id)
                .or_default()
                .insert((span.service, span.name));
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
        receiver.spans()
    );
    stack.stop().await;
}
