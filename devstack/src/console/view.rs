//! What the console shows, read from the stack itself on each request: resources and their
//! readiness, the role table and the tokens issued, the access decisions (a denial with the role
//! it lacks and the `az` line that grants it, as `keyless doctor` words it), the code queue and
//! its poison queue, the ledger's recent codes, and the traces received. Storage is read straight
//! from Azurite, not through the gates, so looking adds no decision to the log.

use super::traces::TraceStore;
use crate::access_log::{AccessLog, Decision, Outcome};
use crate::identity::IdentityProvider;
use crate::process::LogTail;
use crate::rbac::{Assignment, DataAction, RoleAssignments, Scope, grants};
use crate::stack::{CONTAINER, POISON_QUEUE, QUEUE, local_scope};
use azure_storage_queue::models::QueueClientGetPropertiesResultHeaders as _;
use codes::ledger::{Record, RecordState};
use futures::TryStreamExt;
use ops::azure_scope::MissingRole;
use ops::connect::Connection;
use ops::roles::{GRANTS, Role, ScopeKind};
use serde_json::{Value, json};
use shared_auth::MapEnv;
use shared_auth::variables::AZURE_CLIENT_ID;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How many decisions, traces and codes a state carries.
const DECISIONS: usize = 200;
const TRACES: usize = 15;
const CODES: usize = 20;
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// One thing the console lists as a resource: where it answers and how it is probed.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    /// Its name (a service's is also its log prefix).
    pub name: String,
    /// `emulator`, `storage` or `service`.
    pub kind: &'static str,
    /// Its URL.
    pub url: String,
    /// How to tell it is ready.
    pub probe: Probe,
}

/// How a resource is probed.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    /// `GET` this URL answers 200 (a service's body says which check fails when not).
    Http(String),
    /// A TCP connection to this address is accepted.
    Tcp(String),
}

/// Everything the console reads.
pub(crate) struct Sources {
    /// Identities and the tokens issued.
    pub identities: Arc<IdentityProvider>,
    /// The role table as it stands.
    pub roles: Arc<RoleAssignments>,
    /// The role table at start, so a revoked row stays listed (and can be granted back).
    pub initial_roles: Vec<Assignment>,
    /// Every judged access.
    pub access_log: Arc<AccessLog>,
    /// The children's last lines.
    pub logs: Arc<LogTail>,
    /// Spans received.
    pub traces: Arc<TraceStore>,
    /// Where the services' telemetry goes when the person runs a collector (the console then
    /// receives none).
    pub collector: Option<String>,
    /// The resources, in start order.
    pub resources: Vec<Resource>,
    /// A client trusting the stack's CA.
    pub http: reqwest::Client,
    /// The stack's own identity, reading Azurite directly.
    pub storage: Connection,
    /// Azurite's queue service (`https://127.0.0.1:<port>/<account>`).
    pub azurite_queues: String,
    /// Azurite's blob service.
    pub azurite_blobs: String,
}

