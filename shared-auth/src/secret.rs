//! A string that never prints its value: not in Debug, Display or panic messages, and never
//! serialised.

use std::fmt;
use zeroize::Zeroizing;

/// What every redacted value prints as.
pub const REDACTED: &str = "<redacted>";

/// A secret string (an API key, a client secret). Its memory is wiped on drop; reading it needs
/// an explicit [`Secret::expose`], which is easy to find in review.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The value itself. Use it only to send it where it belongs.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

/// Reads the value itself: a secret arrives as JSON where it is meant to be used (an admin API
/// listing keys to an operator tool). There is no `Serialize`: a secret leaves only through
/// [`Secret::expose`], so putting one in a serialised body by mistake does not compile.
///
/// ```compile_fail
/// fn body<T: serde::Serialize>(_: &T) {}
/// body(&shared_auth::Secret::new("never in a body"));
/// ```
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUE: &str = "s3cr3t-value-that-must-not-leak";

    #[test]
    fn no_formatting_path_prints_the_value() {
        let secret = Secret::new(VALUE);
        let printed = [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{secret}"),
            format!("{:?}", Some(secret.clone())),
            format!("{:?}", Err::<(), _>(secret.clone())),
        ];
        for p in printed {
            assert!(!p.contains(VALUE), "leaked in {p}");
            assert!(p.contains(REDACTED), "no redaction marker in {p}");
        }
        assert_eq!(secret.expose(), VALUE);
    }

    #[test]
    fn panic_message_does_not_carry_the_value() {
        let failing: fn(Secret) -> Result<(), Secret> = Err;
        let secret = Secret::new(VALUE);
        let result = std::panic::catch_unwind(move || {
            failing(secret).expect("operation failed");
        });
        let payload = result.unwrap_err();
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("operation failed"));
        assert!(!message.contains(VALUE));
    }

    #[test]
    fn deserializes_from_a_plain_string() {
        let secret: Secret = serde_json::from_str(&format!("\"{VALUE}\"")).unwrap();
        assert_eq!(secret.expose(), VALUE);
    }
}
