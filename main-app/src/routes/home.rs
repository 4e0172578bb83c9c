//! `GET /`: one page, no framework, no external assets: what this app shows, a button that gets a
//! code and one that verifies it.

use actix_web::HttpResponse;

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Keyless Azure authentication: main-app</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
  h1 { font-size: 1.5rem; }
  button { font: inherit; padding: .4rem 1rem; cursor: pointer; }
  input { font: inherit; padding: .35rem; width: 12rem; }
  output { display: block; margin: .5rem 0 1.5rem; min-height: 1.5rem; font-family: ui-monospace, monospace; }
  .error { color: #a4262c; }
  .ok { color: #107c10; }
  ol { padding-left: 1.2rem; }
</style>
</head>
<body>
<h1>Keyless Azure authentication</h1>
<p>This app holds no Azure credential. To give you a code it:</p>
<ol>
  <li>authenticates with its Entra ID identity (a managed identity in Azure),</li>
  <li>reads the third-party API key from Key Vault,</li>
  <li>calls the third-party API with that key for a number,</li>
  <li>records the code in Queue Storage, with a token, before answering.</li>
</ol>
<p>A worker records each code; a code is valid once, before it expires.</p>

<h2>Get a code</h2>
<button id="get" type="button">Get a code</button>
<output id="got" aria-live="polite"></output>

<h2>Verify a code</h2>
<form id="verify-form">
  <label for="code">Code</label>
  <input id="code" name="code" autocomplete="off" placeholder="AbC-123-xYz" required>
  <button type="submit">Verify</button>
</form>
<output id="verdict" aria-live="polite"></output>

<script>
const show = (el, text, cls) => { el.textContent = text; el.className = cls || ""; };
document.getElementById("get").addEventListener("click", async () => {
  const out = document.getElementById("got");
  show(out, "…");
  try {
    const res = await fetch("/api/v1/getcode");
    const body = await res.json();
    if (res.ok) {
      show(out, body.code + "  (issued " + body.timestamp + ")", "ok");
      document.getElementById("code").value = body.code;
    } else {
      show(out, res.status + ": " + body.message, "error");
    }
  } catch (e) { show(out, "Network error: " + e, "error"); }
});
document.getElementById("verify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = document.getElementById("verdict");
  show(out, "…");
  try {
    const res = await fetch("/api/v1/codes/verify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: document.getElementById("code").value.trim() }),
    });
    const body = await res.json();
    if (!res.ok) show(out, res.status + ": " + body.message, "error");
    else if (body.valid) show(out, "Valid. It is now used and will not be valid again.", "ok");
    else show(out, "Not valid: unknown, already used, expired, or not recorded yet.", "error");
  } catch (e) { show(out, "Network error: " + e, "error"); }
});
</script>
</body>
</html>
"#;

/// The home page.
pub async fn home() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}
