// Watches the machine during one measurement for CPU used by processes that
// are not part of this benchmark (a compile, someone else's benchmark): every
// process's utime+stime from /proc, sampled every 500 ms and once more at
// SIGTERM. Processes under ROOT_PID (run.sh), kernel threads and PostgreSQL
// (shared, not attributable) are left out. Writes one key=value line to
// OUT_FILE: foreign_cpu_ms=N foreign=comm:ms,...
//   node watch.js ROOT_PID OUT_FILE
"use strict";
const fs = require("node:fs");

const [rootPid, outFile] = process.argv.slice(2);
const clockTick = Number(process.env.CLK_TCK || 100);
const ours = new Set([String(process.pid), rootPid]);
// key pid:starttime -> { comm, first, last, ours }
const seen = new Map();
let firstScan = true;

function scan() {
  const procs = [];
  for (const pid of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let text;
    try {
      text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue;
    }
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const rest = text.slice(close + 2).split(" ");
    // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, starttime 22.
    procs.push({
      pid,
      comm,
      ppid: rest[1],
      ticks: Number(rest[11]) + Number(rest[12]),
      start: rest[19],
    });
  }
  // Descendants of ROOT_PID (parents are usually listed first; loop to be sure).
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!ours.has(p.pid) && ours.has(p.ppid)) {
        ours.add(p.pid);
        grew = true;
      }
    }
  }
  for (const p of procs) {
    const key = `${p.pid}:${p.start}`;
    const entry = seen.get(key);
    if (entry) {
      entry.last = p.ticks;
      entry.ours ||= ours.has(p.pid);
    } else {
      // A process first seen after the start began during the measurement.
      seen.set(key, { comm: p.comm, first: firstScan ? p.ticks : 0, last: p.ticks, ours: ours.has(p.pid), kernel: p.ppid === "2" || p.pid === "2" });
    }
  }
  firstScan = false;
}

function finish() {
  scan();
  const byComm = new Map();
  let total = 0;
  for (const entry of seen.values()) {
    if (entry.ours || entry.kernel || entry.comm === "postgres") continue;
    const ms = ((entry.last - entry.first) * 1000) / clockTick;
    if (ms <= 0) continue;
    total += ms;
    byComm.set(entry.comm, (byComm.get(entry.comm) || 0) + ms);
  }
  const top = [...byComm.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([comm, ms]) => `${comm.replace(/[\s,=:]/g, "_")}:${Math.round(ms)}`)
    .join(",");
  fs.writeFileSync(outFile, `foreign_cpu_ms=${Math.round(total)} foreign=${top || "none"}\n`);
  process.exit(0);
}

scan();
fs.writeFileSync(`${outFile}.ready`, "");
const timer = setInterval(scan, 500);
process.on("SIGTERM", () => {
  clearInterval(timer);
  finish();
});
