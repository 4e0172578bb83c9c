//! third-party-api's admin API, as Azure Functions has it (plus `lastAccepted`), over the shared
//! HTTP client (`EXTRA_CA_CERTS`) with the master key in `x-functions-key`:
//! `GET/POST/DELETE {origin}/admin/functions/{function}/keys[/{name}]`.
//!
//! Key values and the master key are [`Secret`]s; no error, log or `Debug` text carries one, and
//! no answer body is ever quoted.

use azure_core::http::Url;
use serde::Deserialize;
use shared_auth::Secret;
use shared_auth::azure_error::{error_chain, one_line};
use time::OffsetDateTime;

/// The header that carries a Functions key.
pub const KEY_HEADER: &str = "x-functions-key";

/// One function key as the admin API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionKey {
    /// The key's name.
    pub name: String,
    /// Its value; never printed.
    pub value: Secret,
    /// When the replica that answered last accepted it (`null` or absent: not since it started).
    #[serde(
        default,
        rename = "lastAccepted",
        with = "time::serde::rfc3339::option"
    )]
    pub last_accepted: Option<OffsetDateTime>,
}

#[derive(Deserialize)]
struct KeyList {
    keys: Vec<FunctionKey>,
}

/// Why an admin call did not succeed; never quotes a key or a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The master key was refused (401 or 403).
    #[error("the admin API refused the master key ({0})")]
    Refused(u16),
    /// No such key or route (404).
    #[error("the admin API answered 404 Not Found")]
    NotFound,
    /// Another unexpected status.
    #[error("the admin API answered {0}")]
    Status(u16),
    /// No answer (connection, TLS or timeout), with the transport's reason.
    #[error("the admin API could not be reached: {0}")]
    Unreachable(String),
    /// The answer could not be read as the admin API's JSON.
    #[error("the admin API's answer could not be read: {0}")]
    Malformed(String),
}

impl AdminError {
    /// Whether waiting may help: the key not accepted yet, the service (re)starting or busy.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Refused(_) | Self::Unreachable(_) => true,
            Self::Status(status) => *status >= 500 || *status == 429 || *status == 408,
            Self::NotFound | Self::Malformed(_) => false,
        }
    }
}

/// A client of one third-party-api's admin API, holding the master key.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    keys_url: Url,
    master_key: Secret,
}

/// Why a function's URL (`THIRD_PARTY_API_ENDPOINT`) gives no admin URL; said after the
/// variable's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not `http` or `https`, or no host.
    #[error("must be an http or https URL with a host")]
    NotHttp,
    /// Plain `http` to another machine: the master key would cross the network in the clear.
    #[error(
        "must be https unless it points at this machine (127.0.0.1, ::1, localhost): the master key would cross the network in the clear"
    )]
    PlainHttp,
    /// No path segment to name the function.
    #[error("must name the function (`.../api/RandomNumber`)")]
    NoFunction,
    /// The last path segment is not a function name.
    #[error("its last path segment must be a function name")]
    NotAFunctionName,
}

/// The admin URL of the function keys for `endpoint` (`THIRD_PARTY_API_ENDPOINT`,
/// `https://host[:port]/api/<Function>`): same origin, `/admin/functions/<Function>/keys`.
pub fn keys_url(endpoint: &Url) -> Result<Url, EndpointError> {
    if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
        return Err(EndpointError::NotHttp);
    }
    let host = endpoint.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if endpoint.scheme() == "http" && !loopback {
        return Err(EndpointError::PlainHttp);
    }
    let function = endpoint
        .path_segments()
        .and_then(|mut s| s.rfind(|s| !s.is_empty()))
        .ok_or(EndpointError::NoFunction)?;
    if !function
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err(EndpointError::NotAFunctionName);
    }
    let mut url = endpoint.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.set_path(&format!("/admin/functions/{function}/keys"));
    Ok(url)
}

/// A JSON answer of the admin API; an error names the position only (serde's message could
/// quote a value).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body)
        .map_err(|e| AdminError::Malformed(format!("line {} column {}", e.line(), e.column())))
}

impl AdminClient {
    /// A client for the admin API at `keys_url` ([`keys_url`]) that authenticates with
    /// `master_key`.
    pub fn new(http: reqwest::Client, keys_url: Url, master_key: Secret) -> Self {
        Self {
            http,
            keys_url,
            master_key,
        }
    }

    /// The URL of the function keys (no secret in it).
    pub fn keys_url(&self) -> &Url {
        &self.keys_url
    }

