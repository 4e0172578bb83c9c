// Drives headless Chromium through the devstack console, as devstack/tests/console.rs asks:
// refused without its token, every resource ready, a getcode from main-app's page seen as
// allowed decisions and a trace across the services, main-app's Sender role revoked and the
// denial named, then granted back. Every response the console serves is written to
// RESPONSES_DIR for the test's secret check; a screenshot goes to SCREENSHOT.
// Prints one JSON line of what it saw; exits 1 with the failed step on stderr.
import { chromium } from "playwright-core";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const consoleUrl = env("CONSOLE_URL");
const mainApp = env("MAIN_APP_URL");
const responsesDir = env("RESPONSES_DIR");
const screenshot = env("SCREENSHOT");
const resources = env("EXPECT_RESOURCES").split(",");
const timeout = 60_000;
mkdirSync(responsesDir, { recursive: true });

let step = "launching Chromium";
const seen = {};
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // As root (CI) Chromium's sandbox cannot start.
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
  const origin = new URL(consoleUrl).origin;
  let saved = 0;
  const pending = [];
  context.on("response", (response) => {
    if (!response.url().startsWith(origin)) return;
    pending.push(response.body().then((body) => {
      saved += 1;
      writeFileSync(join(responsesDir, `${String(saved).padStart(5, "0")}.txt`),
        Buffer.concat([Buffer.from(response.url() + "\n"), body]));
    }, () => {}));
  });
  const page = await context.newPage();

  step = "the console refuses a visit without its token";
  for (const url of [origin + "/", origin + "/?token=wrong"]) {
    const refused = await page.goto(url);
    if (refused.status() !== 401) throw new Error(`${url} answered ${refused.status()}`);
    if (!(await page.textContent("body")).includes("access token")) throw new Error("the refusal does not say why");
  }
  const api = await page.request.get(origin + "/api/state");
  if (api.status() !== 401) throw new Error(`/api/state without a token answered ${api.status()}`);

  step = "the console loads with its token and shows every resource ready";
  const loaded = await page.goto(consoleUrl);
  if (loaded.status() !== 200) throw new Error(`the console answered ${loaded.status()}`);
  await page.waitForFunction((names) => {
    const cards = [...document.querySelectorAll("[data-resource]")];
    return names.every((n) => cards.some((c) => c.dataset.resource === n && c.dataset.ready === "true"));
  }, resources, { timeout });
  seen.resources = await page.$$eval("[data-resource]", (cards) => cards.map((c) => c.dataset.resource));

  step = "a getcode from main-app's home page";
  const app = await context.newPage();
  await app.goto(mainApp + "/");
  await app.click("#get");
  await app.waitForSelector("#got.ok", { timeout });
  seen.code = (await app.textContent("#got")).split(" ")[0];

  step = "the getcode's accesses appear as allowed decisions";
  await page.bringToFront();
  for (const [identity, operation] of [["main-app", "Get Secret"], ["main-app", "Put Blob"], ["main-app", "Put Message"], ["queue-worker", "Get Messages"]]) {
    await page.waitForSelector(`#decisions tr[data-identity="${identity}"][data-operation="${operation}"][data-allowed="true"]`, { timeout });
  }

  step = "the code appears in the ledger";
  await page.waitForFunction((code) => [...document.querySelectorAll("#codes tr")].some((r) => r.textContent.includes(code)), seen.code, { timeout });

  step = "the getcode's trace crosses main-app, third-party-api and queue-worker";
  await page.waitForSelector('.trace-list li[data-services~="main-app"][data-services~="third-party-api"][data-services~="queue-worker"]', { timeout });
  await page.click('.trace-list li[data-services~="main-app"][data-services~="third-party-api"][data-services~="queue-worker"] button');
  await page.waitForFunction(() => {
    const services = new Set([...document.querySelectorAll(".timeline .span-row")].map((r) => r.dataset.service));
    return ["main-app", "third-party-api", "queue-worker"].every((s) => services.has(s));
  }, null, { timeout });
  seen.trace_spans = await page.$$eval(".timeline .span-row", (rows) => rows.length);

  step = "revoking main-app's Storage Queue Data Message Sender role";
  const sender = '#roles tr[data-identity="main-app"][data-role="Storage Queue Data Message Sender"]';
  await page.click(`${sender} button`);
  await page.waitForSelector(`${sender}[data-held="false"]`, { timeout });

  step = "a getcode without the role fails";
  await app.bringToFront();
  await app.click("#get");
  await app.waitForSelector("#got.error", { timeout });
  seen.refused_getcode = await app.textContent("#got");

  step = "the denial names the missing role, its id and the az line";
  await page.bringToFront();
  const denial = '#decisions tr[data-identity="main-app"][data-operation="Put Message"][data-allowed="false"]';
  await page.waitForSelector(denial, { timeout });
  seen.denial = (await page.textContent(denial)).replace(/\s+/g, " ").trim();
  for (const needed of ["Storage Queue Data Message Sender", "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a", "az role assignment create", "queue code-requests"]) {
    if (!seen.denial.includes(needed)) throw new Error(`the denial does not name ${needed}: ${seen.denial}`);
  }
  await page.screenshot({ path: screenshot, fullPage: true });

  step = "granting the role back lets the next getcode through";
  await page.click(`${sender} button`);
  await page.waitForSelector(`${sender}[data-held="true"]`, { timeout });
  await app.bringToFront();
  await app.click("#get");
  await app.waitForSelector("#got.ok", { timeout });

  await Promise.all(pending);
  seen.responses = saved;
  console.log(JSON.stringify(seen));
} catch (error) {
  console.error(`console browser test failed at: ${step}\n${error.stack || error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
