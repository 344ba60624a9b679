// Browser globals that @microsoft/fetch-event-source (a dependency of
// @jupyterhub/binderhub-client) expects. Node 20 has fetch, AbortController
// and TextDecoder; the library also reads window.fetch, window.setTimeout and
// calls document.removeEventListener whenever a stream ends. Import this
// module before the client.
globalThis.window ??= globalThis;
globalThis.document ??= {
  hidden: false,
  cookie: "",
  addEventListener() {},
  removeEventListener() {},
};
