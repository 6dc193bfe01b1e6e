// Mailwright's UI in headless Chromium, against `mailwright demo`.
//
//   node tests/browser/run.mjs path/to/mailwright                 # the browser tests
//   node tests/browser/run.mjs path/to/mailwright --screenshots docs/screenshots
//
// One scenario, step by step, as a newcomer would go: sign in, connect Gmail
// with the compose permission unticked, see why auto-draft cannot be switched
// on, reconnect, switch it on, drop an email in the sandbox inbox and see the
// draft appear, create and run a send-email workflow, create an API key.
// A failing step saves a screenshot under target/browser/; any console error
// in the browser fails the run.

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

/** The sandbox's consent screen: untick `untick`, then Allow. */
async function consent(untick = []) {
  await page.waitForURL(/\/sandbox\/google\/o\/oauth2\/v2\/auth/);
  check((await bodyText()).includes("Sandbox"), "the consent screen says it is the sandbox");
  await shoot(untick.length ? "consent-unticked" : "consent");
  for (const scope of untick) {
    await page.locator(`input[name=granted_scope][value$="${scope}"]`).uncheck();
  }
  await page.locator("button[value=allow]").click();
  await page.waitForURL(/\/integrations\?/);
}

await step("sign-in", async () => {
  await page.goto(demo.link);
  await page.waitForURL(`${demo.base}/`);
  check((await bodyText()).includes("Signed in"), "the home page greets the demo user");
  await shoot("home");
});

await step("connect-without-compose", async () => {
  await page.goto(`${demo.base}/integrations`);
  await page.getByRole("button", { name: "Connect Gmail" }).click();
  await consent(["gmail.compose"]);
  const text = await bodyText();
  check(text.includes("Gmail connected."), "the connection is confirmed");
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

await step("reconnect-and-enable", async () => {
  await page.locator("#autodraft-blocked a").click();
  await consent();
  await page.goto(autodraftUrl);
  await page.locator("#autodraft-toggle").click();
  await page.waitForURL(/notice=on/);
  check((await page.locator("#autodraft-state").innerText()) === "on", "auto-draft is on");
});

await step("draft-appears", async () => {
  await page.goto(`${demo.base}/sandbox/inbox`);
  await page.locator("#from").fill("Alex Sender <alex@example.com>");
  await page.locator("#subject").fill("Meeting next week");
  await page.locator("#text").fill("Hi, could we meet on Tuesday at 10 to go through the plan?\nAlex");
  await page.locator("#deliver").click();
  await page.waitForURL(/delivered=1/);
  await eventually(`${demo.base}/sandbox/inbox`, async () => (await page.locator(".reply-draft").count()) > 0, "the reply draft in the sandbox inbox");
  await shoot("sandbox-inbox");
  await page.goto(autodraftUrl);
  const recent = await page.locator("#recent-drafts li").count();
  check(recent === 1, `the recent drafts list shows the draft (${recent})`);
  check((await page.locator("#last-success").innerText()) === "just now", "the last success is just now");
  await shoot("autodraft");
});

await step("test-button", async () => {
  await page.goto(autodraftUrl);
  await page.locator("#autodraft-test").click();
  await page.locator("#test-result").waitFor();
});

await step("workflow-runs", async () => {
  await page.goto(`${demo.base}/workflows`);
  await page.locator("#workflow-name").fill("Welcome email");
  await page.locator("select[name=action]").selectOption("gmail.send_email");
  await page.locator("input[name=to]").fill(MAILBOX);
  await page.locator("input[name=subject]").fill("Welcome, {{ input.name }}");
  await page.locator("textarea[name=body]").fill("Hello {{ input.name }}, welcome aboard.");
  await page.locator("#workflow-save").click();
  await page.waitForURL(/\/workflows\/[0-9a-f-]{36}/);
  await shoot("workflow");
  await page.locator("#run-input").fill('{"name": "Ada"}');
  await page.locator("#run-button").click();
  await page.waitForURL(/\/runs\/[0-9a-f-]{36}/);
  const runUrl = page.url();
  await eventually(runUrl, async () => (await page.locator("#run-status").innerText()).trim() === "succeeded", "the run to succeed");
  await shoot("run");
});

await step("workflow-form-errors", async () => {
  const before = consoleErrors.length;
  await page.goto(`${demo.base}/workflows`);
  await page.locator("#workflow-name").fill("Broken");
  await page.locator("select[name=action]").selectOption("gmail.send_email");
  await page.locator("input[name=to]").fill("not an address");
  await page.locator("input[name=subject]").fill("Hi");
  await page.locator("textarea[name=body]").fill("Hi");
  await page.locator("#workflow-save").click();
  check((await page.locator(".field-error").count()) > 0, "the form shows the field's error");
  // The refused form comes back as a 422 page, which Chromium reports as a
  // failed resource load: expected here, and only here.
  const rejected = consoleErrors.splice(before).filter((line) => !line.includes("status of 422"));
  consoleErrors.push(...rejected);
});

await step("api-key", async () => {
  await page.goto(`${demo.base}/settings`);
  await page.locator("#api-key-name").fill("browser test");
  await page.locator("#api-key-create").click();
  const key = (await page.locator("#new-api-key").innerText()).trim();
  check(key.length > 20, "the new key is shown once");
  await shoot("settings");
});

await step("phone-width", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/integrations", new URL(autodraftUrl).pathname, "/sandbox/inbox", "/workflows", "/settings"]) {
    await page.goto(`${demo.base}${path}`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 390, `${path} fits a phone screen (${width}px wide)`);
  }
  await page.goto(autodraftUrl);
  await shoot("phone-autodraft");
});

await step("no-console-errors", async () => {
  check(consoleErrors.length === 0, `console errors:\n${consoleErrors.join("\n")}`);
});

await browser.close();
demo.child.kill("SIGTERM");
rmSync(demo.dataDir, { recursive: true, force: true });
if (failed) {
  console.log("browser tests FAILED");
  process.exit(1);
}
console.log("browser tests passed");
