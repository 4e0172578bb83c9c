//! `keyless rotate` end to end on the local stack, as real processes: third-party-api on the
//! shared blob key store with its master key from the vault emulator, main-app reading its key
//! from the vault, `keyless` as a child process with the rotation identity (`rotation.env`).
//!
//! - under steady getcode load: no request fails, every 200 has its queue message;
//! - without any traffic: it completes once main-app's key cache has expired, renewing the
//!   master key's expiry on the way, and main-app's next request succeeds;
//! - killed after each `done: ` line in turn, then run again: it completes, no request fails;
//! - without Key Vault Secrets Officer: it stops before changing anything, naming the role, its
//!   id and the scope; `--dry-run` changes nothing either;
//! - from the provisioning placeholders: it generates the master key, then rotates.

mod support;

use codes::{Incoming, MessageEncoding};
use devstack::stack::Identity;
use devstack::stack::{
    FUNCTION_KEY_NAME, MASTER_KEY_SECRET_NAME, SECRET_NAME, Service, local_scope,
};
use ops::admin_client::{AdminClient, FunctionKey};
use ops::roles::{Role, ScopeKind};
use ops::vault::PLACEHOLDER;
use shared_auth::{EnvSource, MapEnv, Secret};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{admin_vault, versions};
use test_kit::{TestStack, drain_texts, eventually, start_stack};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::watch;

/// third-party-api replicas reload the key store (and the master key) this often, in seconds.
const KEYS_REFRESH: &str = "2";
/// main-app keeps the key it read this long, in seconds.
const SECRET_CACHE_TTL: &str = "3";
/// The grace period rotate gives an old key in these tests, in seconds.
const GRACE: &str = "5";
/// What each rotation in these tests may take at most.
const ROTATION_LIMIT: Duration = Duration::from_secs(120);

/// One rotation under load at a time, across threads (`cargo test`) and processes (nextest):
/// several stacks under load on a small machine starve storage of CPU and main-app rightly
/// answers 503, which is not what these tests are about. Held until dropped.
async fn one_at_a_time() -> std::fs::File {
    let path = devstack::stack::target_dir().join("devstack/rotate-under-load.lock");
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(&path).unwrap();
        file.lock().unwrap();
        file
    })
    .await
    .unwrap()
}

/// The stack with third-party-api and main-app running, refreshing fast enough for tests.
async fn system() -> TestStack {
    let mut stack = start_stack(&[]).await;
    for (service, setting) in [
        (
            Service::ThirdPartyApi,
            ("THIRD_PARTY_API_KEYS_REFRESH_SECONDS", KEYS_REFRESH),
        ),
        (
            Service::MainApp,
            ("SECRET_CACHE_TTL_SECONDS", SECRET_CACHE_TTL),
        ),
    ] {
        let started = stack.launch_with(service, &[setting]).await;
        started.unwrap_or_else(|e| panic!("{service:?} starts: {e:#}"));
    }
    stack
}

/// The rotation job's environment, told how often third-party-api reloads its keys and how long
/// main-app keeps the key it read.
fn rotation_env(stack: &TestStack) -> MapEnv {
    support::rotation_env(stack)
        .with("THIRD_PARTY_API_KEYS_REFRESH_SECONDS", KEYS_REFRESH)
        .with("SECRET_CACHE_TTL_SECONDS", SECRET_CACHE_TTL)
}

/// What one `keyless rotate` process did.
#[derive(Debug)]
struct Run {
    /// Exit code; `None` when killed.
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// How many `done: ` lines it printed.
    done: usize,
    took: Duration,
}

/// Runs `keyless rotate args...` with `env` as a child process; with `kill_after`, SIGKILLs it
/// as soon as it has printed that many `done: ` lines.
async fn rotate(env: &MapEnv, args: &[&str], kill_after: Option<usize>) -> Run {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_keyless"));
    command
        .arg("rotate")
        .args(args)
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // What rotate reads, no more: the identity and rotate's own variables.
    for var in shared_auth::variables::COMMON_VARIABLES
        .iter()
        .chain(ops::rotate::VARIABLES)
    {
        if let Some(value) = env.var(var) {
            command.env(var, value);
        }
    }
    let mut child = command.spawn().expect("keyless runs");
    let mut stderr = child.stderr.take().unwrap();
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stdout = String::new();
    let mut done = 0;
    let limit = tokio::time::sleep(ROTATION_LIMIT);
    tokio::pin!(limit);
    loop {
        tokio::select! {
            line = lines.next_line() => match line.unwrap() {
                Some(line) => {
                    stdout.push_str(&line);
                    stdout.push('\n');
                    if line.starts_with("done: ") {
                        done += 1;
                        if kill_after == Some(done) {
                            child.start_kill().unwrap();
                        }
                    }
                }
                None => break,
            },
            _ = &mut limit => {
                child.start_kill().unwrap();
                let _ = child.wait().await;
                let stderr = errors.await.unwrap();
                panic!("keyless rotate did not finish within {ROTATION_LIMIT:?}: {stdout}{stderr}");
            }
        }
    }
    let status = child.wait().await.unwrap();
    let stderr = errors.await.unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    Run {
        code: status.code(),
        stdout,
        stderr,
        done,
        took: started.elapsed(),
    }
}

