// stream.mjs streams one build with the real @jupyterhub/binderhub-client
// and prints every item the client yields as one JSON line on stdout, so
// that the Go tests can assert the transcript event by event.
//
// Usage: node --experimental-detect-module stream.mjs '<options JSON>'
// Options: endpoint (build endpoint URL, e.g. http://127.0.0.1:8000/services/binder/build/),
// spec (e.g. gh/org/repo/HEAD), apiToken, buildToken, buildOnly, and
// closeOnReady (default true): call close() on "ready" as jupyterhub-fancy-profiles
// does; false keeps reading, so the client reports how the server ended the stream.
import "./shim.mjs";
import { BinderRepository } from "@jupyterhub/binderhub-client/client.js";

// Items go to stdout, one JSON line each; the client's own console.log
// calls ("Event stream error ...") go to stderr.
const emit = (v) => process.stdout.write(JSON.stringify(v) + "\n");
console.log = console.error;
// fetch-event-source rejects a promise nobody awaits when the client closes
// the stream on an error; a browser only logs that, and so do we.
process.on("unhandledRejection", (err) => console.error("unhandled rejection:", err));

const opts = JSON.parse(process.argv[2]);
const closeOnReady = opts.closeOnReady ?? true;
const repo = new BinderRepository(opts.spec, new URL(opts.endpoint), {
  apiToken: opts.apiToken,
  buildToken: opts.buildToken,
  buildOnly: opts.buildOnly,
});
// The URL the client requests, first, so tests can check its construction.
emit({ buildUrl: repo.buildUrl.toString() });
const timer = setTimeout(() => {
  emit({ timeout: true });
  repo.close();
}, (opts.timeoutSeconds ?? 120) * 1000);
for await (const item of repo.fetch()) {
  emit(item);
  // fancy-profiles acts on these two phases only, and closes on both.
  if (item.phase === "failed" || (item.phase === "ready" && closeOnReady)) {
    repo.close();
  }
}
clearTimeout(timer);
