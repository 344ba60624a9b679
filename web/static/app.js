// binderbuild build page: picks a provider, streams GET {base}build/... with
// fetch() (so that a token can go in the Authorization header) and shows the
// events. Server data only ever reaches the page through textContent.
(function () {
  'use strict';

  var base = (document.querySelector('meta[name="binderbuild-base"]') || {}).content || '/';
  // Set when the service launches servers: /v2/ pages and launch links.
  var launchOn = ((document.querySelector('meta[name="binderbuild-launch"]') || {}).content || '') === 'true';
  var PHASES = ['waiting', 'fetching', 'building', 'pushing', 'ready'];
  var PHASE_NAMES = { waiting: 'Waiting', fetching: 'Fetching', building: 'Building', pushing: 'Pushing', ready: 'Ready' };
  var MAX_LINES = 5000; // log lines kept in the page; older ones are dropped

  // ---- ANSI SGR ----------------------------------------------------------

  function newStyle() {
    return { bold: false, dim: false, italic: false, underline: false, fg: null, bg: null };
  }

  // CSI sequences (SGR and others), OSC sequences and two-byte escapes.
  var ESCAPES = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;
  var CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g;

  function color256(n) {
    if (n < 16) return n;
    if (n >= 232) {
      var g = 8 + 10 * (n - 232);
      return 'rgb(' + g + ',' + g + ',' + g + ')';
    }
    var levels = [0, 95, 135, 175, 215, 255];
    n -= 16;
    return 'rgb(' + levels[Math.floor(n / 36)] + ',' + levels[Math.floor(n / 6) % 6] + ',' + levels[n % 6] + ')';
  }

  function clamp(v) {
    v = parseInt(v, 10);
    return isNaN(v) ? 0 : Math.max(0, Math.min(255, v));
  }

  // applySGR updates style s with the parameters of one "ESC [ ... m".
  function applySGR(s, params) {
    var codes = params === '' ? [0] : params.split(/[;:]/).map(function (c) { return c === '' ? 0 : parseInt(c, 10); });
    for (var i = 0; i < codes.length; i++) {
      var c = codes[i];
      if (c === 0) { var r = newStyle(); for (var k in r) s[k] = r[k]; }
      else if (c === 1) s.bold = true;
      else if (c === 2) s.dim = true;
      else if (c === 3) s.italic = true;
      else if (c === 4) s.underline = true;
      else if (c === 22) { s.bold = false; s.dim = false; }
      else if (c === 23) s.italic = false;
      else if (c === 24) s.underline = false;
      else if (c >= 30 && c <= 37) s.fg = c - 30;
      else if (c === 39) s.fg = null;
      else if (c >= 40 && c <= 47) s.bg = c - 40;
      else if (c === 49) s.bg = null;
      else if (c >= 90 && c <= 97) s.fg = c - 90 + 8;
      else if (c >= 100 && c <= 107) s.bg = c - 100 + 8;
      else if (c === 38 || c === 48) {
        var v = null;
        if (codes[i + 1] === 5 && i + 2 < codes.length) {
          v = color256(Math.max(0, Math.min(255, codes[i + 2])));
          i += 2;
        } else if (codes[i + 1] === 2 && i + 4 < codes.length) {
          v = 'rgb(' + clamp(codes[i + 2]) + ',' + clamp(codes[i + 3]) + ',' + clamp(codes[i + 4]) + ')';
          i += 4;
        } else {
          break; // malformed: ignore the rest
        }
        if (c === 38) s.fg = v; else s.bg = v;
      }
    }
  }

  // parseANSI splits one line into styled segments. style carries over
  // from line to line, as in a terminal; it is updated in place.
  function parseANSI(text, style) {
    var segs = [];
    var last = 0;
    var m;
    ESCAPES.lastIndex = 0;
    function push(t) {
      t = t.replace(CONTROLS, '');
      if (t === '') return;
      segs.push({
        text: t, bold: style.bold, dim: style.dim, italic: style.italic,
        underline: style.underline, fg: style.fg, bg: style.bg
      });
    }
    while ((m = ESCAPES.exec(text)) !== null) {
      push(text.slice(last, m.index));
      last = ESCAPES.lastIndex;
      if (m[2] === 'm') applySGR(style, m[1]);
    }
    push(text.slice(last));
    return segs;
  }

  // renderSegments appends segments to el as text nodes and spans.
  function renderSegments(el, segs) {
    for (var i = 0; i < segs.length; i++) {
      var g = segs[i];
      if (!g.bold && !g.dim && !g.italic && !g.underline && g.fg === null && g.bg === null) {
        el.appendChild(document.createTextNode(g.text));
        continue;
      }
      var span = document.createElement('span');
      if (g.bold) span.classList.add('ansi-bold');
      if (g.dim) span.classList.add('ansi-dim');
      if (g.italic) span.classList.add('ansi-italic');
      if (g.underline) span.classList.add('ansi-underline');
      if (typeof g.fg === 'number') span.classList.add('ansi-fg-' + g.fg);
      else if (g.fg) span.style.color = g.fg;
      if (typeof g.bg === 'number') span.classList.add('ansi-bg-' + g.bg);
      else if (g.bg) span.style.backgroundColor = g.bg;
      span.textContent = g.text;
      el.appendChild(span);
    }
  }

  // ---- Log view ------------------------------------------------------------

  // The log batches lines and renders them once per animation frame, keeping
  // at most MAX_LINES lines in the page.
  function LogView(el, note) {
    this.el = el;
    this.note = note;
    this.pending = [];
    this.dropped = 0;
    this.scheduled = false;
    this.style = newStyle();
    this.total = 0;
  }

  LogView.prototype.append = function (text, cls) {
    var lines = String(text).split('\n');
    if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      var cr = line.replace(/\r+$/, '').lastIndexOf('\r');
      if (cr >= 0) line = line.slice(cr + 1); // a carriage return overwrites the line
      this.pending.push({ text: line, cls: cls || '' });
    }
    this.total += lines.length;
    if (this.pending.length > MAX_LINES) {
      var extra = this.pending.length - MAX_LINES;
      this.pending.splice(0, extra);
      this.dropped += extra;
    }
    this.schedule();
  };

  LogView.prototype.schedule = function () {
    if (this.scheduled) return;
    this.scheduled = true;
    var self = this;
    requestAnimationFrame(function () { self.flush(); });
  };

  LogView.prototype.flush = function () {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    var el = this.el;
    var follow = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    var frag = document.createDocumentFragment();
    for (var i = 0; i < this.pending.length; i++) {
      var p = this.pending[i];
      var div = document.createElement('div');
      div.className = p.cls ? 'line ' + p.cls : 'line';
      renderSegments(div, parseANSI(p.text, this.style));
      frag.appendChild(div);
    }
    this.pending = [];
    el.appendChild(frag);
    var excess = el.childElementCount - MAX_LINES;
    if (excess > 0) {
      var range = document.createRange();
      range.setStartBefore(el.firstElementChild);
      range.setEndAfter(el.children[excess - 1]);
      range.deleteContents();
      this.dropped += excess;
    }
    if (this.dropped > 0) {
      this.note.hidden = false;
      this.note.textContent = this.dropped + ' earlier log lines are not shown; the page keeps the last ' + MAX_LINES + '.';
    }
    if (follow) el.scrollTop = el.scrollHeight;
  };

  LogView.prototype.clear = function () {
    this.pending = [];
    this.dropped = 0;
    this.total = 0;
    this.style = newStyle();
    this.el.textContent = '';
    this.note.hidden = true;
    this.note.textContent = '';
  };

  // ---- Server-sent events ----------------------------------------------

  // readEvents calls onData with the data of each event of the stream body
  // and resolves when the body ends. Comments (the heartbeat) are skipped.
  async function readEvents(body, onData) {
    var reader = body.getReader();
    var decoder = new TextDecoder();
    var buf = '';
    var data = [];
    var eol = /\r\n|\r|\n/g;
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) break;
      buf += decoder.decode(chunk.value, { stream: true });
      var pos = 0;
      var m;
      eol.lastIndex = 0;
      while ((m = eol.exec(buf)) !== null) {
        if (m[0] === '\r' && m.index === buf.length - 1) break; // maybe half of "\r\n"
        var line = buf.slice(pos, m.index);
        pos = eol.lastIndex;
        if (line === '') {
          if (data.length > 0) {
            var stop = onData(data.join('\n'));
            data = [];
            if (stop) { reader.cancel().catch(function () {}); return; }
          }
          continue;
        }
        if (line.charAt(0) === ':') continue;
        var colon = line.indexOf(':');
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.charAt(0) === ' ') value = value.slice(1);
        if (field === 'data') data.push(value);
      }
      buf = buf.slice(pos);
    }
  }

  // ---- Providers ---------------------------------------------------------

  var FALLBACK_PROVIDERS = [{
    displayName: 'GitHub', id: 'gh', spec: { validateRegex: '[^/]+/[^/]+/.+' },
    detect: { regex: '^(https?://github.com/)?(?<repo>.*[^/])/?' },
    repo: { label: 'GitHub repository name or URL', placeholder: 'example: binder-examples/requirements or https://github.com/binder-examples/requirements', urlEncode: false },
    ref: { enabled: true, default: 'HEAD' }
  }];

  var providers = [];

  function compile(list) {
    return list.filter(function (p) { return p && typeof p.id === 'string'; }).map(function (p) {
      var c = { cfg: p, id: p.id, name: p.displayName || p.id, detect: null, validate: null };
      try { if (p.detect && p.detect.regex) c.detect = new RegExp(p.detect.regex); } catch (e) { c.detect = null; }
      try { if (p.spec && p.spec.validateRegex) c.validate = new RegExp('^(?:' + p.spec.validateRegex + ')'); } catch (e) { c.validate = null; }
      return c;
    });
  }

  function providerByID(id) {
    for (var i = 0; i < providers.length; i++) if (providers[i].id === id) return providers[i];
    return null;
  }

  var URLISH = /^[a-z][a-z0-9+.-]*:\/\//i;
  var SCPISH = /^[\w.-]+@[\w.-]+:/;

  // DOI_PREFIXES pick the archive of a DOI; any other DOI goes to
  // dataverse, whose installations mint DOIs under many prefixes.
  var DOI_PREFIXES = [
    [/^10\.5281\/zenodo\./i, 'zenodo'],
    [/^10\.6084\/m9\.figshare\./i, 'figshare'],
    [/^10\.4211\/hs\./i, 'hydroshare']
  ];

  // ARCHIVE_LINKS turn pasted archive links (and bare DOIs and SWHIDs) into
  // the specs of providers whose specs are not URLs. spec returns
  // [provider, repo] or null.
  var ARCHIVE_LINKS = [
    [/^(?:https?:\/\/(?:dx\.)?doi\.org\/|doi:)?(10\.\d+\/[^\s?#]+)$/i, function (m) {
      var doi = m[1].replace(/\/+$/, '');
      for (var i = 0; i < DOI_PREFIXES.length; i++) if (DOI_PREFIXES[i][0].test(doi)) return [DOI_PREFIXES[i][1], doi];
      return ['dataverse', doi];
    }],
    [/^https?:\/\/(?:www\.|sandbox\.)?zenodo\.org\/records?\/(\d+)\/?(?:[?#].*)?$/i, function (m) {
      return ['zenodo', '10.5281/zenodo.' + m[1]];
    }],
    [/^https?:\/\/(?:[\w-]+\.)*figshare\.com\/articles\/((?:[^/?#]+\/)*[^/?#]+)\/?(?:[?#].*)?$/i, function (m) {
      // .../articles/<type>/<title>/<id>[/<version>]
      var parts = m[1].split('/');
      var last = parts[parts.length - 1], prev = parts[parts.length - 2];
      if (/^\d+$/.test(prev || '') && /^\d{1,4}$/.test(last)) return ['figshare', '10.6084/m9.figshare.' + prev + '.v' + last];
      return /^\d+$/.test(last) ? ['figshare', '10.6084/m9.figshare.' + last] : null;
    }],
    [/^https?:\/\/(?:www\.)?hydroshare\.org\/resource\/([0-9a-f]{32})(?:[/?#].*)?$/i, function (m) {
      return ['hydroshare', m[1].toLowerCase()];
    }],
    [/^(?:https?:\/\/archive\.softwareheritage\.org\/(?:browse\/)?)?(swh:1:(?:dir|rev|rel|snp):[0-9a-f]{40})(?:;.*|\/)?$/i, function (m) {
      return ['swh', m[1]];
    }]
  ];

  function detectArchive(text, list) {
    for (var i = 0; i < ARCHIVE_LINKS.length; i++) {
      var m = ARCHIVE_LINKS[i][0].exec(text);
      var spec = m && ARCHIVE_LINKS[i][1](m);
      if (!spec) continue;
      for (var j = 0; j < list.length; j++) {
        if (list[j].id === spec[0]) return { provider: spec[0], repo: spec[1], ref: '' };
      }
    }
    return null;
  }

  // detect finds the provider of a pasted URL: an archive link, DOI or
  // SWHID of an offered provider, else the first provider whose detect
  // regex strips a host, else the git provider for any other URL. Input
  // that is none of these is left to the selected provider (null).
  function detect(text, list) {
    list = list || providers;
    text = String(text || '').trim();
    var archive = detectArchive(text, list);
    if (archive) return archive;
    if (!URLISH.test(text) && !SCPISH.test(text)) return null;
    for (var i = 0; i < list.length; i++) {
      var p = list[i];
      if (!p.detect) continue;
      var m = p.detect.exec(text);
      var repo = m && m.groups && m.groups.repo;
      if (repo && repo.indexOf('://') < 0 && !SCPISH.test(repo)) {
        var out = { provider: p.id, repo: repo, ref: '' };
        var tree = /^(.*?)\/(?:-\/)?tree\/(.+)$/.exec(repo);
        if (tree) { out.repo = tree[1]; out.ref = tree[2]; }
        out.repo = out.repo.replace(/\.git$/, '');
        return out;
      }
    }
    for (var j = 0; j < list.length; j++) {
      if (list[j].id === 'git') return { provider: 'git', repo: text.replace(/\/+$/, ''), ref: '' };
    }
    return null;
  }

  function escapeSegments(s) {
    return s.split('/').map(encodeURIComponent).join('/');
  }

  // makeSpec returns "<provider>/<spec>" for GET {base}build/.
  function makeSpec(p, repo, ref) {
    var cfg = p.cfg || p;
    var r = cfg.repo && cfg.repo.urlEncode ? encodeURIComponent(repo) : escapeSegments(repo);
    if (cfg.ref && cfg.ref.enabled === false) return cfg.id + '/' + r;
    var rf = ref || (cfg.ref && cfg.ref.default) || 'HEAD';
    return cfg.id + '/' + r + '/' + escapeSegments(rf);
  }

  // ---- Page ----------------------------------------------------------------

  var $ = function (id) { return document.getElementById(id); };
  var form, providerSel, repoIn, refIn, tokenIn, buildBtn, cancelBtn, logView;
  var current = null; // the build being watched
  var layers = {};

  function setState(state) {
    document.body.dataset.state = state;
    var running = state === 'running';
    buildBtn.disabled = running;
    buildBtn.textContent = running ? 'Building…' : 'Build';
    cancelBtn.hidden = !running;
  }

  function say(text) {
    var st = $('status');
    if (st.textContent !== text) st.textContent = text;
  }

  // setPhase moves the phase indicator; failed marks the current step.
  function setPhase(phase, failed) {
    var idx = PHASES.indexOf(phase);
    if (idx < 0) return;
    document.body.dataset.phase = failed ? 'failed' : phase;
    var items = $('phases').children;
    for (var i = 0; i < items.length; i++) {
      var li = items[i];
      li.classList.remove('done', 'current', 'failed');
      li.removeAttribute('aria-current');
      var state = '';
      if (i < idx || (phase === 'ready' && i === idx)) { li.classList.add('done'); state = 'done'; }
      if (i === idx) {
        li.setAttribute('aria-current', 'step');
        if (failed) { li.classList.add('failed'); state = 'failed'; }
        else if (phase !== 'ready') { li.classList.add('current'); state = 'in progress'; }
      }
      var sr = li.querySelector('.sr');
      if (!sr) { sr = document.createElement('span'); sr.className = 'sr'; li.appendChild(sr); }
      sr.textContent = state ? ' (' + state + ')' : '';
    }
    if (failed) say('Build failed while ' + PHASE_NAMES[phase].toLowerCase() + '.');
    else if (phase === 'ready') say('Ready: the image is built.');
    else say('Phase: ' + PHASE_NAMES[phase] + ' (step ' + (idx + 1) + ' of ' + PHASES.length + ').');
  }

  // plainText drops ANSI escapes, for text outside the log.
  function plainText(text) {
    return parseANSI(String(text || ''), newStyle()).map(function (g) { return g.text; }).join('');
  }

  function showError(title, message, hint, retry) {
    $('error-title').textContent = title;
    $('error-message').textContent = plainText(message);
    $('error-hint').textContent = hint || '';
    $('retry').hidden = !retry;
    $('error').hidden = false;
  }

  function formatBytes(n) {
    if (!(n >= 0)) return '';
    var units = ['B', 'kB', 'MB', 'GB', 'TB'];
    var u = 0;
    while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
    return (u === 0 ? n : n.toFixed(1)) + ' ' + units[u];
  }

  // updateLayers shows one progress bar per layer of a pushing event's
  // progress map: {"<layer>": {"current": n, "total": m} | "<status>"}.
  function updateLayers(progress) {
    if (!progress || typeof progress !== 'object') return;
    var box = $('layers-box');
    box.hidden = false;
    Object.keys(progress).forEach(function (id) {
      var l = layers[id];
      if (!l) {
        var li = document.createElement('li');
        var name = document.createElement('span');
        name.className = 'layer-id';
        name.textContent = id.replace(/^sha256:/, '').slice(0, 12);
        name.title = id;
        var bar = document.createElement('progress');
        bar.setAttribute('aria-label', 'Layer ' + name.textContent);
        bar.max = 1;
        var status = document.createElement('span');
        status.className = 'layer-status';
        li.appendChild(name);
        li.appendChild(bar);
        li.appendChild(status);
        $('layers').appendChild(li);
        l = layers[id] = { li: li, bar: bar, status: status };
      }
      setLayer(l, progress[id]);
    });
  }

  function setLayer(l, v) {
    if (v && typeof v === 'object' && typeof v.current === 'number') {
      if (typeof v.total === 'number' && v.total > 0) {
        l.bar.max = v.total;
        l.bar.value = Math.min(v.current, v.total);
        l.status.textContent = formatBytes(v.current) + ' / ' + formatBytes(v.total);
      } else {
        l.bar.removeAttribute('value');
        l.status.textContent = formatBytes(v.current);
      }
      return;
    }
    var text = typeof v === 'string' ? v : (v && v.status) || '';
    l.status.textContent = text;
    if (/pushed|already exists|mounted/i.test(text)) { l.bar.max = 1; l.bar.value = 1; }
    else if (!l.bar.hasAttribute('value')) l.bar.removeAttribute('value');
  }

  function completeLayers() {
    Object.keys(layers).forEach(function (id) {
      var l = layers[id];
      l.bar.value = l.bar.max;
      if (!/pushed|exists/i.test(l.status.textContent)) l.status.textContent = 'Pushed';
    });
  }

  function shareURL(b) {
    var q = new URLSearchParams();
    q.set('provider', b.provider.id);
    q.set('repo', b.repo);
    q.set('ref', b.ref);
    return location.origin + location.pathname + '?' + q.toString();
  }

  function reset() {
    if (current) current.controller.abort();
    current = null;
    logView.clear();
    layers = {};
    $('layers').textContent = '';
    $('layers-box').hidden = true;
    $('error').hidden = true;
    $('result').hidden = true;
    $('image-name').textContent = '';
    $('copy-status').textContent = '';
    delete document.body.dataset.phase;
    delete document.body.dataset.image;
  }

  // readInput turns the form into a build, or shows why it cannot.
  function readInput() {
    var text = repoIn.value.trim();
    var p = providerByID(providerSel.value);
    var repo = text.replace(/\/+$/, '');
    var ref = refIn.value.trim();
    var d = detect(text);
    // A URL of another provider switches to it, unless the user chose the
    // git provider, which takes any URL as it is.
    if (d && (!p || d.provider === p.id || p.id !== 'git')) {
      p = providerByID(d.provider) || p;
      providerSel.value = p.id;
      repo = d.repo;
      if (d.ref && (ref === '' || ref === 'HEAD')) { ref = d.ref; refIn.value = ref; }
    }
    if (!p) return { error: 'Choose a repository provider.' };
    if (repo === '') return { error: 'Enter a repository, for example ' + exampleOf(p) + '.' };
    if (p.cfg.ref && p.cfg.ref.enabled !== false && ref === '') ref = p.cfg.ref.default || 'HEAD';
    var rest = makeSpec(p, repo, ref).slice(p.id.length + 1);
    if (p.validate && !p.validate.test(rest)) {
      return { error: 'This does not look like a ' + p.name + ' repository. Try ' + exampleOf(p) + '.' };
    }
    return { provider: p, repo: repo, ref: ref, spec: makeSpec(p, repo, ref) };
  }

  function exampleOf(p) {
    var ph = (p.cfg.repo && p.cfg.repo.placeholder) || '';
    return ph.replace(/^example:\s*/i, '') || 'org/repo';
  }

  function start(b) {
    reset();
    var controller = new AbortController();
    var build = { provider: b.provider, repo: b.repo, ref: b.ref, spec: b.spec, controller: controller, phase: 'waiting', ended: false };
    current = build;
    $('progress').hidden = false;
    var link = shareURL(build);
    $('share-url').value = link;
    $('share').hidden = false;
    try { history.replaceState(null, '', link); } catch (e) { /* file: URLs */ }
    setState('running');
    setPhase('waiting');
    logView.append('Building ' + build.provider.name + ' ' + build.repo + ' at ' + build.ref + '…', 'meta');
    run(build, tokenIn.value.trim()).catch(function (err) {
      if (current !== build || build.ended) return;
      if (controller.signal.aborted) return;
      disconnected(build, err && err.message);
    });
  }

  function end(build, state) {
    build.ended = true;
    if (current === build) setState(state);
  }

  function disconnected(build, detail) {
    end(build, 'disconnected');
    setPhase(build.phase, true);
    say('Disconnected from the service.');
    document.body.dataset.phase = 'disconnected';
    showError('Disconnected',
      'The connection to the service ended before the build finished (last phase: ' + build.phase + ').' + (detail ? ' ' + detail : ''),
      'The build may still be running on the service. “Try again” re-attaches to it.', true);
  }

  function authRequired(build, message) {
    end(build, 'auth');
    setPhase(build.phase, true);
    document.body.dataset.phase = 'auth';
    say('Authentication required.');
    showError('Authentication required', message || 'The service refused the request.',
      'Enter an access token under “Access token” and press Build again.', false);
    $('token-box').open = true;
    tokenIn.focus();
  }

  async function run(build, token) {
    var headers = { Accept: 'text/event-stream' };
    if (token) headers.Authorization = 'Bearer ' + token;
    var res;
    try {
      res = await fetch(base + 'build/' + build.spec + (build.launch ? '' : '?build_only=true'), {
        headers: headers, signal: build.controller.signal, cache: 'no-store', credentials: 'same-origin'
      });
    } catch (err) {
      if (build.controller.signal.aborted) return;
      disconnected(build, 'The service could not be reached.');
      return;
    }
    if (res.status === 401 || res.status === 403) {
      authRequired(build, 'The service answered HTTP ' + res.status + '.');
      return;
    }
    var type = res.headers.get('Content-Type') || '';
    if (!res.ok || type.indexOf('text/event-stream') !== 0 || !res.body) {
      end(build, 'failed');
      setPhase(build.phase, true);
      showError('The service did not start the build', 'It answered HTTP ' + res.status + ' ' + (res.statusText || '') + ' (' + (type || 'no content type') + ').', '', true);
      return;
    }
    await readEvents(res.body, function (data) {
      if (current !== build) return true;
      return handle(build, data);
    });
    if (current === build && !build.ended && !build.controller.signal.aborted) {
      logView.flush();
      disconnected(build, '');
    }
  }

  // handle shows one event; it returns true when the stream is over.
  function handle(build, data) {
    var ev;
    try { ev = JSON.parse(data); } catch (e) { ev = null; }
    if (!ev || typeof ev !== 'object') {
      logView.append(data);
      return false;
    }
    var phase = typeof ev.phase === 'string' ? ev.phase.toLowerCase() : '';
    var message = typeof ev.message === 'string' ? ev.message : '';
    if (phase === 'failed' || phase === 'failure') {
      if (message) logView.append(message, 'failed');
      if (ev.status_code === 401 || ev.status_code === 403) {
        authRequired(build, message.trim());
        return true;
      }
      end(build, 'failed');
      setPhase(build.phase, true);
      var title = ev.status_code === 429 ? 'Too many requests' : 'Build failed';
      var text = message.trim().replace(/^build failed:\s*/i, '');
      showError(title, text || 'The build failed. The log below shows its last lines.',
        ev.status_code ? 'The service answered with status ' + ev.status_code + '.' : 'Fix the repository or the ref and build again.', true);
      return true;
    }
    if (build.launch && (phase === 'built' || phase === 'launching')) return launching(build, phase, message);
    if (build.launch && phase === 'ready' && typeof ev.url === 'string') return launched(build, ev);
    // repo2docker repeats "Pushing image" with every progress update.
    if (message && !(phase === 'pushing' && message === build.lastPush)) logView.append(message);
    if (phase === 'pushing') build.lastPush = message;
    if (phase === 'pushing' && ev.progress) updateLayers(ev.progress);
    if (PHASES.indexOf(phase) >= 0 && phase !== build.phase) {
      build.phase = phase;
      setPhase(phase);
    }
    if (phase === 'ready' || phase === 'built') {
      var image = ev.imageName || ev.image || '';
      build.phase = 'ready';
      setPhase('ready');
      completeLayers();
      if (image) {
        $('image-name').textContent = image;
        $('result').hidden = false;
        document.body.dataset.image = image;
      }
      end(build, 'ready');
      logView.flush();
      return true;
    }
    return false;
  }

  // launching shows the image built and the hub's spawn progress.
  function launching(build, phase, message) {
    if (message) logView.append(message);
    if (phase === 'built') {
      build.phase = 'ready';
      setPhase('ready');
      completeLayers();
    }
    document.body.dataset.phase = 'launching';
    say('Launching your server…');
    return false;
  }

  // launched sends the browser to the server, at the path the link asked for.
  function launched(build, ev) {
    end(build, 'ready');
    logView.append(typeof ev.message === 'string' ? ev.message : '');
    logView.flush();
    document.body.dataset.phase = 'launched';
    say('Server ready: opening it…');
    location.assign(serverRedirect(ev.url, String(ev.token || ''), new URLSearchParams(location.search)));
    return true;
  }

  // serverRedirect is upstream's redirect: urlpath, else labpath
  // (doc/tree/<path>) or filepath (tree/<path>), under the server's URL,
  // with the token. A path leading off the server is ignored: the token
  // must not reach another site.
  function serverRedirect(serverURL, token, q) {
    var path = q.get('urlpath') || '';
    if (q.has('labpath')) path = 'doc/tree/' + encodeURI(q.get('labpath').replace(/\/$/, ''));
    else if (q.has('filepath')) path = 'tree/' + encodeURI(q.get('filepath').replace(/\/$/, ''));
    var server = new URL(serverURL, location.href);
    var url = new URL(path.replace(/^\/*/, ''), server);
    if (url.origin !== server.origin || url.pathname.indexOf(server.pathname) !== 0) url = new URL(server.href);
    url.searchParams.append('token', token);
    return url.toString();
  }

  // startLaunch follows /build for the spec of a /v2/ page without
  // build_only: the image is built if needed, then the server launched.
  function startLaunch(spec) {
    reset();
    var id = spec.split('/')[0];
    var p = providerByID(id) || { id: id, name: id, cfg: {} };
    var build = { provider: p, repo: spec, ref: '', spec: spec, controller: new AbortController(), phase: 'waiting', ended: false, launch: true };
    current = build;
    $('progress').hidden = false;
    setState('running');
    setPhase('waiting');
    logView.append('Launching ' + decodeURIComponent(spec) + '…', 'meta');
    run(build, tokenIn.value.trim()).catch(function (err) {
      if (current !== build || build.ended || build.controller.signal.aborted) return;
      disconnected(build, err && err.message);
    });
  }

  // updateLaunchLinks shows the shareable launch link and badge markdown
  // of the form's repository.
  function updateLaunchLinks() {
    if (!launchOn) return;
    var b = readInput();
    $('launch-box').hidden = !!b.error;
    if (b.error) return;
    var link = location.origin + base + 'v2/' + b.spec;
    $('launch-url').value = link;
    $('launch-open').href = link;
    $('badge-markdown').value = '[![Binder](' + location.origin + base + 'badge_logo.svg)](' + link + ')';
  }

  async function copy(text, what) {
    var ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (e) {
      var ta = document.createElement('textarea');
      ta.value = text;
      ta.setAttribute('readonly', '');
      ta.className = 'sr';
      document.body.appendChild(ta);
      ta.select();
      try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
      ta.remove();
    }
    $('copy-status').textContent = ok ? what + ' copied to the clipboard.' : 'Copying failed: select the text and copy it yourself.';
  }

  function updateProviderFields() {
    var p = providerByID(providerSel.value);
    if (!p) return;
    var cfg = p.cfg;
    $('repo-label').textContent = (cfg.repo && cfg.repo.label) || 'Repository';
    repoIn.placeholder = (cfg.repo && cfg.repo.placeholder) || '';
    var refEnabled = !(cfg.ref && cfg.ref.enabled === false);
    refIn.disabled = !refEnabled;
    if (refEnabled && refIn.value.trim() === '') refIn.value = (cfg.ref && cfg.ref.default) || 'HEAD';
  }

  function fillProviders(list) {
    providers = compile(list);
    if (providers.length === 0) providers = compile(FALLBACK_PROVIDERS);
    var keep = providerSel.value;
    providerSel.textContent = '';
    providers.forEach(function (p) {
      var o = document.createElement('option');
      o.value = p.id;
      o.textContent = p.name;
      providerSel.appendChild(o);
    });
    if (providerByID(keep)) providerSel.value = keep;
    updateProviderFields();
  }

  async function loadProviders() {
    try {
      var res = await fetch(base + 'api/repoproviders', { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      var list = await res.json();
      if (!Array.isArray(list)) throw new Error('not a list');
      fillProviders(list);
      document.body.dataset.providers = 'loaded';
    } catch (err) {
      fillProviders(FALLBACK_PROVIDERS);
      $('provider-hint').textContent = 'The provider list could not be loaded (' + err.message + '); showing GitHub only.';
      document.body.dataset.providers = 'fallback';
    }
  }

  function onRepoInput() {
    var d = detect(repoIn.value);
    var hint = $('provider-hint');
    repoIn.removeAttribute('aria-invalid');
    $('repo-error').textContent = '';
    if (!d) { hint.textContent = ''; return; }
    var p = providerByID(d.provider);
    if (!p) return;
    if (providerSel.value !== p.id) {
      providerSel.value = p.id;
      updateProviderFields();
    }
    hint.textContent = 'Detected ' + p.name + (p.id === 'git' ? ' URL.' : ': ' + d.repo + (d.ref ? ' at ' + d.ref : '') + '.');
  }

  function submit(ev) {
    if (ev) ev.preventDefault();
    var b = readInput();
    if (b.error) {
      repoIn.setAttribute('aria-invalid', 'true');
      $('repo-error').textContent = b.error;
      repoIn.focus();
      return;
    }
    repoIn.removeAttribute('aria-invalid');
    $('repo-error').textContent = '';
    start(b);
  }

  async function init() {
    form = $('build-form');
    providerSel = $('provider');
    repoIn = $('repo');
    refIn = $('ref');
    tokenIn = $('token');
    buildBtn = $('build');
    cancelBtn = $('cancel');
    logView = new LogView($('log'), $('log-trimmed'));

    form.addEventListener('submit', submit);
    repoIn.addEventListener('input', onRepoInput);
    providerSel.addEventListener('change', function () { updateProviderFields(); $('provider-hint').textContent = ''; });
    cancelBtn.addEventListener('click', function () {
      if (!current) return;
      var b = current;
      b.controller.abort();
      end(b, 'stopped');
      say('Stopped watching. The build goes on on the service; build again to follow it.');
      buildBtn.focus();
    });
    $('retry').addEventListener('click', function () { submit(null); });
    $('copy-image').addEventListener('click', function () { copy($('image-name').textContent, 'Image name'); });
    $('copy-share').addEventListener('click', function () { copy($('share-url').value, 'Link'); });

    await loadProviders();
    if (launchOn) {
      repoIn.addEventListener('input', updateLaunchLinks);
      refIn.addEventListener('input', updateLaunchLinks);
      providerSel.addEventListener('change', updateLaunchLinks);
      $('copy-launch').addEventListener('click', function () { copy($('launch-url').value, 'Launch link'); });
      $('copy-badge').addEventListener('click', function () { copy($('badge-markdown').value, 'Badge'); });
      if (location.pathname.indexOf(base + 'v2/') === 0) {
        document.body.dataset.ready = 'true';
        startLaunch(location.pathname.slice((base + 'v2/').length).replace(/\/+$/, ''));
        return;
      }
    }
    var q = new URLSearchParams(location.search);
    if (q.get('repo')) {
      if (q.get('provider') && providerByID(q.get('provider'))) providerSel.value = q.get('provider');
      updateProviderFields();
      repoIn.value = q.get('repo');
      if (q.get('ref')) refIn.value = q.get('ref');
      document.body.dataset.ready = 'true';
      submit(null);
      return;
    }
    document.body.dataset.ready = 'true';
  }

  // Exposed for the browser tests and for debugging in the console.
  window.binderbuild = {
    parseANSI: function (text) { return parseANSI(text, newStyle()); },
    detect: function (text, list) { return detect(text, list ? compile(list) : undefined); },
    makeSpec: makeSpec,
    maxLines: MAX_LINES
  };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