/// The latest value of `name`.
async fn vault_value(stack: &TestStack, name: &str) -> Secret {
    admin_vault(stack)
        .latest(name)
        .await
        .unwrap()
        .expect("the secret exists")
        .value
}

/// The admin URL of the stack's function keys.
fn admin_keys_url(stack: &TestStack) -> azure_core::http::Url {
    let endpoint = stack.urls.third_party_api_endpoint.parse().unwrap();
    ops::admin_client::keys_url(&endpoint).unwrap()
}

/// Every function key, read through the admin API with the master key the vault holds.
async fn function_keys(stack: &TestStack) -> Vec<FunctionKey> {
    let master = vault_value(stack, MASTER_KEY_SECRET_NAME).await;
    let admin = AdminClient::new(stack.http().clone(), admin_keys_url(stack), master);
    admin.list().await.expect("the admin API answers")
}

/// Whether third-party-api accepts `key` on its function (a call counts as a use).
async fn accepted(stack: &TestStack, key: &Secret) -> bool {
    let status = stack
        .http()
        .get(&stack.urls.third_party_api_endpoint)
        .header("x-functions-key", key.expose())
        .send()
        .await
        .unwrap()
        .status();
    status.is_success()
}

/// After a complete rotation: the vault holds the one `main-app*` key left, with an expiry about
/// 90 days away; third-party-api accepts it and refuses every key revoked.
async fn assert_rotated(stack: &TestStack, revoked: &[Secret]) -> String {
    let keys = function_keys(stack).await;
    let family: Vec<&FunctionKey> = keys
        .iter()
        .filter(|k| ops::rotate::in_family(FUNCTION_KEY_NAME, &k.name))
        .collect();
    assert_eq!(
        family.len(),
        1,
        "one main-app key left: {:?}",
        family.iter().map(|k| &k.name).collect::<Vec<_>>()
    );
    let current = admin_vault(stack)
        .latest(SECRET_NAME)
        .await
        .unwrap()
        .unwrap();
    assert!(current.value == family[0].value, "the vault holds it");
    let expires = current.expires.expect("the new version has exp");
    let days = (expires - time::OffsetDateTime::now_utc()).whole_days();
    assert!((89..=90).contains(&days), "expires in {days} days");
    assert!(accepted(stack, &current.value).await);
    for old in revoked {
        assert!(*old != current.value);
        // Revoked on the replica that answered the DELETE at once, on others within a refresh.
        let deadline = Instant::now() + Duration::from_secs(5);
        while accepted(stack, old).await {
            assert!(Instant::now() < deadline, "a revoked key is still accepted");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    family[0].name.clone()
}

/// Nothing secret in `text`: no key value, master key or client secret.
fn assert_no_secret(text: &str, secrets: &[Secret]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.expose()),
            "a secret value was printed in: {text}"
        );
    }
}

/// Nothing secret in what `run` printed: no value of `earlier` nor of the stack now.
async fn assert_printed_no_secret(stack: &TestStack, run: &Run, mut earlier: Vec<Secret>) {
    earlier.extend(secrets(stack).await);
    assert_no_secret(&format!("{}{}", run.stdout, run.stderr), &earlier);
}

/// Every secret of the stack right now: function keys, master key, the rotation client secret.
async fn secrets(stack: &TestStack) -> Vec<Secret> {
    let mut all: Vec<Secret> = function_keys(stack)
        .await
        .into_iter()
        .map(|k| k.value)
        .collect();
    all.push(vault_value(stack, MASTER_KEY_SECRET_NAME).await);
    all.push(vault_value(stack, SECRET_NAME).await);
    all.push(Secret::new(
        stack
            .client_env(Identity::Rotation)
            .unwrap()
            .var("AZURE_CLIENT_SECRET")
            .unwrap(),
    ));
    all.retain(|s| !s.expose().is_empty() && s.expose() != PLACEHOLDER);
    all
}

