// The server-facing test cases of @jupyterhub/binderhub-client 0.5.0
// (its tests/index.test.js, ported from jest to node:test and run on the
// package's own fixture). They pin how the client turns a BinderHub event
// stream into items, under the same Node shims the Go end-to-end tests use.
//
// Run: node --experimental-detect-module --test client.test.mjs
import "./shim.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BinderRepository } from "@jupyterhub/binderhub-client/client.js";

// The package exports only ./*.js: find its folder through lib/client.js.
const pkgDir = dirname(dirname(fileURLToPath(import.meta.resolve("@jupyterhub/binderhub-client/client.js"))));
const fixture = readFileSync(join(pkgDir, "tests/fixtures/fullbuild.eventsource"), "utf-8");

// parseEventSource and simpleEventSourceServer are the package's
// tests/utils.js.
function parseEventSource(body) {
  const messages = [];
  for (const line of body.split("\n")) {
    const part = line.slice("data: ".length - 1);
    if (part.trim() !== "") {
      messages.push(JSON.parse(part));
    }
  }
  return messages;
}

function simpleEventSourceServer(responses) {
  return new Promise((resolve) => {
    const server = createServer(async (req, res) => {
      if (!responses[req.url]) {
        res.statusCode = 404;
        res.end();
        return;
      }
      res.statusCode = 200;
      res.setHeader("Content-Type", "text/event-stream");
      res.setHeader("Access-Control-Allow-Origin", "*");
      res.flushHeaders();
      for (const line of responses[req.url].split("\n")) {
        res.write(line + "\n\n");
        await new Promise((r) => setTimeout(r, 1));
      }
      res.end();
    });
    server.listen(0, "127.0.0.1", () => {
      const { address, port } = server.address();
      resolve([`http://${address}:${port}`, () => server.close()]);
    });
  });
}

test("Passed in URL object is not modified", () => {
  const url = new URL("https://test-binder.org/build");
  const br = new BinderRepository("gh/test/test", url, { buildToken: "token" });
  assert.notEqual(br.buildEndpointUrl.toString(), url.toString());
});

test("Invalid URL errors out", () => {
  assert.throws(() => new BinderRepository("gh/test/test", "/build", { buildToken: "token" }), TypeError);
});

test("Passing buildOnly flag works", () => {
  const br = new BinderRepository("gh/test/test", new URL("https://test-binder.org/build"), { buildOnly: true });
  assert.equal(br.buildUrl.toString(), "https://test-binder.org/build/gh/test/test?build_only=true");
});

test("Trailing slash added if needed", () => {
  const br = new BinderRepository("gh/test/test", new URL("https://test-binder.org/build"));
  assert.equal(br.buildEndpointUrl.toString(), "https://test-binder.org/build/");
});

test("Build URL correctly built from Build Endpoint", () => {
  const br = new BinderRepository("gh/test/test", new URL("https://test-binder.org/build"));
  assert.equal(br.buildUrl.toString(), "https://test-binder.org/build/gh/test/test");
});

test("Build URL correctly built from Build Endpoint when used with token", () => {
  const br = new BinderRepository("gh/test/test", new URL("https://test-binder.org/build"), { buildToken: "token" });
  assert.equal(br.buildUrl.toString(), "https://test-binder.org/build/gh/test/test?build_token=token");
});

test("Iterate over full output from fetch", async () => {
  const [serverUrl, close] = await simpleEventSourceServer({ "/build/gh/test/test": fixture });
  try {
    const br = new BinderRepository("gh/test/test", new URL(`${serverUrl}/build`));
    const messages = parseEventSource(fixture);
    let i = 0;
    for await (const item of br.fetch()) {
      assert.deepStrictEqual(item, messages[i]);
      i += 1;
      if (item.phase === "ready") {
        br.close();
      }
    }
    assert.equal(i, messages.length);
  } finally {
    close();
  }
});

test("Invalid eventsource response should cause failure", async () => {
  const [serverUrl, close] = await simpleEventSourceServer({ "/build/gh/test/test": "invalid" });
  try {
    const br = new BinderRepository("gh/test/test", new URL(`${serverUrl}/build`));
    const messages = [];
    for await (const item of br.fetch()) {
      messages.push(item);
    }
    assert.deepStrictEqual(messages, [{ phase: "failed", message: "Event stream closed unexpectedly\n" }]);
  } finally {
    close();
  }
});
