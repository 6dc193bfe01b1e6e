// Mailwright's UI in headless Chromium, against `mailwright demo`.
//
//   node tests/browser/run.mjs path/to/mailwright                 # the browser tests
//   node tests/browser/run.mjs path/to/mailwright --screenshots docs/screenshots
//
// One scenario, step by step, as a newcomer would go: sign in, connect Gmail
// from Home with the compose permission unticked, see why auto-draft cannot
// be switched on, reconnect (and come back to the same page), switch it on,
// drop an email in the sandbox inbox and see the draft appear, test
// auto-draft, create and run a send-email workflow, create an API key, read
// the home page and the charts, meet the error pages, sign out and back in,
// and see every page at phone width. A failing step saves a screenshot under
// target/browser/; any console error and any page answered as JSON fail the
// run; the demo must exit promptly after SIGTERM.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const binary = process.argv[2];
const screenshotsAt = process.argv.indexOf("--screenshots");
const screenshotDir = screenshotsAt > 0 ? resolve(process.argv[screenshotsAt + 1]) : null;
if (!binary) {
  console.error("usage: node run.mjs path/to/mailwright [--screenshots DIR]");
  process.exit(2);
}
const failureDir = resolve("target/browser");
mkdirSync(failureDir, { recursive: true });
if (screenshotDir) mkdirSync(screenshotDir, { recursive: true });

const DEADLINE_MS = 20_000;
const MAILBOX = "you@demo.mailwright.test";

function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Start `mailwright demo`; resolves with its base URL and sign-in link. */
async function startDemo() {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "mailwright-browser-"));
  const child = spawn(binary, ["demo", "--listen", `127.0.0.1:${port}`, "--data-dir", dataDir], {
    env: { ...process.env, RUST_LOG: "warn", MAILWRIGHT_LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const link = await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error("the demo did not print its sign-in link in time")), DEADLINE_MS);
    let seen = "";
    child.stdout.on("data", (chunk) => {
      seen += chunk.toString();
      const found = seen.match(/http:\/\/\S+\/demo\/signin\?token=\S+/);
      if (found) {
        clearTimeout(timer);
        done(found[0]);
      }
    });
    child.once("exit", (code) => fail(new Error(`the demo exited early (status ${code})`)));
  });
  return { base: `http://127.0.0.1:${port}`, link, child, dataDir };
}

const demo = await startDemo();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Without the background-networking flags Chromium tries to reach Google
  // at start, which this offline machine refuses.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
