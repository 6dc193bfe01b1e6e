// Turns run.sh's results file (one key=value line per measurement) into the
// Markdown tables: every round's value per system, then each system's mean
// against Mailwright SQLite and Mailwright PostgreSQL over TLS.
//   node report.js results.txt
"use strict";
const fs = require("node:fs");

const NAMES = {
  "mailwright-sqlite": "Mailwright, SQLite",
  "mailwright-pg-tls": "Mailwright, PostgreSQL 15 (TCP + TLS)",
  "mailwright-pg": "Mailwright, PostgreSQL 15 (TCP, no TLS)",
  "graphile-worker-tls": "graphile-worker 0.18, PostgreSQL 15 (TCP + TLS)",
  "graphile-worker": "graphile-worker 0.18, PostgreSQL 15 (TCP, no TLS)",
  bullmq: "BullMQ 6.7, Redis 7.0 as shipped (no AOF)",
  "bullmq-aof": "BullMQ 6.7, Redis 7.0 (AOF, fsync every second)",
};
const BASELINES = ["mailwright-sqlite", "mailwright-pg-tls"];

function parseLine(line) {
  const fields = {};
  for (const match of line.matchAll(/(\w+)=("[^"]*"|\S+)/g)) {
    fields[match[1]] = match[2].replace(/^"|"$/g, "");
  }
  return fields;
}

const lines = fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean);
const setup = lines.filter((line) => line.startsWith("setup ")).map(parseLine);
const binary = lines.filter((line) => line.startsWith("binary ")).map(parseLine)[0];
const rows = lines.filter((line) => line.startsWith("round=")).map(parseLine);
if (rows.length === 0) {
  console.log("(no measurements)");
  process.exit(0);
}

const systems = [...new Set(rows.map((row) => row.system))];
const scenarios = [...new Set(rows.map((row) => row.scenario))];
const unpaced = scenarios.filter((s) => !s.includes("@"));
const paced = scenarios.filter((s) => s.includes("@"));
const cpuScenario = unpaced.length
  ? unpaced.reduce((a, b) => (Number(b) > Number(a) ? b : a))
  : scenarios[0];

const int = (value) => Math.round(value).toLocaleString("en-US");
const fixed = (value, digits) =>
  Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;
const scenarioName = (s) => {
  const [jobs, rate] = s.split("@");
  return rate ? `p50/p99 at ${int(Number(rate))}/s, ${int(Number(jobs))} jobs (ms)` : `${int(Number(jobs))} unpaced (/s)`;
};

const of = (system, scenario) =>
  rows
    .filter((row) => row.system === system && row.scenario === scenario)
    .sort((a, b) => Number(a.round) - Number(b.round));
// A measurement that failed, lost a job or did not send every mail is marked.
const flag = (row) => {
  if (row.error !== undefined) return "failed";
  const bad = Number(row.failed) !== 0 || Number(row.messages_sent) !== Number(row.runs);
  const compiler = row.other_load === "1" ? ` (!other load: ${row.foreign || "compiler"}, steal ${row.steal_ms || 0} ms)` : "";
  return (bad ? ` (!failed=${row.failed}, sent=${row.messages_sent})` : "") + compiler;
};
const ok = (row) => row.error === undefined;
const cpuPerJob = (row) => Number(row.cpu_ms) / Number(row.runs);

function cells(system) {
  const out = [];
  for (const s of unpaced) {
    const list = of(system, s);
    out.push(list.length ? list.map((row) => (ok(row) ? int(Number(row.completed_per_s)) + flag(row) : "failed")).join(", ") : "–");
  }
  for (const s of paced) {
    const list = of(system, s);
    out.push(
      list.length
        ? list
            .map((row) => (ok(row) ? `${int(Number(row.p50_ms))} / ${int(Number(row.p99_ms))}${flag(row)}` : "failed"))
            .join(", ")
        : "–",
    );
  }
  const cpuRows = of(system, cpuScenario).filter(ok);
  out.push(cpuRows.length ? cpuRows.map((row) => fixed(cpuPerJob(row), 2)).join(", ") : "–");
  const idle = rows.filter((row) => row.system === system && ok(row) && row.idle_rss_kb);
  if (system.startsWith("mailwright")) out.push("n/a (one process)");
  else if (idle.length === 0) out.push("–");
  else {
    const node = mean(idle.map((row) => Number(row.idle_rss_kb))) / 1024;
    const redis = idle.filter((row) => row.redis_rss_kb);
    out.push(
      redis.length
        ? `node ${fixed(node, 0)} MB + redis-server ${fixed(mean(redis.map((row) => Number(row.redis_rss_kb))) / 1024, 1)} MB`
        : `node ${fixed(node, 0)} MB (+ PostgreSQL backends)`,
    );
  }
  return out;
}

const header = [
  "system",
  ...unpaced.map(scenarioName),
  ...paced.map(scenarioName),
  `cpu ms/job (${scenarioName(cpuScenario).replace(/ \(.*\)$/, "")})`,
  "idle RSS",
];
const table = (head, body) =>
  [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...body.map((r) => `| ${r.join(" | ")} |`)].join(
    "\n",
  );

