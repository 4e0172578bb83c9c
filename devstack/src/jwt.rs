//! Entra-style access tokens: RS256 JWTs signed by the identity emulator and checked by the Key
//! Vault emulator and the storage gate (signature, issuer, audience, lifetime).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;

/// The development tenant every identity belongs to.
pub const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// Clock skew tolerated on `nbf` and `exp`, as Entra-protected services allow.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// The `iss` of v1 access tokens for [`TENANT_ID`] (Azurite checks this prefix).
pub fn issuer() -> String {
    format!("https://sts.windows.net/{TENANT_ID}/")
}

/// The claims the emulators write and read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audience: the resource the token is for.
    pub aud: String,
    /// Issuer.
    pub iss: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Not before (unix seconds).
    pub nbf: i64,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Object id of the identity: what role assignments name.
    pub oid: String,
    /// Subject (the object id, for app tokens).
    pub sub: String,
    /// Application (client) id.
    pub appid: String,
    /// Tenant.
    pub tid: String,
    /// Token version.
    pub ver: String,
    /// `app` for application tokens.
    pub idtyp: String,
}

/// Why a token was refused, worded as Entra-protected services word it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON.
    #[error("the access token is malformed")]
    Malformed,
    /// Signed with another key or algorithm.
    #[error("the access token signature is invalid")]
    BadSignature,
    /// Issued by another authority.
    #[error("the access token issuer is not trusted")]
    WrongIssuer,
    /// For another resource.
    #[error("the access token audience is invalid for this resource")]
    WrongAudience,
    /// Past `exp`.
    #[error("the access token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the access token is not yet valid")]
    NotYetValid,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// Signs tokens; holds the RSA private key. Cheap to clone.
#[derive(Clone)]
pub struct TokenSigner {
    key: Arc<RsaKeyPair>,
    kid: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A new 2048-bit RSA signing key.
    pub fn generate() -> anyhow::Result<Self> {
        let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        Ok(Self {
            key: Arc::new(key),
            kid: uuid::Uuid::new_v4().simple().to_string(),
        })
    }

    /// Loads the PKCS#8 signing key stored at `path`, or creates it there (mode 0600), so
    /// tokens stay valid across restarts of whatever shares the file.
    pub fn load_or_create(path: &std::path::Path) -> anyhow::Result<Self> {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        let key = match std::fs::read(path) {
            Ok(der) => RsaKeyPair::from_pkcs8(&der)
                .map_err(|_| anyhow::anyhow!("{} is not a PKCS#8 RSA key", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
                let der: Pkcs8V1Der = key
                    .as_der()
                    .map_err(|_| anyhow::anyhow!("RSA key encoding failed"))?;
                crate::pki::write_private(path, der.as_ref())?;
                key
            }
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        };
        let modulus = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key()).n;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &modulus);
        Ok(Self {
            key: Arc::new(key),
            kid: B64.encode(&digest.as_ref()[..16]),
        })
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header {
            alg: "RS256".into(),
            typ: "JWT".into(),
            kid: self.kid.clone(),
        };
        let signing_input = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(&header).expect("header serialises")),
            B64.encode(serde_json::to_vec(claims).expect("claims serialise"))
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing with a valid key");
        format!("{signing_input}.{}", B64.encode(signature))
    }

    /// The verifier for tokens this signer issues.
    pub fn verifier(&self) -> TokenVerifier {
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(self.key.public_key());
        TokenVerifier {
            n: components.n,
            e: components.e,
            kid: self.kid.clone(),
        }
    }
}

/// Checks tokens against the signer's public key. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    n: Vec<u8>,
    e: Vec<u8>,
    kid: String,
}

