//! What `keyless` prints: each result is one value, rendered as text (`Display`) or, with
//! `--json`, as one JSON line (`Serialize`), never built twice.

use serde::Serialize;
use std::fmt::Display;
use std::io::Write;

/// Writes `message` to `out` as one JSON line (`json`) or as its text, flushed at once.
pub fn print(out: &mut (dyn Write + Send), json: bool, message: &(impl Display + Serialize)) {
    let _ = if json {
        let line = serde_json::to_string(message).unwrap_or_else(|e| {
            serde_json::json!({ "ok": false, "error": format!("cannot write JSON: {e}") })
                .to_string()
        });
        writeln!(out, "{line}")
    } else {
        write!(out, "{message}")
    };
    let _ = out.flush();
}
