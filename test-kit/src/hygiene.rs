//! The secret check every test of logs and answers shares: a secret value or a bearer token (a
//! JWT) in a line, and the line redacted for a failure message.

/// The first line of `text` holding one of `secrets` or a JWT (`eyJ…​.eyJ…`), if any.
pub fn leaks<'a>(text: &'a str, secrets: &[String]) -> Option<&'a str> {
    let jwt = regex_lite::Regex::new(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}").unwrap();
    text.lines()
        .find(|line| jwt.is_match(line) || secrets.iter().any(|s| line.contains(s.as_str())))
}

/// A leaking line for the failure message, with every secret and token replaced.
pub fn redact(line: &str, secrets: &[String]) -> String {
    let jwt = regex_lite::Regex::new(r"eyJ[A-Za-z0-9_.-]+").unwrap();
    let mut line = jwt.replace_all(line, "<jwt>").into_owned();
    for secret in secrets {
        line = line.replace(secret.as_str(), "<secret>");
    }
    line.chars().take(300).collect()
}