const page = await context.newPage();
const consoleErrors = [];
page.on("console", (message) => {
  if (message.type() === "error") consoleErrors.push(`${page.url()}: ${message.text()}`);
});
page.on("pageerror", (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
// No page the browser navigates to may be raw JSON: errors get HTML pages.
const jsonPages = [];
page.on("response", (response) => {
  const request = response.request();
  if (!request.isNavigationRequest() || request.frame() !== page.mainFrame()) return;
  const type = response.headers()["content-type"] || "";
  if (type.includes("json")) jsonPages.push(`${response.status()} ${response.url()} (${type})`);
});
/** Run `body`, dropping the console's "failed to load" lines for the
 * statuses it expects (a refused form, an error page asked for on purpose). */
async function expectingStatuses(statuses, body) {
  const before = consoleErrors.length;
  await body();
  const unexpected = consoleErrors
    .splice(before)
    .filter((line) => !statuses.some((status) => line.includes(`status of ${status}`)));
  consoleErrors.push(...unexpected);
}

let failed = false;
let autodraftUrl = null;

async function step(name, body) {
  if (failed) {
    console.log(`skip ${name}`);
    return;
  }
  try {
    await body();
    console.log(`ok   ${name}`);
  } catch (error) {
    failed = true;
    const shot = join(failureDir, `failure-${name}.png`);
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.log(`FAIL ${name}: ${error.message}\n     at ${page.url()}\n     screenshot: ${shot}`);
  }
}

async function shoot(name) {
  if (screenshotDir) await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function bodyText() {
  return page.locator("body").innerText();
}

/** Reload `url` until `probe()` is true (the server works in the background). */
async function eventually(url, probe, what) {
  const until = Date.now() + DEADLINE_MS;
  for (;;) {
    await page.goto(url);
    if (await probe()) return;
    check(Date.now() < until, `timed out waiting for ${what}`);
    await page.waitForTimeout(250);
  }
}

/** The sandbox's consent screen: untick `untick`, then Allow; lands on
 * `back` (where the connection was started). */
async function consent(untick = [], back = /\/integrations\?/) {
  await page.waitForURL(/\/sandbox\/google\/o\/oauth2\/v2\/auth/);
  check((await bodyText()).includes("Sandbox"), "the consent screen says it is the sandbox");
  await shoot(untick.length ? "consent-unticked" : "consent");
  for (const scope of untick) {
    await page.locator(`input[name=granted_scope][value$="${scope}"]`).uncheck();
  }
  await page.locator("button[value=allow]").click();
  await page.waitForURL(back);
}

let workflowUrl = null;

await step("sign-in", async () => {
  await page.goto(demo.link);
  await page.waitForURL(`${demo.base}/`);
  const text = await bodyText();
  check(text.includes("Welcome"), "the home page greets a newcomer");
  check(await page.locator("#home-connect").isVisible(), "Home offers to connect Gmail");
  check(await page.locator("#home-sandbox-inbox").isVisible(), "Home links the demo's sandbox inbox");
  await shoot("home-new");
});

await step("connect-from-home-without-compose", async () => {
  await page.locator("#home-connect").click();
  await consent(["gmail.compose"], new RegExp(`^${demo.base}/\\?connected=gmail`));
  check((await bodyText()).includes("Gmail connected."), "back home, the connection is confirmed");
  await page.goto(`${demo.base}/integrations`);
  const text = await bodyText();
  check(text.includes("Mailwright cannot yet"), "what is missing is explained");
  check(text.includes("create drafts (gmail.compose)"), "the missing permission is named in words");
  await shoot("connections-missing-permission");
});

await step("autodraft-switch-disabled", async () => {
  await page.getByRole("link", { name: /Auto-draft/ }).click();
  autodraftUrl = page.url();
  check(await page.locator("#autodraft-toggle").isDisabled(), "the switch is disabled");
  const why = await page.locator("#autodraft-blocked").innerText();
  check(why.includes("create drafts"), `the reason is shown: ${why}`);
  await shoot("autodraft-blocked");
});

await step("reconnect-returns-and-enable", async () => {
  await page.locator("#autodraft-blocked a").click();
  await consent([], /\/autodraft\/[0-9a-f-]{36}\?connected=gmail/);
  check((await bodyText()).includes("Reconnected"), "back on the auto-draft page, reconnected");
  await page.locator("#autodraft-toggle").click();
  await page.waitForURL(/notice=on/);
  check((await page.locator("#autodraft-state").innerText()) === "on", "auto-draft is on");
});

await step("draft-appears", async () => {
  await page.locator("#autodraft-sandbox-inbox").click();
  await page.waitForURL(`${demo.base}/sandbox/inbox`);
  await page.locator("#from").fill("Alex Sender <alex@example.com>");
  await page.locator("#subject").fill("Meeting next week");
  await page.locator("#text").fill("Hi, could we meet on Tuesday at 10 to go through the plan?\nAlex");
  await page.locator("#deliver").click();
  await page.waitForURL(/delivered=1/);
  await eventually(`${demo.base}/sandbox/inbox`, async () => (await page.locator(".reply-draft").count()) > 0, "the reply draft in the sandbox inbox");
  const time = page.locator(".message time[data-local]").first();
  check((await time.getAttribute("title")) !== null, "times are shown in the viewer's zone");
  check(/\d{4}/.test(await time.innerText()), `a time with its date: ${await time.innerText()}`);
  await shoot("sandbox-inbox");
  await page.goto(autodraftUrl);
  const recent = page.locator("#recent-drafts li");
  check((await recent.count()) === 1, `the recent drafts list shows the draft (${await recent.count()})`);
  const line = await recent.first().innerText();
  check(line.includes("Meeting next week") && line.includes("Alex Sender"), `the draft's subject and sender: ${line}`);
  check((await page.locator("#last-success").innerText()) === "just now", "the last success is just now");
  check((await page.locator("#autodraft-chart svg.chart rect").count()) > 0, "the chart shows the day's draft");
  await shoot("autodraft");
  await recent.first().locator("a.open-draft").click();
  await page.waitForURL(/\/sandbox\/inbox#thread-/);
});

await step("test-button-redirects", async () => {
  await page.goto(autodraftUrl);
  await page.locator("#autodraft-test").click();
  await page.waitForURL(/#test-result$/);
  await page.locator("#test-result").waitFor();
  check((await page.locator("#test-result").count()) === 1, "the result is shown in one place");
  await page.reload();
  check((await page.locator("#test-result").count()) === 0, "a reload shows the page, not the test again");
});

await step("workflow-runs", async () => {
  await page.goto(`${demo.base}/workflows`);
  await page.locator("#workflow-name").fill("Welcome email");
  await page.locator("#step-0-action").selectOption("gmail.send_email");
  check(await page.locator("#step-0-url").isHidden(), "a send step hides the URL field");
  await page.locator("#step-0-to").fill("{{ input.email }}");
  await page.locator("#step-0-subject").fill("Welcome, {{ input.name }}");
  await page.locator("#step-0-body").fill("Hello {{ input.name }}, welcome aboard.");
  await page.locator("#workflow-save").click();
  await page.waitForURL(/\/workflows\/[0-9a-f-]{36}/);
  workflowUrl = page.url().split("?")[0];
  await shoot("workflow");
  // The form's own pre-fill has empty values: refused in the form's words.
  await expectingStatuses([422], async () => {
    await page.locator("#run-button").click();
    await page.waitForLoadState();
  });
  const said = await page.locator(".field-error[data-field=input]").innerText();
  check(said.includes("Step 1's To is empty") && !said.includes("steps["), `the input's problem in words: ${said}`);
  await page.locator("#run-input").fill(`{"name": "Ada", "email": "${MAILBOX}"}`);
  await page.locator("#run-button").click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}/);
  const runUrl = page.url();
  await eventually(runUrl, async () => (await page.locator("#run-status").innerText()).trim() === "succeeded", "the run to succeed");
  await shoot("run");
  await page.goto(workflowUrl);
  check((await page.locator("#runs-chart svg.chart rect").count()) > 0, "the runs chart shows the run");
  await shoot("workflow-charts");
});

await step("workflow-form-errors", async () => {
  await page.goto(`${demo.base}/workflows`);
  await page.locator("#workflow-name").fill("Broken");
  await page.locator("#step-0-action").selectOption("gmail.send_email");
  // A second step, added by the form's own button, then moved up.
  await page.locator("#workflow-add-step").click();
  await page.waitForLoadState();
  await page.locator("#step-1-action").selectOption("http.post");
  check(await page.locator("#step-1-url").isVisible(), "a POST step shows its URL field");
  check(await page.locator("#step-1-to").isHidden(), "and hides the address fields");
  await page.locator("#step-0-to").fill("not an address");
  await page.locator("#step-0-subject").fill("Hi");
  await page.locator("#step-0-body").fill("Hi");
  // The refused form comes back as a 422 page, which Chromium reports as a
  // failed resource load: expected here.
  await expectingStatuses([422], async () => {
    await page.locator("#workflow-save").click();
    await page.waitForLoadState();
  });
  check((await page.locator(".field-error").count()) > 0, "the form shows the field's error");
});

await step("api-key-once", async () => {
  await page.goto(`${demo.base}/settings`);
  await page.locator("#api-key-name").fill("browser test");
  await page.locator("#api-key-create").click();
  await page.waitForURL(/\/settings\?created=1/);
  const key = (await page.locator("#new-api-key").innerText()).trim();
  check(key.length > 20, "the new key is shown once");
  check(await page.locator("#copy-api-key").isVisible(), "with a copy button");
  await shoot("settings");
  const keys = await page.locator("#api-keys li").count();
  check(keys === 1, `one key listed (${keys})`);
  await page.reload();
  check((await page.locator("#new-api-key").count()) === 0, "a reload does not show the key again");
  check((await page.locator("#api-keys li").count()) === keys, "a reload made no second key");
});

let webhookUrl = null;

await step("webhook-endpoint", async () => {
  await page.goto(`${demo.base}/settings`);
  await page.locator("#webhook-url").fill("ftp://hooks.example.com/in");
  await expectingStatuses([422], async () => {
    await page.locator("#webhook-create").click();
    await page.waitForLoadState();
  });
  const said = await page.locator(".field-error[data-field=url]").innerText();
  check(said.includes("http:// or https://"), `the URL's problem in words: ${said}`);
  await page.locator("#webhook-url").fill("https://hooks.example.com/mailwright");
  await page.locator("#webhook-create").click();
  await page.waitForURL(/\/settings\/webhooks\/[0-9a-f-]{36}$/);
  webhookUrl = page.url();
  check((await page.locator("#webhook-secret").innerText()).startsWith("whsec_"), "the secret is shown once");
  check(await page.locator("#copy-webhook-secret").isVisible(), "with a copy button");
  await shoot("webhook");
  await page.reload();
  check((await page.locator("#webhook-secret").count()) === 0, "a reload does not show the secret again");
});

await step("home-dashboard", async () => {
  await page.goto(`${demo.base}/`);
  check((await page.locator("#mailboxes").innerText()).includes(MAILBOX), "the mailbox is listed");
  check((await page.locator("#totals").innerText()).includes("drafted today"), "today's numbers");
  check((await page.locator("#latest-drafts").innerText()).includes("Meeting next week"), "the latest draft");
  check((await page.locator("#latest-runs").innerText()).includes("succeeded"), "the latest run");
  check((await page.locator("#all-well").count()) === 1, "everything is all right");
  await shoot("home");
});

await step("imap-local-mailbox", async () => {
  await page.goto(`${demo.base}/integrations`);
  const missing = page.locator("#demo-imap-missing");
  check((await missing.count()) === 0, `the demo runs a local IMAP mailbox: ${(await missing.count()) ? await missing.innerText() : ""}`);
  await page.locator("#demo-imap-connect").click();
  await page.waitForURL(/connected=imap/);
  check((await bodyText()).includes("The mailbox connected."), "connected in one click");
  const card = page.locator(".integration", { hasText: "IMAP mailbox" });
  const imapAutodraft = `${demo.base}${await card.locator("a[href^='/autodraft/']").getAttribute("href")}`;
  await page.goto(imapAutodraft);
  await page.locator("#autodraft-toggle").click();
  await page.waitForURL(/notice=on/);
  check((await page.locator("#autodraft-watch").innerText()).includes("IMAP IDLE"), "new mail comes by IDLE");
  await page.goto(`${demo.base}/sandbox/inbox`);
  await page.locator("#to").selectOption("imap");
  await page.locator("#from").fill("Sam Sender <sam@example.com>");
  await page.locator("#subject").fill("Invoice question");
  await page.locator("#text").fill("Hi, could you send me last month's invoice again?\nSam");
  await page.locator("#deliver").click();
  await page.waitForURL(/delivered=imap/);
  await eventually(imapAutodraft, async () => (await page.locator("#recent-drafts li").count()) > 0, "the IMAP mailbox's draft");
  const line = await page.locator("#recent-drafts li").first().innerText();
  check(line.includes("Invoice question") && line.includes("Drafts"), `the draft, in the mailbox's Drafts: ${line}`);
  await shoot("autodraft-imap");
});

await step("outlook-in-the-demo", async () => {
  await page.goto(`${demo.base}/integrations`);
  await page.locator("#connect-outlook").click();
  // The emulated Microsoft screen: the demo's Outlook mailbox, every
  // permission ticked; Accept.
  await page.waitForURL(/\/microsoft\/common\/oauth2\/v2\.0\/authorize/);
  check((await bodyText()).includes("Microsoft emulator"), "the sandbox says what it is");
  await page.locator("#ms-accept").click();
  await page.waitForURL(/connected=outlook/);
  const card = page.locator(".integration", { hasText: "Outlook" });
  check((await card.count()) === 1, "listed beside the others");
  const outlookAutodraft = `${demo.base}${await card.locator("a[href^='/autodraft/']").getAttribute("href")}`;
  await page.goto(outlookAutodraft);
  await page.locator("#autodraft-toggle").click();
  await page.waitForURL(/notice=on/);
  check((await page.locator("#autodraft-watch").innerText()).includes("as Outlook announces it (Microsoft Graph change notifications"), "Graph announces the demo Outlook mailbox's mail");
  await page.goto(`${demo.base}/sandbox/inbox`);
  await page.locator("#to").selectOption("outlook");
  await page.locator("#from").fill("Riley Sender <riley@example.com>");
  await page.locator("#subject").fill("Delivery date");
  await page.locator("#text").fill("Hello, when will my order arrive?\nRiley");
  await page.locator("#deliver").click();
  await page.waitForURL(/delivered=outlook/);
  await eventually(outlookAutodraft, async () => (await page.locator("#recent-drafts li").count()) > 0, "the Outlook mailbox's draft");
  const line = await page.locator("#recent-drafts li").first().innerText();
  check(line.includes("Delivery date") && line.includes("Drafts"), `the draft, in the mailbox's Drafts: ${line}`);
  await shoot("autodraft-outlook");
});

await step("error-pages-are-pages", async () => {
  const id = new URL(autodraftUrl).pathname.split("/").pop();
  const workflowPath = new URL(workflowUrl).pathname;
  await expectingStatuses([404, 405], async () => {
    for (const [path, status] of [
      ["/no/such/page", 404],
      [`/autodraft/${"0".repeat(8)}-0000-0000-0000-000000000000`, 404],
      ["/settings/api-keys", 405],
      [`/autodraft/${id}/test`, 405],
      [`${workflowPath}/run`, 405],
    ]) {
      const response = await page.goto(`${demo.base}${path}`);
      check(response.status() === status, `${path} answers ${status} (${response.status()})`);
      check((response.headers()["content-type"] || "").startsWith("text/html"), `${path} is a page`);
      check(await page.getByRole("link", { name: /Home|back/i }).first().isVisible(), `${path} has a way back`);
    }
  });
  await shoot("error-page");
});

await step("sign-out-and-back-in", async () => {
  await page.goto(`${demo.base}/`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/signin/);
  await page.goto(demo.link);
  await page.waitForURL(`${demo.base}/`);
  check((await page.locator("#mailboxes").count()) === 1, "signed in again with the link, nothing lost");
  const other = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const elsewhere = await other.newPage();
  await elsewhere.goto(demo.link);
  await elsewhere.waitForURL(`${demo.base}/`);
  check((await elsewhere.locator("#mailboxes").count()) === 1, "another browser signs in with the same link");
  await other.close();
});

await step("phone-width", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/", "/integrations", new URL(autodraftUrl).pathname, "/sandbox/inbox", "/workflows", new URL(workflowUrl).pathname, "/settings", new URL(webhookUrl).pathname, "/no/such/page"]) {
    await expectingStatuses([404], () => page.goto(`${demo.base}${path}`));
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 390, `${path} fits a phone screen (${width}px wide)`);
  }
  // The sandbox's consent screen too (left without answering).
  await page.goto(`${demo.base}/integrations`);
  await page.getByRole("button", { name: "Connect Gmail" }).click();
  await page.waitForURL(/\/sandbox\/google\/o\/oauth2\/v2\/auth/);
  const consentWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  check(consentWidth <= 390, `the consent screen fits a phone screen (${consentWidth}px wide)`);
  await page.goto(autodraftUrl);
  await shoot("phone-autodraft");
  await page.goto(`${demo.base}/`);
  await shoot("phone-home");
});

await step("no-json-pages", async () => {
  check(jsonPages.length === 0, `pages answered as JSON:\n${jsonPages.join("\n")}`);
});

await step("no-console-errors", async () => {
  check(consoleErrors.length === 0, `console errors:\n${consoleErrors.join("\n")}`);
});

await browser.close();
// SIGTERM: the demo finishes what is in flight and exits, promptly.
const stopping = Date.now();
const exited = new Promise((done) => demo.child.once("exit", done));
demo.child.kill("SIGTERM");
const stopped = await Promise.race([exited.then(() => true), new Promise((done) => setTimeout(() => done(false), 10_000))]);
const exitMs = Date.now() - stopping;
if (!stopped) {
  failed = true;
  console.log("FAIL exit: the demo did not exit within 10 s of SIGTERM");
  demo.child.kill("SIGKILL");
} else {
  console.log(`ok   exit (${exitMs} ms after SIGTERM)`);
}
rmSync(demo.dataDir, { recursive: true, force: true });
if (failed) {
  console.log("browser tests FAILED");
  process.exit(1);
}
console.log("browser tests passed");