const roundsSeen = Math.max(...rows.map((row) => Number(row.round)));
const load = rows.map((row) => Number(row.load1)).filter((v) => !Number.isNaN(v));
console.log(
  `## Mailwright against peer job queues (${roundsSeen} round${roundsSeen > 1 ? "s" : ""}, each cell lists every round's value in round order)\n`,
);
console.log(table(header, systems.map((system) => [NAMES[system] || system, ...cells(system)])));
console.log(
  `\nThroughput: jobs completed per second from the first enqueue to the last recorded completion, ${rows[0].concurrency || 32} concurrent producers, ${rows[0].workers || 8} workers. ` +
    `Latency: enqueue call (Mailwright: run created) to the job's end at that offered rate. ` +
    `cpu ms/job: busy CPU of the whole machine (/proc/stat) over the measurement / jobs; for Mailwright the measurement is its whole process (setup included, see below). ` +
    `1-minute load average before the measurements: ${load.length ? `${fixed(Math.min(...load), 2)}–${fixed(Math.max(...load), 2)}` : "n/a"}. ` +
    `CPU time taken by the hypervisor for other machines (steal) during a measurement: at most ${int(Math.max(0, ...rows.map((row) => Number(row.steal_ms) || 0)))} ms.`,
);

// Ratios of the means.
const metrics = [
  ...unpaced.map((s) => ({ name: `${int(Number(s))} unpaced /s`, scenario: s, value: (row) => Number(row.completed_per_s) })),
  ...paced.map((s) => ({ name: `p99 at ${int(Number(s.split("@")[1]))}/s`, scenario: s, value: (row) => Number(row.p99_ms) })),
  { name: `cpu ms/job (${int(Number(cpuScenario.split("@")[0]))}${cpuScenario.includes("@") ? " paced" : ""})`, scenario: cpuScenario, value: cpuPerJob },
];
const meanOf = (system, metric) => {
  const list = of(system, metric.scenario).filter(ok);
  return list.length ? mean(list.map(metric.value)) : NaN;
};
const baselines = BASELINES.filter((b) => systems.includes(b));
if (baselines.length) {
  console.log("\n### Means and ratios\n");
  console.log(
    `Each cell: the system's mean over the rounds, then (in brackets) that mean divided by the mean of ${baselines
      .map((b) => NAMES[b])
      .join(" and of ")}. ` +
      "Above 1 means more jobs per second, or a higher p99 / more CPU per job, than that Mailwright backend.\n",
  );
  const ratioHead = ["system", ...metrics.map((m) => `${m.name}: mean (× ${baselines.map((b) => (b === "mailwright-sqlite" ? "MW SQLite" : "MW PG TLS")).join(", × ")})`)];
  const ratioRows = systems.map((system) => [
    NAMES[system] || system,
    ...metrics.map((metric) => {
      const value = meanOf(system, metric);
      if (Number.isNaN(value)) return "–";
      const shown = metric.name.startsWith("cpu") ? fixed(value, 2) : int(value);
      const ratios = baselines.map((b) => {
        const base = meanOf(b, metric);
        return Number.isNaN(base) ? "–" : `×${fixed(value / base, 2)}`;
      });
      return `${shown} (${ratios.join(", ")})`;
    }),
  ]);
  console.log(table(ratioHead, ratioRows));
}

// Details: every measurement's CPU per job in each scenario, and Mailwright's setup cost.
console.log("\n### CPU ms/job in every scenario, and the rate the paced enqueues were answered at (each round)\n");
console.log(
  table(
    [
      "system",
      ...scenarios.map((s) => (s.includes("@") ? `cpu, ${int(Number(s.split("@")[0]))} at ${s.split("@")[1]}/s` : `cpu, ${int(Number(s))} unpaced`)),
      ...paced.map((s) => `enqueues answered /s, ${int(Number(s.split("@")[0]))} at ${s.split("@")[1]}/s`),
    ],
    systems.map((system) => [
      NAMES[system] || system,
      ...scenarios.map((s) => {
        const list = of(system, s).filter(ok);
        return list.length ? list.map((row) => fixed(cpuPerJob(row), 2)).join(", ") : "–";
      }),
      ...paced.map((s) => {
        const list = of(system, s).filter(ok);
        return list.length ? list.map((row) => int(Number(row.accepted_per_s))).join(", ") : "–";
      }),
    ]),
  ),
);
if (binary) {
  console.log(`\nMailwright binary: bench_workflows sha256 ${binary.mailwright_sha256}…, built ${binary.built}.`);
}
if (setup.length) {
  console.log(
    `\nMailwright's CPU figure includes its process setup (database created and migrated, workspace, API key, OAuth connect, workflow) and teardown; a process with a single run used: ${setup
      .map((s) => `${NAMES[s.system] || s.system} ${int(Number(s.one_run_cpu_ms))} ms`)
      .join("; ")} of CPU.`,
  );
}
const discarded = lines.filter((line) => line.startsWith("discarded ")).map((line) => parseLine(line.slice(10)));
if (discarded.length) {
  console.log(
    `\n${discarded.length} measurement(s) were taken again because other processes used the CPU meanwhile: ${discarded
      .map((row) => `round ${row.round} ${row.system} ${row.scenario} (${row.foreign}, steal ${row.steal_ms || 0} ms)`)
      .join("; ")}.`,
  );
}
const problems = rows.filter((row) => !ok(row) || flag(row));
if (problems.length) {
  console.log("\nProblems:");
  for (const row of problems) console.log(`- round ${row.round}, ${row.system}, ${row.scenario}: ${(flag(row) || "failed").trim()}`);
}
