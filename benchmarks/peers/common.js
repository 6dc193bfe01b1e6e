// Shared by the peer benchmarks: the mail POST each job makes, the producer
// loop (same shape as Mailwright's bench_workflows: at most CONCURRENCY
// unanswered enqueues, optionally offered at RATE per second), percentiles,
// and machine CPU from /proc/stat.
"use strict";
const http = require("node:http");
const fs = require("node:fs");
const { performance } = require("node:perf_hooks");
const { setTimeout: sleep } = require("node:timers/promises");

/** Milliseconds since the epoch with sub-millisecond precision. */
const nowMs = () => performance.timeOrigin + performance.now();

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const eq = arg.indexOf("=");
    if (eq > 0) out[arg.slice(2, eq)] = arg.slice(eq + 1);
    else out[arg.slice(2)] = argv[(i += 1)];
  }
  return out;
}

// One keep-alive connection pool to the sink per process (as reqwest keeps
// its connections in Mailwright).
const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

// About 1 KB of JSON, like a send request with a small base64url RFC 822 message.
const filler = "Your order has shipped and is on its way. ".repeat(14);
function mailRequest(n) {
  const raw = Buffer.from(
    `From: ann@example.com\r\nTo: bob@example.com\r\nSubject: Order ${n}\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\n\r\nShipped. ${filler}\r\n`,
  ).toString("base64url");
  return JSON.stringify({ to: ["bob@example.com"], subject: `Order ${n}`, threadId: null, raw });
}

/** POST the mail to the sink; resolves to the parsed answer ({id, threadId}). */
function sendMail(sinkUrl, n) {
  const body = mailRequest(n);
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${sinkUrl}/gmail/v1/users/me/messages/send`,
      {
        method: "POST",
        agent,
        headers: {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          authorization: "Bearer bench-token",
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => {
          if (res.statusCode !== 200) {
            reject(new Error(`mail API answered ${res.statusCode}`));
            return;
          }
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
          } catch (error) {
            reject(error);
          }
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function getJson(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("end", () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
          } catch (error) {
            reject(error);
          }
        });
      })
      .on("error", reject);
  });
}

/**
 * Offer `jobs` enqueues: `enqueue(n, sentAtMs)` is called for n = 0..jobs-1,
 * with at most `concurrency` unanswered, paced at `rate` per second when given.
 * Returns the answer times (ms) of the enqueue calls.
 */
async function produce({ jobs, concurrency, rate, enqueue }) {
  const inFlight = new Set();
  const answerMs = [];
  const period = rate ? 1000 / rate : 0;
  let deadline = performance.now();
  for (let n = 0; n < jobs; n += 1) {
    if (rate) {
      // Enqueue n is due at start + n / rate. A tick that comes late (the
      // event loop is shared with the worker, so timers are often late by
      // more than tokio's 5 ms tolerance) is made up at once: the offered
      // rate stays RATE, as from clients outside the process.
      const now = performance.now();
      if (now < deadline) await sleep(deadline - now);
      deadline += period;
    }
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    const sentAt = nowMs();
    const promise = enqueue(n, sentAt).then(() => {
      answerMs.push(nowMs() - sentAt);
      inFlight.delete(promise);
    });
    inFlight.add(promise);
  }
  await Promise.all(inFlight);
  return answerMs;
}

/** Same rule as bench_workflows: the value at index floor(len * p). */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(Math.floor(sorted.length * p), sorted.length - 1)];
}

/** Busy CPU ticks of the whole machine: user+nice+system+irq+softirq. */
function cpuTicks() {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  const [, user, nice, system, , , irq, softirq] = line.trim().split(/\s+/).map(Number);
  return user + nice + system + irq + softirq;
}
const clockTick = Number(process.env.CLK_TCK || 100);
const ticksToMs = (ticks) => (ticks * 1000) / clockTick;

/** Resolve when `check()` is true, polling every `everyMs`; reject after `timeoutMs`. */
async function waitFor(check, { everyMs = 20, timeoutMs = 600_000, what = "condition" } = {}) {
  const giveUp = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (performance.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

module.exports = {
  nowMs,
  parseArgs,
  sendMail,
  getJson,
  produce,
  percentile,
  cpuTicks,
  ticksToMs,
  waitFor,
  mailRequest,
};