    fn key_url(&self, name: &str) -> Url {
        let mut url = self.keys_url.clone();
        url.set_path(&format!("{}/{name}", self.keys_url.path()));
        url
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AdminError> {
        request
            .header(KEY_HEADER, self.master_key.expose())
            .send()
            .await
            .map_err(|e| AdminError::Unreachable(transport_reason(&e)))
    }

    /// Every function key with its value and `lastAccepted`.
    pub async fn list(&self) -> Result<Vec<FunctionKey>, AdminError> {
        let response = self.send(self.http.get(self.keys_url.clone())).await?;
        let body = expect(response, &[200]).await?;
        Ok(parse::<KeyList>(&body)?.keys)
    }

    /// Asks third-party-api to generate a new function key called `name`; returns it.
    pub async fn generate(&self, name: &str) -> Result<FunctionKey, AdminError> {
        let response = self.send(self.http.post(self.key_url(name))).await?;
        let body = expect(response, &[200, 201]).await?;
        let key: FunctionKey = parse(&body)?;
        if key.name != name {
            return Err(AdminError::Malformed(format!(
                "asked for key {name}, got {}",
                key.name
            )));
        }
        Ok(key)
    }

    /// Revokes (deletes) function key `name`; `false` when it was already gone.
    pub async fn delete(&self, name: &str) -> Result<bool, AdminError> {
        let response = self.send(self.http.delete(self.key_url(name))).await?;
        match expect(response, &[200, 204]).await {
            Ok(_) => Ok(true),
            Err(AdminError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

async fn expect(response: reqwest::Response, ok: &[u16]) -> Result<Vec<u8>, AdminError> {
    let status = response.status().as_u16();
    if !ok.contains(&status) {
        return Err(match status {
            401 | 403 => AdminError::Refused(status),
            404 => AdminError::NotFound,
            other => AdminError::Status(other),
        });
    }
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| AdminError::Unreachable(transport_reason(&e)))
}

/// The transport's reason in one line: reqwest's chain names the URL (no secret in it) and the
/// cause (connection refused, TLS, timeout); headers are never part of it.
fn transport_reason(error: &reqwest::Error) -> String {
    one_line(&error_chain(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_url_has_the_endpoints_origin_and_function() {
        let url = |s: &str| keys_url(&Url::parse(s).unwrap());
        assert_eq!(
            url("https://api.example.net/api/RandomNumber")
                .unwrap()
                .as_str(),
            "https://api.example.net/admin/functions/RandomNumber/keys"
        );
        assert_eq!(
            url("http://127.0.0.1:7071/api/RandomNumber/?code=x#f")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:7071/admin/functions/RandomNumber/keys"
        );
        assert!(url("http://[::1]:7071/api/RandomNumber").is_ok());
        assert!(url("http://localhost:7071/api/RandomNumber").is_ok());
        for remote in [
            "http://third-party-api:7071/api/RandomNumber",
            "http://10.0.0.4/api/RandomNumber",
            "http://api.example.net/api/RandomNumber",
        ] {
            assert_eq!(url(remote), Err(EndpointError::PlainHttp), "{remote}");
        }
        assert!(url("https://api.example.net/").is_err());
        assert!(url("ftp://api.example.net/api/RandomNumber").is_err());
        assert!(url("https://api.example.net/api/Random%20Number").is_err());
    }

    #[test]
    fn the_key_list_reads_last_accepted_and_hides_values() {
        let body = r#"{"keys":[
            {"name":"main-app","value":"aaaaaaaaaaaaaaaaaaaaaaaa","lastAccepted":"2026-11-01T12:00:00Z"},
            {"name":"main-app-20261101120000","value":"bbbbbbbbbbbbbbbbbbbbbbbb","lastAccepted":null},
            {"name":"other","value":"cccccccccccccccccccccccc"}
        ],"links":[{"rel":"self","href":"/admin/functions/RandomNumber/keys"}]}"#;
        let list: KeyList = serde_json::from_str(body).unwrap();
        assert_eq!(list.keys.len(), 3);
        assert_eq!(
            list.keys[0].last_accepted,
            Some(
                OffsetDateTime::parse(
                    "2026-11-01T12:00:00Z",
                    &time::format_description::well_known::Rfc3339
                )
                .unwrap()
            )
        );
        assert_eq!(list.keys[1].last_accepted, None);
        assert_eq!(list.keys[2].last_accepted, None);
        let shown = format!("{:?}", list.keys);
        assert!(!shown.contains("aaaaaaaa"), "{shown}");
    }

    #[tokio::test]
    async fn a_transport_failure_is_its_whole_chain_on_one_line() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/admin"))
            .send()
            .await
            .unwrap_err();
        let reason = transport_reason(&error);
        assert!(
            reason.starts_with(&format!(
                "error sending request for url (http://127.0.0.1:{port}/admin): "
            )),
            "{reason}"
        );
        assert!(
            reason.to_lowercase().contains("connection refused"),
            "{reason}"
        );
        assert!(!reason.contains('\n'), "{reason}");
    }

    #[test]
    fn errors_say_what_happened_without_a_body() {
        assert!(AdminError::Refused(401).is_transient());
        assert!(AdminError::Status(503).is_transient());
        assert!(!AdminError::NotFound.is_transient());
        assert!(!AdminError::Status(400).is_transient());
        assert_eq!(
            AdminError::Refused(401).to_string(),
            "the admin API refused the master key (401)"
        );
    }
}
