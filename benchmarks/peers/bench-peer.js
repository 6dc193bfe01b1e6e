// One measurement of a peer queue, in one node process that is both the
// producer and the worker (concurrency WORKERS), like Mailwright's
// bench_workflows is one process. Prints one key=value line in the same
// shape as bench_workflows, plus cpu_ms (all busy CPU of the machine between
// the first enqueue and the last completion) and idle RSS.
//
//   node bench-peer.js --system graphile-worker --jobs 2000 --concurrency 32 \
//     --workers 8 [--rate 500] --sink http://127.0.0.1:PORT \
//     --pg-url postgres://postgres@127.0.0.1:5432/peers_bench --pg-tls 1
//   node bench-peer.js --system bullmq --redis-port PORT ... (same)
"use strict";
const common = require("./common");

const args = common.parseArgs(process.argv.slice(2));
const system = args.system;
const jobs = Number(args.jobs || 2000);
const concurrency = Number(args.concurrency || 32);
const workers = Number(args.workers || 8);
const rate = args.rate ? Number(args.rate) : undefined;
const sink = args.sink;
const label = args.label || system;
if (!sink) throw new Error("--sink is required");

async function graphileWorker() {
  const { run, Logger } = require("graphile-worker");
  const pg = require("pg");
  const tls = args["pg-tls"] === "1";
  // ssl is given explicitly: with pg-connection-string v2, sslmode=require in
  // the URL would mean certificate verification against a self-signed cert.
  const pgPool = new pg.Pool({
    connectionString: args["pg-url"],
    ssl: tls ? { rejectUnauthorized: false } : false,
    // Mailwright's PostgreSQL pool is 16 connections (graphile-worker's default is 10).
    max: Number(args["pg-pool"] || 16),
  });
  pgPool.on("error", (error) => console.error(`pg pool: ${error.message}`));
  pgPool.on("connect", (client) => client.on("error", (error) => console.error(`pg client: ${error.message}`)));
  const check = await pgPool.query("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
  const tlsSeen = check.rows[0].ssl;
  if (tlsSeen !== tls) throw new Error(`asked for tls=${tls} but the connection has ssl=${tlsSeen}`);

  let completed = 0;
  let failed = 0;
  const latencies = [];
  let allDone;
  const tasksDone = new Promise((resolve) => {
    allDone = resolve;
  });
  const logger = new Logger(() => (level, message) => {
    if (level === "error" || level === "warning") console.error(`graphile-worker ${level}: ${message}`);
  });
  const runner = await run({
    pgPool,
    concurrency: workers,
    noHandleSignals: true,
    logger,
    taskList: {
      // The whole job: one POST to the mail API. graphile-worker deletes the
      // job row when the task returns: that delete is its completion record.
      send: async (payload) => {
        const answer = await common.sendMail(sink, payload.n);
        latencies.push(common.nowMs() - payload.t);
        completed += 1;
        if (completed === jobs) allDone();
        return answer;
      },
    },
  });
  runner.events.on("job:error", () => {
    failed += 1;
  });
  const remaining = async () =>
    Number((await pgPool.query("select count(*) as n from graphile_worker._private_jobs")).rows[0].n);
  return {
    backend: "postgres",
    tls: tlsSeen,
    enqueue: (n, t) => runner.addJob("send", { n, t }),
    // Every task has answered, then the queue has recorded all completions
    // (the job table is empty: completions are written after the task returns).
    drain: async () => {
      await Promise.race([tasksDone, common.waitFor(() => completed >= jobs, { what: "tasks", everyMs: 200 })]);
      await common.waitFor(async () => (await remaining()) === 0, { what: "job table to empty" });
    },
    latencies,
    failed: () => failed,
    extra: async () => ({}),
    stop: async () => {
      await runner.stop();
      await pgPool.end();
    },
  };
}

async function bullmq() {
  const { Queue, Worker } = require("bullmq");
  const IORedis = require("ioredis");
  const connection = { host: "127.0.0.1", port: Number(args["redis-port"]), maxRetriesPerRequest: null };
  const name = `send-${process.pid}`;
  const queue = new Queue(name, { connection });
  let completed = 0;
  let failed = 0;
  const latencies = [];
  let allDone;
  const done = new Promise((resolve) => {
    allDone = resolve;
  });
  const worker = new Worker(
    name,
    async (job) => {
      const answer = await common.sendMail(sink, job.data.n);
      latencies.push(common.nowMs() - job.data.t);
      // Kept by BullMQ as the job's returnvalue in the completed set.
      return answer;
    },
    { connection, concurrency: workers },
  );
  // 'completed' is emitted after the job was moved to the completed set in Redis.
  worker.on("completed", () => {
    completed += 1;
    if (completed === jobs) allDone();
  });
  worker.on("failed", () => {
    failed += 1;
  });
  await queue.waitUntilReady();
  await worker.waitUntilReady();
  const admin = new IORedis(connection);
  const info = async (section, key) => {
    const text = await admin.info(section);
    const match = text.match(new RegExp(`^${key}:(\\S+)`, "m"));
    return match ? match[1] : undefined;
  };
  const redisRssKb = Math.round(Number(await info("memory", "used_memory_rss")) / 1024);
  const aof = (await info("persistence", "aof_enabled")) === "1";
  return {
    backend: aof ? "redis-aof-everysec" : "redis-no-aof",
    enqueue: (n, t) => queue.add("send", { n, t }, { attempts: 5, backoff: { type: "exponential", delay: 1000 } }),
    drain: async () => {
      await Promise.race([done, common.waitFor(() => completed >= jobs, { what: "completions", everyMs: 200 })]);
    },
    latencies,
    failed: () => failed,
    extra: async () => {
      const counts = await queue.getJobCounts("completed", "failed", "waiting", "active", "delayed");
      if (counts.completed !== jobs) throw new Error(`completed set holds ${counts.completed}, expected ${jobs}`);
      const [last] = await queue.getJobs(["completed"], 0, 0);
      if (!last || !last.returnvalue || !last.returnvalue.id) throw new Error("no returnvalue kept for a completed job");
      return { redis_rss_kb: redisRssKb, completed_set: counts.completed };
    },
    stop: async () => {
      await worker.close();
      await queue.close();
      admin.disconnect();
    },
  };
}

async function main() {
  const peer = system === "graphile-worker" ? await graphileWorker() : system === "bullmq" ? await bullmq() : null;
  if (!peer) throw new Error(`unknown --system ${system}`);
  const idleRssKb = Math.round(process.memoryUsage().rss / 1024);
  const sentBefore = (await common.getJson(`${sink}/stats`)).received;

  const cpu0 = common.cpuTicks();
  const started = performance.now();
  const answerMs = await common.produce({ jobs, concurrency, rate, enqueue: peer.enqueue });
  const accepted = (performance.now() - started) / 1000;
  await peer.drain();
  const drained = (performance.now() - started) / 1000;
  const cpuMs = common.ticksToMs(common.cpuTicks() - cpu0);

  const sent = (await common.getJson(`${sink}/stats`)).received - sentBefore;
  const extra = await peer.extra();
  const latencies = peer.latencies.slice().sort((a, b) => a - b);
  answerMs.sort((a, b) => a - b);
  const fields = {
    system: label,
    backend: JSON.stringify(peer.backend),
    ...(peer.tls === undefined ? {} : { tls: peer.tls }),
    runs: jobs,
    concurrency,
    workers,
    rate: rate ? `${rate}/s` : "unpaced",
    accepted_per_s: (jobs / accepted).toFixed(0),
    completed_per_s: (jobs / drained).toFixed(0),
    p50_ms: common.percentile(latencies, 0.5).toFixed(1),
    p99_ms: common.percentile(latencies, 0.99).toFixed(1),
    failed: peer.failed(),
    messages_sent: sent,
    answer_p50_ms: common.percentile(answerMs, 0.5).toFixed(1),
    answer_p99_ms: common.percentile(answerMs, 0.99).toFixed(1),
    cpu_ms: cpuMs.toFixed(0),
    window_s: drained.toFixed(3),
    idle_rss_kb: idleRssKb,
    ...extra,
  };
  console.log(
    Object.entries(fields)
      .map(([key, value]) => `${key}=${value}`)
      .join(" "),
  );
  await peer.stop();
}

const { performance } = require("node:perf_hooks");
main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
