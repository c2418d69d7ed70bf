// The Node receiver the load benchmark compares hookbridge with: @octokit/webhooks'
// createNodeMiddleware on node:http, as its README shows it. It verifies
// X-Hub-Signature-256, parses the JSON and emits the event to a handler; it stores nothing.
//
//   PORT=8081 SECRET=bench-secret node server.mjs
import { createServer } from "node:http";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";

const port = Number(process.env.PORT ?? 8081);
const secret = process.env.SECRET ?? "bench-secret";

const webhooks = new Webhooks({ secret });
let received = 0;
webhooks.on("issues", () => {
  received += 1;
});

const middleware = createNodeMiddleware(webhooks, { path: "/hooks/github" });

createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    return;
  }
  middleware(req, res, () => {
    res.writeHead(404).end();
  });
}).listen(port, "127.0.0.1", () => {
  console.log(`node receiver listening on http://127.0.0.1:${port}`);
});

process.on("SIGTERM", () => {
  console.log(`received ${received} issues deliveries`);
  process.exit(0);
});