fn time_text(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl Sources {
    /// The whole state, as the page renders it.
    pub async fn state(&self) -> Value {
        let (resources, queues, codes) =
            tokio::join!(self.resources(), self.queues(), self.codes());
        json!({
            "resources": resources,
            "roles": self.role_rows(),
            "tokens": self.identities.tokens_issued().into_iter()
                .map(|(identity, audience, count)| json!({"identity": identity, "audience": audience, "count": count}))
                .collect::<Vec<_>>(),
            "decisions": self.access_log.recent(DECISIONS).iter().map(|d| self.decision(d)).collect::<Vec<_>>(),
            "queues": queues,
            "codes": codes,
            "traces": {
                "collector": self.collector,
                "log_records": self.traces.log_records(),
                "recent": self.traces.recent(TRACES),
            },
        })
    }

    async fn resources(&self) -> Vec<Value> {
        let probes = self.resources.iter().map(|r| async move {
            let (ready, detail) = self.probe(&r.probe).await;
            json!({
                "name": r.name,
                "kind": r.kind,
                "url": r.url,
                "ready": ready,
                "detail": detail,
                "logs": self.logs.lines(&r.name),
            })
        });
        futures::future::join_all(probes).await
    }

    async fn probe(&self, probe: &Probe) -> (bool, String) {
        match probe {
            Probe::Tcp(address) => {
                let connect = tokio::net::TcpStream::connect(address.as_str());
                match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
                    Ok(Ok(_)) => (true, "accepting connections".into()),
                    Ok(Err(e)) => (false, format!("refused: {e}")),
                    Err(_) => (false, "no answer within 1 s".into()),
                }
            }
            Probe::Http(url) => {
                let answer = self.http.get(url).timeout(PROBE_TIMEOUT).send().await;
                match answer {
                    Ok(r) if r.status().is_success() => (true, "ready".into()),
                    Ok(r) => {
                        let status = r.status();
                        let body: Value = r.json().await.unwrap_or_default();
                        let failing: Vec<&str> = body["failing"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        if failing.is_empty() {
                            (false, format!("not ready ({status})"))
                        } else {
                            (false, format!("not ready: {} failing", failing.join(", ")))
                        }
                    }
                    Err(e) if e.is_timeout() => (false, "no answer within 1 s".into()),
                    Err(_) => (false, "not answering".into()),
                }
            }
        }
    }

    /// The rows of the role table: every assignment held now or at start, held or revoked.
    pub fn role_rows(&self) -> Vec<Value> {
        let now = self.roles.all();
        let mut rows: Vec<Assignment> = self.initial_roles.clone();
        rows.extend(
            now.iter()
                .filter(|a| !rows.contains(a))
                .cloned()
                .collect::<Vec<_>>(),
        );
        rows.iter()
            .map(|a| {
                json!({
                    "key": row_key(a),
                    "identity": self.name_of(&a.principal),
                    "role": a.role.name(),
                    "role_id": a.role.id().unwrap_or("custom role"),
                    "scope": a.scope.to_string(),
                    "held": now.contains(a),
                })
            })
            .collect()
    }

    /// Revokes (`held` false) or grants back the row whose key is `key`; false when no row has
    /// that key.
    pub fn set_row(&self, key: &str, held: bool) -> bool {
        let now = self.roles.all();
        let found = self
            .initial_roles
            .iter()
            .chain(now.iter())
            .find(|a| row_key(a) == key)
            .cloned();
        let Some(a) = found else {
            return false;
        };
        if held {
            self.roles.grant(&a.principal, a.role, a.scope);
        } else {
            self.roles.revoke(&a.principal, a.role, &a.scope);
        }
        true
    }

    fn name_of(&self, principal: &str) -> String {
        self.identities
            .by_object_id(principal)
            .map(|i| i.name.clone())
            .unwrap_or_else(|| principal.to_owned())
    }

    fn decision(&self, d: &Decision) -> Value {
        let (allowed, reason, missing) = match &d.outcome {
            Outcome::Allowed => (true, None, None),
            Outcome::Unauthenticated(why) => (false, Some(why.clone()), None),
            Outcome::Forbidden(action) => (
                false,
                Some(format!("no role granting {}", action.azure_name())),
                Some(self.missing_role(&d.identity, *action, &d.resource)),
            ),
        };
        json!({
            "seq": d.seq,
            "at": time_text(d.at),
            "count": d.count,
            "service": d.service,
            "identity": d.identity,
            "operation": d.operation,
            "resource": d.resource.to_string(),
            "allowed": allowed,
            "reason": reason,
            "missing": missing,
        })
    }

    /// The role `identity` lacks for `action` on `resource`: the one the role table gives it
    /// there, else the one the table gives anyone there, else the first role granting it; with
    /// its id and, for a scope of the table, the `az` line.
    fn missing_role(&self, identity: &str, action: DataAction, resource: &Scope) -> Value {
        let covers = |kind: ScopeKind| local_scope(kind).is_some_and(|s| s.covers(resource));
        let fits = |g: &&ops::roles::Grant| grants(g.role, action) && covers(g.scope);
        let row = GRANTS
            .iter()
            .filter(fits)
            .find(|g| g.identity.name() == identity)
            .or_else(|| GRANTS.iter().find(fits));
        match row {
            Some(g) => {
                let client_id = self
                    .identities
                    .get(identity)
                    .map(|i| i.client_id.clone())
                    .unwrap_or_else(|| identity.to_owned());
                let env = MapEnv::new().with(AZURE_CLIENT_ID, client_id);
                serde_json::to_value(MissingRole::new(&env, g.role, g.scope)).unwrap_or_default()
            }
            None => {
                let role = Role::ALL.iter().copied().find(|r| grants(*r, action));
                json!({
                    "role": role.map(Role::name),
                    "role_id": role.and_then(Role::id),
                    "scope": resource.to_string(),
                })
            }
        }
    }

    async fn queues(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (name, poisoned) in [(QUEUE, false), (POISON_QUEUE, true)] {
            out.push(match self.queue(name, poisoned).await {
                Ok(queue) => queue,
                Err(e) => json!({"name": name, "error": e}),
            });
        }
        out
    }

    async fn queue(&self, name: &str, poisoned: bool) -> Result<Value, String> {
        let url = format!("{}/{name}", self.azurite_queues)
            .parse()
            .map_err(|e| format!("{e}"))?;
        let client = self.storage.queue(&url).map_err(|e| e.to_string())?;
        let properties = client.get_properties(None).await;
        let properties = properties.map_err(|e| ops::connect::describe(&e))?;
        let total = properties.approximate_messages_count().ok().flatten();
        let total = total.unwrap_or_default();
        let peeked = ops::queue::peek(
            &self.storage,
            &url,
            poisoned,
            codes::MessageEncoding::default(),
            ops::queue::MAX_BATCH,
        )
        .await
        .map_err(|e| e.to_string())?;
        let visible = peeked.len() as i64;
        Ok(json!({
            "name": name,
            "total": total,
            "visible": visible,
            "visible_at_least": visible == i64::from(ops::queue::MAX_BATCH),
            "hidden": (total - visible).max(0),
            "messages": peeked.iter().take(10).collect::<Vec<_>>(),
        }))
    }

    async fn codes(&self) -> Value {
        match self.ledger().await {
            Ok(codes) => json!({"recent": codes}),
            Err(e) => json!({"error": e}),
        }
    }

    async fn ledger(&self) -> Result<Vec<Value>, String> {
        use azure_storage_blob::models::{
            BlobContainerClientListBlobsOptions, ListBlobsIncludeItem,
        };
        let url = format!("{}/{CONTAINER}", self.azurite_blobs)
            .parse()
            .map_err(|e| format!("{e}"))?;
        let container = self
            .storage
            .container(&url, codes::variables::CODE_LEDGER_URL)
            .map_err(|e| e.to_string())?;
        let options = BlobContainerClientListBlobsOptions {
            include: Some(vec![ListBlobsIncludeItem::Metadata]),
            ..Default::default()
        };
        let mut pages = container
            .list_blobs(Some(options))
            .map_err(|e| ops::connect::describe(&e))?
            .into_pages();
        let now = OffsetDateTime::now_utc();
        let mut records: Vec<(String, Record)> = Vec::new();
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| ops::connect::describe(&e))?
        {
            let page = page.into_model().map_err(|e| ops::connect::describe(&e))?;
            for item in page.blob_items {
                let metadata = item.metadata.as_ref().and_then(|m| m.values.as_ref());
                if let (Some(name), Some(metadata)) = (item.name, metadata) {
                    records.push((name, Record::from_metadata(metadata)));
                }
            }
        }
        records.sort_by_key(|(_, r)| std::cmp::Reverse(r.issued_at));
        Ok(records
            .into_iter()
            .take(CODES)
            .map(|(code, r)| {
                let state = match r.state {
                    RecordState::Used => "used",
                    _ if r.expired_at(now) => "expired",
                    RecordState::Issued => "issued",
                };
                json!({
                    "code": code,
                    "state": state,
                    "issued_at": r.issued_at.map(time_text),
                    "expires_at": r.expires_at.map(time_text),
                    "used_at": r.used_at.map(time_text),
                })
            })
            .collect())
    }
}

/// The key of a role table row, for grant and revoke.
fn row_key(a: &Assignment) -> String {
    format!("{}|{}|{}", a.principal, a.role.name(), a.scope)
}
