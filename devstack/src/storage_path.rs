//! A storage request path checked once: percent-decoded segment by segment and refused when
//! Azurite could read it as another resource than the storage gate checked (dot segments however
//! spelled, encoded separators, backslashes, empty segments, bad escapes). The gate classifies the
//! checked segments and forwards [`CheckedPath::encoded`], never the raw path.

/// Why a request path was refused (400 `InvalidUri`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("the path must start with '/'")]
    NotAbsolute,
    /// A `.` or `..` segment, literal or percent-encoded.
    #[error("the path holds a dot segment")]
    DotSegment,
    /// `%2F` or `%5C` (a separator hidden in a segment), or a backslash.
    #[error("the path holds an encoded separator or a backslash")]
    EncodedSeparator,
    /// `//`: an empty segment anywhere but a single trailing slash.
    #[error("the path holds an empty segment")]
    EmptySegment,
    /// A `%` not followed by two hex digits, bytes that are not UTF-8, or a control character.
    #[error("the path holds an invalid escape or character")]
    InvalidEncoding,
}

/// A request path checked once: its segments percent-decoded, nothing in it that Azurite could
/// read as another resource than the gate does. The gate classifies these segments and forwards
/// [`CheckedPath::encoded`], never the raw path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedPath {
    segments: Vec<String>,
    trailing_slash: bool,
}

impl CheckedPath {
    /// Checks a raw (still percent-encoded) request path.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let rest = raw.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        let mut raw_segments: Vec<&str> = rest.split('/').collect();
        // One trailing slash is allowed and kept: "/account/" is the account and "/a/c/" the
        // container, for Azurite as for the classification; "/a/c/dir/" is the blob "dir/".
        // "/" alone is no segment and a trailing slash.
        let trailing_slash = raw_segments.last() == Some(&"");
        if trailing_slash {
            raw_segments.pop();
        }
        let segments = raw_segments
            .into_iter()
            .map(decode_segment)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            segments,
            trailing_slash,
        })
    }

    /// Whether the path ended in one `/` (kept when forwarded).
    #[cfg(test)]
    pub fn has_trailing_slash(&self) -> bool {
        self.trailing_slash
    }

    /// The decoded segments: account, then queue or container, then the rest.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The path as forwarded: each decoded segment percent-encoded the one canonical way.
    pub fn encoded(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            encode_segment(segment, &mut out);
        }
        if self.trailing_slash {
            out.push('/');
        }
        out
    }
}

/// Percent-decodes one segment, refusing what could make Azurite split or walk differently.
fn decode_segment(raw: &str) -> Result<String, PathError> {
    if raw.is_empty() {
        return Err(PathError::EmptySegment);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::InvalidEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| PathError::InvalidEncoding)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PathError::InvalidEncoding);
            }
            i += 3;
            u8::from_str_radix(hex, 16).map_err(|_| PathError::InvalidEncoding)?
        } else {
            i += 1;
            bytes[i - 1]
        };
        decoded.push(byte);
    }
    if decoded.contains(&b'/') || decoded.contains(&b'\\') {
        return Err(PathError::EncodedSeparator);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::InvalidEncoding)?;
    if decoded.chars().any(char::is_control) {
        return Err(PathError::InvalidEncoding);
    }
    if decoded == "." || decoded == ".." {
        return Err(PathError::DotSegment);
    }
    Ok(decoded)
}

/// RFC 3986 `pchar` minus `%`: unreserved, sub-delims, `:` and `@` stay as they are.
fn encode_segment(segment: &str, out: &mut String) {
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}
