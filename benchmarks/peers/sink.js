// A stand-in mail API for the peer queues: answers every POST with 200 and a
// small JSON body like a mail API's send answer ({"id","threadId"}), and
// counts what it received (GET /stats). Binds 127.0.0.1 on PORT (0: any free
// port) and writes the port it got to the file named by PORT_FILE.
"use strict";
const http = require("node:http");
const fs = require("node:fs");

let received = 0;
let bytes = 0;

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/stats") {
    const body = JSON.stringify({ received, bytes });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  if (req.method !== "POST") {
    res.writeHead(405);
    res.end();
    return;
  }
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
  });
  req.on("end", () => {
    received += 1;
    bytes += size;
    const id = `${received.toString(16)}`;
    const body = JSON.stringify({ id, threadId: id, labelIds: ["SENT"] });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  const { port } = server.address();
  if (process.env.PORT_FILE) fs.writeFileSync(process.env.PORT_FILE, `${port}\n`);
  else console.log(port);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