impl TokenVerifier {
    /// The JSON Web Key Set publishing the public key.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": B64.encode(&self.n), "e": B64.encode(&self.e),
        }]})
    }

    /// Verifies signature, issuer (Entra's), audience (any of `audiences`) and lifetime.
    pub fn verify(&self, token: &str, audiences: &[&str]) -> Result<Claims, TokenError> {
        self.verify_from(token, &issuer(), audiences)
    }

    /// Verifies signature, `expected_issuer`, audience (any of `audiences`) and lifetime.
    pub fn verify_from(
        &self,
        token: &str,
        expected_issuer: &str,
        audiences: &[&str],
    ) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = decode_json(header)?;
        let signature = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        if header.alg != "RS256" {
            return Err(TokenError::BadSignature);
        }
        let signed = &token[..header_len(token)];
        RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        )
        .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = decode_json(payload)?;
        if claims.iss != expected_issuer {
            return Err(TokenError::WrongIssuer);
        }
        if !audiences.iter().any(|a| audience_matches(&claims.aud, a)) {
            return Err(TokenError::WrongAudience);
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if now > claims.exp + CLOCK_SKEW_SECONDS {
            return Err(TokenError::Expired);
        }
        if now + CLOCK_SKEW_SECONDS < claims.nbf {
            return Err(TokenError::NotYetValid);
        }
        Ok(claims)
    }
}

/// `https://vault.azure.net` and `https://vault.azure.net/` are the same audience.
fn audience_matches(claimed: &str, expected: &str) -> bool {
    claimed.trim_end_matches('/') == expected.trim_end_matches('/')
}

/// Length of `header.payload`, the signed part.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    let bytes = B64.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

/// The bearer token of an `Authorization` header value, if it is one.
pub fn bearer(header: Option<&actix_web::http::header::HeaderValue>) -> Option<&str> {
    let value = header?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str, lifetime: i64) -> Claims {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            aud: aud.into(),
            iss: issuer(),
            iat: now,
            nbf: now,
            exp: now + lifetime,
            oid: "oid".into(),
            sub: "oid".into(),
            appid: "app".into(),
            tid: TENANT_ID.into(),
            ver: "1.0".into(),
            idtyp: "app".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_tampering_does_not() {
        let signer = TokenSigner::generate().unwrap();
        let verifier = signer.verifier();
        let token = signer.sign(&claims("https://vault.azure.net", 3600));
        let checked = verifier
            .verify(&token, &["https://vault.azure.net/"])
            .unwrap();
        assert_eq!(checked.oid, "oid");

        assert_eq!(
            verifier.verify(&token, &["https://storage.azure.com"]),
            Err(TokenError::WrongAudience)
        );
        let other = TokenSigner::generate().unwrap().verifier();
        assert_eq!(
            other.verify(&token, &["https://vault.azure.net"]),
            Err(TokenError::BadSignature)
        );
        let mut forged = claims("https://vault.azure.net", 3600);
        forged.oid = "someone-else".into();
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(serde_json::to_vec(&forged).unwrap()),
            parts[2]
        );
        assert_eq!(
            verifier.verify(&tampered, &["https://vault.azure.net"]),
            Err(TokenError::BadSignature)
        );
        assert_eq!(verifier.verify("a.b", &[]), Err(TokenError::Malformed));
    }

    #[test]
    fn lifetime_and_issuer_are_checked() {
        let signer = TokenSigner::generate().unwrap();
        let verifier = signer.verifier();
        let expired = signer.sign(&claims("https://vault.azure.net", -3600));
        assert_eq!(
            verifier.verify(&expired, &["https://vault.azure.net"]),
            Err(TokenError::Expired)
        );
        let mut early = claims("https://vault.azure.net", 7200);
        early.nbf += 3600;
        assert_eq!(
            verifier.verify(&signer.sign(&early), &["https://vault.azure.net"]),
            Err(TokenError::NotYetValid)
        );
        let mut foreign = claims("https://vault.azure.net", 3600);
        foreign.iss = "https://sts.windows.net/another-tenant/".into();
        assert_eq!(
            verifier.verify(&signer.sign(&foreign), &["https://vault.azure.net"]),
            Err(TokenError::WrongIssuer)
        );
    }
}