/// getcode at a steady rate (open loop: one request every `1/rate` s, whatever the answers).
struct Load {
    stop: watch::Sender<bool>,
    ticker: tokio::task::JoinHandle<Vec<tokio::task::JoinHandle<()>>>,
    answers: Arc<Mutex<Vec<(u16, String)>>>,
    started: Instant,
}

impl Load {
    fn start(stack: &TestStack, per_second: u32) -> Self {
        let url = format!("{}/api/v1/getcode", stack.urls.main_app);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let answers: Arc<Mutex<Vec<(u16, String)>>> = Arc::default();
        let (stop, mut stopped) = watch::channel(false);
        let sink = answers.clone();
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second);
            let mut requests = Vec::new();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return requests,
                }
                let (http, url, sink) = (http.clone(), url.clone(), sink.clone());
                requests.push(tokio::spawn(async move {
                    let answer = match http.get(&url).send().await {
                        Ok(res) => {
                            let status = res.status().as_u16();
                            (status, res.text().await.unwrap_or_default())
                        }
                        Err(e) => (0, format!("no answer: {e}")),
                    };
                    sink.lock().unwrap().push(answer);
                }));
            }
        });
        Self {
            stop,
            ticker,
            answers,
            started: Instant::now(),
        }
    }

    /// Stops and returns every answer and the achieved rate.
    async fn stop(self) -> (Vec<(u16, String)>, f64) {
        let _ = self.stop.send(true);
        let elapsed = self.started.elapsed().as_secs_f64();
        for request in self.ticker.await.unwrap() {
            request.await.unwrap();
        }
        let answers = std::mem::take(&mut *self.answers.lock().unwrap());
        let rate = answers.len() as f64 / elapsed;
        (answers, rate)
    }
}

/// Every answer is 200 and every code answered has its message in the queue (no worker runs,
/// so the messages stay there). Returns (answers, codes matched).
async fn assert_no_request_failed(stack: &TestStack, answers: &[(u16, String)]) -> usize {
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (status, _) in answers {
        *by_status.entry(*status).or_default() += 1;
    }
    let failed: Vec<&(u16, String)> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed ({by_status:?}), e.g. {:?}",
        failed.len(),
        answers.len(),
        failed.first()
    );
    let codes: Vec<String> = answers
        .iter()
        .map(|(_, body)| {
            let body: serde_json::Value = serde_json::from_str(body).unwrap();
            body["code"].as_str().unwrap().to_owned()
        })
        .collect();
    let queued: HashSet<String> = drain_texts(stack, &stack.urls.queue)
        .await
        .iter()
        .filter_map(
            |text| match Incoming::decode(text, MessageEncoding::Base64) {
                Ok(Incoming::Code(envelope)) => Some(envelope.code.as_str().to_owned()),
                _ => None,
            },
        )
        .collect();
    let missing: Vec<&String> = codes.iter().filter(|c| !queued.contains(*c)).collect();
    assert!(
        missing.is_empty(),
        "{} codes answered 200 have no queue message, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    codes.len()
}

fn done_lines(run: &Run) -> Vec<&str> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with("done: "))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_under_load_fails_no_request() {
    let _one = one_at_a_time().await;
    let stack = system().await;
    let seed = stack.third_party_api_key().clone();
    let before = secrets(&stack).await;
    let load = Load::start(&stack, 60);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let run = rotate(&rotation_env(&stack), &["--grace-seconds", GRACE], None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (answers, rate) = load.stop().await;
    println!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let steps: Vec<&str> = done_lines(&run)
        .iter()
        .map(|l| l.split(':').nth(1).unwrap().trim())
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "renew master",
            "add",
            "write",
            "wait used",
            "wait idle",
            "revoke"
        ]
    );
    assert!(
        run.stdout.contains("done: revoke: revoked main-app\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("keyless rotate: waiting"),
        "progress: {}",
        run.stderr
    );
    let new = assert_rotated(&stack, &[seed]).await;
    assert!(
        run.stdout
            .contains(&format!("done: add: added function key {new}"))
    );
    let matched = assert_no_request_failed(&stack, &answers).await;
    println!(
        "rotation under load: {} getcode requests at {rate:.1}/s, all 200, {matched} with their \
         queue message; the rotation took {:.1} s (key store refresh {KEYS_REFRESH} s, main-app \
         key cache {SECRET_CACHE_TTL} s, grace {GRACE} s)",
        answers.len(),
        run.took.as_secs_f64()
    );
    assert!(rate >= 50.0, "a steady 50 requests/s at least: {rate:.1}");
    assert_printed_no_secret(&stack, &run, before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_that_misses_every_key_store_refresh_fails_no_request_during_a_rotation() {
    let _one = one_at_a_time().await;
    let mut stack = start_stack(&[]).await;
    let refresh = ("THIRD_PARTY_API_KEYS_REFRESH_SECONDS", KEYS_REFRESH);
    stack
        .launch_with(Service::ThirdPartyApi, &[refresh])
        .await
        .unwrap();
    // A second replica that reads the key store once an hour: it misses every refresh of the
    // rotation, as a replica misses one when a read fails. main-app calls it alone; rotate
    // talks to the first.
    let port = devstack::azurite::free_port().unwrap().to_string();
    let lagging = format!("http://127.0.0.1:{port}");
    let hourly = [
        ("PORT", port.as_str()),
        ("THIRD_PARTY_API_KEYS_REFRESH_SECONDS", "3600"),
    ];
    let _replica = stack
        .spawn_instance(Service::ThirdPartyApi, &hourly, &lagging)
        .await
        .unwrap();
    let endpoint = format!("{lagging}/api/RandomNumber");
    let main_app = [
        ("SECRET_CACHE_TTL_SECONDS", SECRET_CACHE_TTL),
        ("THIRD_PARTY_API_ENDPOINT", endpoint.as_str()),
    ];
    stack
        .launch_with(Service::MainApp, &main_app)
        .await
        .unwrap();
    let seed = stack.third_party_api_key().clone();
    let load = Load::start(&stack, 20);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // rotate looks at the first replica, which never sees main-app: it goes by main-app's key
    // cache lifetime.
    let run = rotate(&rotation_env(&stack), &["--grace-seconds", GRACE], None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (answers, _) = load.stop().await;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_rotated(&stack, &[seed]).await;
    // The lagging replica read the store when main-app first presented the new key.
    let matched = assert_no_request_failed(&stack, &answers).await;
    println!(
        "a replica missing every refresh: {matched} getcode requests through it, all 200; the \
         rotation took {:.1} s",
        run.took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_traffic_a_rotation_completes_once_main_apps_cache_has_expired() {
    let _one = one_at_a_time().await;
    let stack = system().await;
    let seed = stack.third_party_api_key().clone();
    let before = secrets(&stack).await;
    let vault = admin_vault(&stack);
    let master_before = vault.latest(MASTER_KEY_SECRET_NAME).await.unwrap().unwrap();
    // Nobody calls main-app. A wait that needed traffic would fail after 30 s.
    let args = [
        "--grace-seconds",
        GRACE,
        "--main-app-cache-seconds",
        SECRET_CACHE_TTL,
        "--wait-timeout-seconds",
        "30",
    ];
    let run = rotate(&rotation_env(&stack), &args, None).await;
    println!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let lines = done_lines(&run);
    assert_eq!(lines.len(), 7, "{lines:?}");
    let used = lines[4];
    assert!(
        used.starts_with("done: wait used: no traffic since the write for ")
            && used.ends_with(" s; main-app's cache (3 s) has expired"),
        "{used}"
    );
    assert!(lines[5].starts_with("done: wait idle: main-app not accepted for 5 s"));
    assert!(
        run.stdout.contains("main-app reads it at its next call"),
        "{}",
        run.stdout
    );
    assert_rotated(&stack, &[seed]).await;
    // The master key's expiry moved forward (devstack seeds it without one): the same version
    // and value, expiring in about 90 days.
    let master = vault.latest(MASTER_KEY_SECRET_NAME).await.unwrap().unwrap();
    assert!(
        lines[1].starts_with(&format!(
            "done: renew master: version {} of {MASTER_KEY_SECRET_NAME} now expires ",
            master.version
        )),
        "{}",
        lines[1]
    );
    assert_eq!(master.version, master_before.version);
    assert!(master.value == master_before.value);
    assert!(master.expires > master_before.expires);
    let days = (master.expires.unwrap() - time::OffsetDateTime::now_utc()).whole_days();
    assert!((89..=90).contains(&days), "expires in {days} days");
    // main-app, idle all along, serves its next request with the new key.
    let answer = reqwest::Client::new()
        .get(format!("{}/api/v1/getcode", stack.urls.main_app))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_printed_no_secret(&stack, &run, before).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_each_step_a_rerun_completes_and_no_request_fails() {
    let _one = one_at_a_time().await;
    let stack = system().await;
    let env = rotation_env(&stack);
    let load = Load::start(&stack, 25);
    let mut all_secrets = secrets(&stack).await;
    let mut output = String::new();
    for kill_after in 1..=7 {
        let old = vault_value(&stack, SECRET_NAME).await;
        let killed = rotate(&env, &["--grace-seconds", GRACE], Some(kill_after)).await;
        // Killed right after its last line, a complete run may have exited by itself.
        assert!(
            killed.code.is_none() || (kill_after == 7 && killed.code == Some(0)),
            "killed after {kill_after}: {:?} {}",
            killed.code,
            killed.stdout
        );
        assert!(killed.done >= kill_after);
        // The first complete run renewed the master key's expiry (devstack seeds it without
        // one); from then on it is far enough away.
        if kill_after >= 2 {
            assert!(
                killed
                    .stdout
                    .contains("done: renew master: nothing to renew: version "),
                "{}",
                killed.stdout
            );
        }
        // The kill lands once its last line is read, the process running on meanwhile: right
        // after "wait idle", its revoke (one call) may be done before the kill, and then the
        // rotation was complete. Whether it was is read from the key store, not guessed.
        let family = function_keys(&stack)
            .await
            .into_iter()
            .filter(|k| ops::rotate::in_family(FUNCTION_KEY_NAME, &k.name))
            .count();
        let unfinished = family > 1;
        all_secrets.extend(secrets(&stack).await);
        let rerun = rotate(&env, &["--grace-seconds", GRACE], None).await;
        println!(
            "--- killed after {kill_after} done lines:\n{}--- rerun:\n{}",
            killed.stdout, rerun.stdout
        );
        assert_eq!(rerun.code, Some(0), "{}{}", rerun.stdout, rerun.stderr);
        let resumed = rerun.stdout.as_str();
        match kill_after {
            // Killed after the add: the rerun writes the key that run added.
            3 => assert!(resumed.contains("was added by an earlier run"), "{resumed}"),
            // Killed after the write or a wait: the rerun finishes that rotation.
            4..=6 if unfinished => {
                assert!(resumed.contains("finishing that rotation"), "{resumed}");
                assert!(
                    resumed.contains("done: write: nothing to write"),
                    "{resumed}"
                );
            }
            // Only after "wait idle" can the revoke beat the kill: the rerun rotates afresh.
            6 => assert!(
                resumed.contains("done: add: added function key"),
                "{resumed}"
            ),
            _ => {}
        }
        // Killed after the revoke, the run was complete: the rerun rotated once more.
        assert_rotated(&stack, &[old]).await;
        all_secrets.extend(secrets(&stack).await);
        output.push_str(&killed.stdout);
        output.push_str(&killed.stderr);
        output.push_str(&rerun.stdout);
        output.push_str(&rerun.stderr);
    }
    let (answers, rate) = load.stop().await;
    let matched = assert_no_request_failed(&stack, &answers).await;
    println!(
        "interrupted rotations: {} getcode requests at {rate:.1}/s, all 200, {matched} with their \
         queue message",
        answers.len()
    );
    assert_no_secret(&output, &all_secrets);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_secrets_officer_it_stops_before_changing_anything() {
    let _one = one_at_a_time().await;
    let stack = system().await;
    let env = rotation_env(&stack);
    let state = || async {
        (
            versions(&stack, SECRET_NAME).await,
            versions(&stack, MASTER_KEY_SECRET_NAME).await,
            function_keys(&stack)
                .await
                .into_iter()
                .map(|k| (k.name, k.value.expose().to_owned()))
                .collect::<Vec<_>>(),
        )
    };
    let before = state().await;
    for (scope, secret) in [
        (ScopeKind::Secret, SECRET_NAME),
        (ScopeKind::MasterKeySecret, MASTER_KEY_SECRET_NAME),
    ] {
        let at = local_scope(scope).unwrap();
        assert!(stack.revoke(Identity::Rotation, Role::KeyVaultSecretsOfficer, &at));
        let run = rotate(&env, &[], None).await;
        stack.grant(Identity::Rotation, Role::KeyVaultSecretsOfficer, at);
        println!("{}{}", run.stdout, run.stderr);
        assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
        assert_eq!(run.done, 0, "no step done: {}", run.stdout);
        assert!(run.stdout.contains("stopped before changing anything"));
        assert!(
            run.stdout.contains(&format!(
                "missing role: Key Vault Secrets Officer (b86a8fe4-44ce-4948-aee5-eccb2c155cd7) \
                 on secret {secret}"
            )),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("scope: /subscriptions/")
                && run.stdout.contains("/providers/Microsoft.KeyVault/vaults/"),
            "the scope id: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains(&format!("/secrets/{secret}\n")),
            "{}",
            run.stdout
        );
        let client_id = env.var("AZURE_CLIENT_ID").unwrap();
        assert!(run.stdout.contains(&format!(
            "grant it: az role assignment create --assignee {client_id} --role \
             b86a8fe4-44ce-4948-aee5-eccb2c155cd7 --scope /subscriptions/"
        )));
        assert_eq!(run.stdout.matches("missing role:").count(), 1);
        assert!(run.stderr.contains("Key Vault Secrets Officer on secret"));
    }
    // The same for scripts, both roles missing at once: both named.
    for scope in [ScopeKind::Secret, ScopeKind::MasterKeySecret] {
        let at = local_scope(scope).unwrap();
        stack.revoke(Identity::Rotation, Role::KeyVaultSecretsOfficer, &at);
    }
    let json = rotate(&env, &["--json"], None).await;
    for scope in [ScopeKind::Secret, ScopeKind::MasterKeySecret] {
        let at = local_scope(scope).unwrap();
        stack.grant(Identity::Rotation, Role::KeyVaultSecretsOfficer, at);
    }
    assert_eq!(json.code, Some(1), "{}", json.stdout);
    let report: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["changed"], false);
    let missing = report["missing_roles"].as_array().unwrap();
    assert_eq!(missing.len(), 2, "{report}");
    for (m, secret) in missing.iter().zip([SECRET_NAME, MASTER_KEY_SECRET_NAME]) {
        assert_eq!(m["role"], "Key Vault Secrets Officer");
        assert_eq!(m["role_id"], "b86a8fe4-44ce-4948-aee5-eccb2c155cd7");
        assert_eq!(m["scope"], format!("secret {secret}"));
    }
    // The dry run with every role: the plan, nothing changed.
    let run = rotate(&env, &["--dry-run"], None).await;
    println!("{}", run.stdout);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("  key: main-app-"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("(new: add it); write: as a new version expiring in 90 days, once it is ")
    );
    assert!(run.stdout.contains("  revoke: main-app (last accepted "));
    assert_eq!(run.done, 0);
    assert_eq!(before, state().await, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn from_the_provisioning_placeholders_it_generates_the_master_key_then_rotates() {
    let _one = one_at_a_time().await;
    let stack = system().await;
    let seed = stack.third_party_api_key().clone();
    let placeholder = Secret::new(PLACEHOLDER);
    stack.vault.seed(MASTER_KEY_SECRET_NAME, &placeholder);
    stack.vault.seed(SECRET_NAME, &placeholder);
    // third-party-api drops the old master key at its next read: the admin API closes.
    let old_master = stack.master_key().clone();
    let admin = AdminClient::new(
        stack.http().clone(),
        admin_keys_url(&stack),
        old_master.clone(),
    );
    eventually(Duration::from_secs(10), "the admin API closes", || async {
        admin.list().await.is_err()
    })
    .await;
    // Light traffic, so main-app uses the key once it is in the vault (it fails before).
    let load = Load::start(&stack, 5);
    let run = rotate(&rotation_env(&stack), &["--grace-seconds", GRACE], None).await;
    let (answers, _) = load.stop().await;
    println!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let lines = done_lines(&run);
    assert!(lines[1].starts_with("done: master key: wrote a generated master key"));
    assert_eq!(lines.len(), 7, "{lines:?}");
    let master = vault_value(&stack, MASTER_KEY_SECRET_NAME).await;
    assert!(function_keys::KeyValue::parse(master.expose()).is_ok());
    assert!(master != old_master);
    assert_rotated(&stack, &[seed]).await;
    assert!(answers.iter().any(|(status, _)| *status == 200));
    assert_printed_no_secret(&stack, &run, vec![old_master]).await;
}
