#!/usr/bin/env node
// The docs check: every command the README and docs/*.md show is run against the real
// binary, or, where this machine cannot run it, checked against the binary's --help.
// Run by ./scripts/test (through scripts/docs-check); needs node and the debug binary
// (target/debug/mcpgate, or MCPGATE_BIN), nothing from npm.
//
// What it does, in order:
//  1. The quick start as a new user runs it: the README block marked
//     `<!-- docs-check: quick-start -->` runs in an empty directory; the server must create
//     ./mcpgate-data, print the banner of the block marked `<!-- docs-check: banner -->`
//     (the administrator `admin` and a password), and answer /healthz, the sign-in page,
//     both metadata documents and the 401 challenge of /mcp.
//  2. Every fenced sh/bash/shell/console block of README.md and docs/*.md, in page order,
//     each page in a scratch directory of its own (its working directory; /etc/mcpgate,
//     /var/lib/mcpgate… and /run/secrets are mapped into it):
//     - a line whose commands are all mcpgate commands or harmless ones (echo, printf,
//       diff, cat, sh/bash of a file a page wrote, set) is RUN by bash, with `mcpgate` on
//       PATH; it must exit 0. `mcpgate serve` runs in the background on a free port (any
//       --listen is replaced) and must answer /healthz and publish metadata whose issuer
//       is the one its banner prints (and the --public-url the line gives), then stops.
//       `cargo run … -p mcpgate -- ARGS` runs as `mcpgate ARGS`.
//     - an mcpgate command that cannot run here is CHECKED FOR FLAGS: its subcommands
//       exist and `mcpgate <subcommand…> --help` lists every --flag it uses, and it gives
//       the flags and arguments the subcommand requires. These are: a command with a
//       placeholder argument in capitals (`mcpgate client show CLIENT_ID`), a command on
//       PostgreSQL (--database, MCPGATE_DATABASE_URL…), `mcpgate mcp` (it must discover an
//       authorization server), and commands in a line with another kind of command.
//     - every other command is SKIPPED (not run); the repository paths it names must
//       exist, and `cargo … -p PACKAGE --test TARGET` must name a real package and target.
//     Every mcpgate command is checked for flags before it runs.
//  3. Inline `mcpgate …` code in the text (and `serve --flag`, `idp add --flag` …) is
//     checked for flags too, leniently (no required arguments).
//  4. The flags of the table marked `<!-- docs-check: flags of mcpgate serve -->` must be
//     serve's; every MCPGATE_* variable the pages name must exist in the source; every
//     relative link must reach a file, and its #anchor a heading of that file.
//
// Markers, HTML comments on the line right before a fenced block (visible in the source):
//   <!-- docs-check: file PATH -->           write the block to PATH (relative: the page's
//                                            scratch directory) for the commands after it
//   <!-- docs-check: flags-only (reason) --> check the block's commands, do not run them
//   <!-- docs-check: skip (reason) -->       neither (keep these few)
//   <!-- docs-check: quick-start -->, <!-- docs-check: banner -->  (README, step 1)
// `$SECRET` in a command stands for a secret; the check sets it.
//
// Ends with `docs-check: N commands run, M checked for flags, K skipped`; exits 1 after
// naming each failure's page, line and command. DOCS_CHECK_VERBOSE=1 prints each command.

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = process.env.MCPGATE_BIN || join(ROOT, 'target/debug/mcpgate');
const VERBOSE = !!process.env.DOCS_CHECK_VERBOSE || process.argv.includes('-v');
const KEEP = !!process.env.DOCS_CHECK_KEEP;
const SECRET = 'docs-check-secret-value';
// Absolute paths of the examples that are mapped into a page's scratch directory.
const SANDBOXED = ['/var/lib/mcpgate', '/etc/mcpgate', '/run/secrets'];
// Commands other than mcpgate that a run line may hold: they read or print, nothing more.
const HARMLESS = new Set(['echo', 'printf', 'diff', 'cat', 'set', 'true']);
const SHELL_INFO = new Set(['sh', 'bash', 'shell', 'console']);

const counts = { run: 0, checked: 0, skipped: 0, cargo: 0, paths: 0, inline: 0 };
const failures = [];
const log = (...a) => { if (VERBOSE) console.log(...a); };
const fail = (where, command, reason, output = '') => {
  failures.push({ where, command, reason, output });
  console.log(`docs-check: FAIL ${where}: ${command}\n    ${reason}${output ? '\n' + indent(tail(output, 15), '    | ') : ''}`);
};
const tail = (s, n) => s.trimEnd().split('\n').slice(-n).join('\n');
const indent = (s, p) => s.split('\n').map((l) => p + l).join('\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (!existsSync(BIN)) {
  console.log(`docs-check: ${BIN} is missing: build it first (cargo build -p mcpgate)`);
  process.exit(1);
}

// ---------------------------------------------------------------- the pages

const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

/** Splits a page into fenced blocks (with the marker before each), inline code, links, headings. */
function parsePage(rel) {
  const lines = readFileSync(join(ROOT, rel), 'utf8').split('\n');
  const page = { rel, blocks: [], inline: [], links: [], headings: [], tables: [] };
  let fence = null;
  let lastNonBlank = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence) {
      if (new RegExp(`^\\s*${fence.mark}\\s*$`).test(line)) {
        page.blocks.push(fence.block);
        fence = null;
      } else {
        fence.block.lines.push({ n: i + 1, text: line.slice(Math.min(fence.indent, line.length - line.trimStart().length)) });
      }
      continue;
    }
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(line);
    if (open) {
      const marker = /^\s*<!--\s*docs-check:\s*(\S+)\s*(.*?)\s*-->\s*$/.exec(lastNonBlank);
      fence = { mark: open[2], indent: open[1].length, block: { info: open[3], start: i + 1, lines: [], marker: marker ? { kind: marker[1], arg: marker[2] } : null } };
      lastNonBlank = '';
      continue;
    }
    const table = /^\s*<!--\s*docs-check:\s*flags of mcpgate serve\s*-->/.test(line);
    if (table) {
      const rows = [];
      for (let j = i + 1; j < lines.length && lines[j].startsWith('|'); j++) rows.push({ n: j + 1, text: lines[j] });
      page.tables.push(rows);
    }
    const h = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) page.headings.push(h[2]);
    for (const m of line.matchAll(/`([^`]+)`/g)) page.inline.push({ n: i + 1, text: m[1] });
    for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)\)/g)) page.links.push({ n: i + 1, target: m[1] });
    if (line.trim()) lastNonBlank = line;
  }
  if (fence) fail(`${rel}:${fence.block.start}`, '```', 'a fenced block is never closed');
  return page;
}

/** GitHub's anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchors(headings) {
  const seen = new Map();
  const out = new Set();
  for (const h of headings) {
    const base = h.toLowerCase().replace(/`/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-');
    const k = seen.get(base) || 0;
    seen.set(base, k + 1);
    out.add(k ? `${base}-${k}` : base);
  }
  return out;
}

// ---------------------------------------------------------------- shell lines

/** Logical command lines of a shell block: comments dropped, `\` continuations joined. */
function commandLines(block) {
  const out = [];
  let cur = null;
  for (const { n, text } of block.lines) {
    let t = text;
    if (block.info === 'console') {
      if (!cur) {
        if (!/^\s*\$ /.test(t)) continue;
        t = t.replace(/^\s*\$ /, '');
      }
    }
    if (!cur && (!t.trim() || t.trim().startsWith('#'))) continue;
    if (cur) cur.text += ' ' + t.trim(); else cur = { n, text: t.trim() };
    if (cur.text.endsWith('\\')) { cur.text = cur.text.slice(0, -1).trimEnd(); continue; }
    out.push(cur);
    cur = null;
  }
  if (cur) out.push(cur);
  return out;
}

/** A small shell tokenizer: words (quotes removed, `$` kept), operators, redirections. */
function tokenize(text) {
  const toks = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '#') break;
    const op = /^(&&|\|\||;;|[|;&()]|\d?>>|\d?>&\d|\d?>|<)/.exec(text.slice(i));
    if (op) { toks.push({ op: op[1] }); i += op[1].length; continue; }
    let value = '';
    let quoted = false;
    while (i < text.length && !/[\s|;&()<>]/.test(text[i])) {
      const ch = text[i];
      if (ch === "'") { const j = text.indexOf("'", i + 1); value += text.slice(i + 1, j < 0 ? undefined : j); i = j < 0 ? text.length : j + 1; quoted = true; continue; }
      if (ch === '"') {
        let j = i + 1;
        while (j < text.length && text[j] !== '"') { if (text[j] === '\\') j++; value += text[j]; j++; }
        i = j + 1; quoted = true; continue;
      }
      if (ch === '\\') { value += text[i + 1] ?? ''; i += 2; continue; }
      value += ch; i++;
    }
    toks.push({ word: value, quoted });
  }
  return toks;
}

/** Simple commands of a line: { assigns, cmd, args, redirects }. */
function simpleCommands(text) {
  const cmds = [];
  let cur = { assigns: [], words: [], redirects: [] };
  const toks = tokenize(text);
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (t.op && /[<>]/.test(t.op)) { if (!t.op.includes('&') && toks[i + 1]?.word !== undefined) cur.redirects.push(toks[++i].word); continue; }
    if (t.op) { if (cur.words.length || cur.assigns.length) cmds.push(cur); cur = { assigns: [], words: [], redirects: [] }; continue; }
    if (!cur.words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(t.word)) cur.assigns.push(t.word);
    else cur.words.push(t);
  }
  if (cur.words.length || cur.assigns.length) cmds.push(cur);
  for (const c of cmds) {
    c.cmd = c.words[0]?.word;
    c.args = c.words.slice(1);
    c.env = Object.fromEntries(c.assigns.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
    const cargo = c.cmd === 'cargo' && c.args[0]?.word === 'run' && c.args.some((a, k) => a.word === '-p' && c.args[k + 1]?.word === 'mcpgate');
    if (cargo) {
      const dash = c.args.findIndex((a) => a.word === '--');
      c.mcpgate = dash < 0 ? [] : c.args.slice(dash + 1);
    } else if (c.cmd === 'mcpgate') {
      c.mcpgate = c.args;
    }
  }
  return cmds;
}

/** `cargo run … -p mcpgate -- ARGS` as `mcpgate ARGS`, for running. */
const cargoToMcpgate = (text) => text.replace(/\bcargo run\b[^|;&]*?-p mcpgate\b[^|;&]*?\s--\s/g, 'mcpgate ');

/** The examples' absolute paths under a page's scratch directory. */
function sandbox(text, root) {
  let t = text;
  for (const p of SANDBOXED) t = t.replace(new RegExp(`(^|[\\s"'=>(,\\[])${p.replace(/\//g, '\\/')}`, 'g'), `$1${root}${p}`);
  return t;
}

/** Absolute paths a line names outside the mapped ones (URLs excluded). */
function foreignPaths(text) {
  const found = [];
  for (const m of text.replace(/\b[a-z][a-z0-9+.-]*:\/\/\S*/gi, '').matchAll(/(?:^|[\s"'=>(,])(\/[A-Za-z][^\s"']*)/g)) {
    if (SANDBOXED.some((p) => m[1].startsWith(p)) || ['/dev/null', '/dev/urandom', '/dev/stdin'].includes(m[1])) continue;
    found.push(m[1]);
  }
  return found;
}

// ---------------------------------------------------------------- the binary's help

const helpCache = new Map();
const scrubbedEnv = () => {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MCPGATE_') && !['RUST_LOG', 'TEST_DATABASE_URL'].includes(k)) env[k] = v;
  return { ...env, RUST_BACKTRACE: '0', RUST_LOG: 'warn', NO_COLOR: '1' };
};

/** Parses `mcpgate PATH… --help`: subcommands, options, arguments, required flags. */
function help(path) {
  const key = path.join(' ');
  if (helpCache.has(key)) return helpCache.get(key);
  const r = spawnSync(BIN, [...path, '--help'], { env: scrubbedEnv(), encoding: 'utf8' });
  const text = r.stdout || '';
  const h = { ok: r.status === 0, text, commands: new Set(), options: new Map(), args: [], requiredFlags: [], needsCommand: false };
  let section = '';
  for (const line of text.split('\n')) {
    const s = /^(\w[\w ]*):\s*$/.exec(line);
    if (s) { section = s[1]; continue; }
    if (section === 'Commands') { const m = /^ {2}(\S+)/.exec(line); if (m && m[1] !== 'help') h.commands.add(m[1]); }
    if (section === 'Options') {
      const m = /^\s+(?:-(\w), )?--([\w-]+)(?: (<[^>]+>|\[<[^>]+>\]))?/.exec(line);
      if (m) {
        const value = !m[3] ? 'none' : m[3].startsWith('[') ? 'optional' : 'required';
        h.options.set(`--${m[2]}`, value);
        if (m[1]) h.options.set(`-${m[1]}`, value);
      }
    }
    if (section === 'Arguments') { const m = /^\s+(<[^>]+>|\[[^\]]+\])(\.\.\.)?/.exec(line); if (m) h.args.push({ required: m[1].startsWith('<'), variadic: !!m[2] }); }
  }
  const usage = /^Usage: (.*)$/m.exec(text)?.[1] || '';
  let depth = 0;
  for (const w of usage.split(/\s+/)) {
    if (depth === 0 && /^--[\w-]+$/.test(w)) h.requiredFlags.push(w);
    if (depth === 0 && w === '<COMMAND>') h.needsCommand = true;
    depth += (w.match(/\[/g) || []).length - (w.match(/\]/g) || []).length;
  }
  h.options.set('-h', 'none'); h.options.set('--help', 'none');
  helpCache.set(key, h);
  return h;
}

/** Checks an mcpgate command's words against --help; returns the problems, and whether
 *  a positional argument is a placeholder in capitals. */
function checkFlags(words, { lenient = false } = {}) {
  const problems = [];
  const path = [];
  let h = help(path);
  const used = new Set();
  const positionals = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i].word;
    if (w === '--') break;
    if (/^--?[A-Za-z]/.test(w)) {
      const name = w.split('=')[0];
      const takes = h.options.get(name);
      if (!takes) { problems.push(`\`mcpgate ${[...path, '--help'].join(' ')}\` lists no ${name}`); continue; }
      used.add(name);
      if (takes === 'required' && !w.includes('=')) i++;
      continue;
    }
    if (h.commands.size && !positionals.length) {
      if (h.commands.has(w)) { path.push(w); h = help(path); continue; }
      problems.push(`\`mcpgate ${[...path, '--help'].join(' ')}\` has no subcommand ${w}`);
      return { problems, path, placeholder: false };
    }
    positionals.push(words[i]);
  }
  if (!lenient) {
    if (h.needsCommand && h.commands.size) problems.push(`mcpgate ${path.join(' ')} needs a subcommand (${[...h.commands].join(', ')})`);
    for (const f of h.requiredFlags) if (!used.has(f)) problems.push(`mcpgate ${path.join(' ')} requires ${f}`);
    const required = h.args.filter((a) => a.required).length;
    if (positionals.length < required) problems.push(`mcpgate ${path.join(' ')} requires ${required} argument(s), the line gives ${positionals.length}`);
    if (!h.args.some((a) => a.variadic) && positionals.length > h.args.length) problems.push(`mcpgate ${path.join(' ')} takes ${h.args.length} argument(s), the line gives ${positionals.length}`);
  }
  const placeholder = positionals.some((p) => !p.quoted && /^[A-Z][A-Z0-9_]*$/.test(p.word));
  return { problems, path, placeholder };
}

// ---------------------------------------------------------------- running

const freePort = () => new Promise((ok, no) => {
  const s = createServer();
  s.once('error', no);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
});

const TMP = mkdtempSync(join(tmpdir(), 'mcpgate-docs-check-'));
const BIN_DIR = join(TMP, 'bin');
mkdirSync(BIN_DIR);
// `mcpgate` on the lines' PATH: the real binary, with a serving command moved to the
// free port the check chose (DOCS_CHECK_PORT) and its metrics listener to any port.
writeFileSync(join(BIN_DIR, 'mcpgate'), `#!/usr/bin/env bash
real=${JSON.stringify(BIN)}
args=() sub="" skip=""
for a in "$@"; do
  if [[ -n $skip ]]; then [[ $skip == metrics ]] && args+=(127.0.0.1:0) || [[ $skip == listen ]] || args+=("$a"); skip=""; continue; fi
  case $a in
    --listen) [[ -n $sub && -n \${DOCS_CHECK_PORT-} ]] && { skip=listen; continue; } ;;
    --listen=*) [[ -n $sub && -n \${DOCS_CHECK_PORT-} ]] && continue ;;
    --metrics-listen) [[ -n $sub ]] && { args+=("$a"); skip=metrics; continue; } ;;
    --metrics-listen=*) [[ -n $sub ]] && { args+=(--metrics-listen=127.0.0.1:0); continue; } ;;
    --data-dir|--database|--database-file|--config|--key-encryption-key-file|--previous-key-encryption-key-file)
      [[ -z $sub ]] && { args+=("$a"); skip=keep; continue; } ;;
    -*) ;;
    *) [[ -z $sub ]] && sub=$a ;;
  esac
  args+=("$a")
done
if [[ ($sub == serve || $sub == mcp) && -n \${DOCS_CHECK_PORT-} ]]; then
  unset MCPGATE_LISTEN
  [[ -n \${MCPGATE_METRICS_LISTEN-} ]] && export MCPGATE_METRICS_LISTEN=127.0.0.1:0
  args+=(--listen "127.0.0.1:$DOCS_CHECK_PORT")
fi
exec "$real" "\${args[@]}"
`);
chmodSync(join(BIN_DIR, 'mcpgate'), 0o755);

const runEnv = (extra = {}) => ({ ...scrubbedEnv(), PATH: `${BIN_DIR}:${process.env.PATH}`, SECRET, ...extra });

async function get(url, init) {
  const r = await fetch(url, { redirect: 'manual', ...init });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

/** Starts a line holding `mcpgate serve` in the background; resolves once it answers. */
async function startServing(text, cwd) {
  const port = await freePort();
  const child = spawn('bash', ['-o', 'pipefail', '-u', '-c', text], { cwd, env: runEnv({ DOCS_CHECK_PORT: String(port) }), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => { out.stdout += d; });
  child.stderr.on('data', (d) => { out.stderr += d; });
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  let exit = null;
  exited.then((e) => { exit = e; });
  const deadline = Date.now() + 20000;
  while (!/authorization server:\s+\S+/.test(out.stdout)) {
    if (exit) return { error: `exited ${exit.code ?? exit.signal} before it served`, out };
    if (Date.now() > deadline) { stop(); return { error: 'did not print its banner within 20 s', out }; }
    await sleep(25);
  }
  function stop() { try { process.kill(-child.pid, 'SIGTERM'); } catch {} }
  return {
    port, out, base: `http://127.0.0.1:${port}`,
    issuer: /authorization server:\s+(\S+)/.exec(out.stdout)[1],
    async stop() {
      stop();
      const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, 10000);
      const e = await exited;
      clearTimeout(t);
      return e;
    },
  };
}

/** Runs a serving line: it must answer /healthz and publish its issuer's metadata. */
async function runServing(where, shown, text, cwd, explicitIssuer) {
  const s = await startServing(text, cwd);
  if (s.error) return fail(where, shown, s.error, s.out.stderr + s.out.stdout);
  try {
    const hz = await get(`${s.base}/healthz`);
    if (hz.status !== 200 || hz.text.trim() !== 'ok') return fail(where, shown, `/healthz answered ${hz.status} ${hz.text.slice(0, 80)}`);
    const path = new URL(s.issuer).pathname.replace(/\/$/, '');
    const md = await get(`${s.base}/.well-known/oauth-authorization-server${path}`);
    let issuer;
    try { issuer = JSON.parse(md.text).issuer; } catch {}
    if (md.status !== 200 || issuer !== s.issuer) return fail(where, shown, `metadata at /.well-known/oauth-authorization-server${path}: ${md.status}, issuer ${issuer}, banner says ${s.issuer}`);
    if (explicitIssuer && explicitIssuer.replace(/\/$/, '') !== s.issuer) return fail(where, shown, `the line gives the public URL ${explicitIssuer}, the banner says ${s.issuer}`);
    return s;
  } finally {
    const e = await s.stop();
    if (e.code !== 0 && e.signal !== 'SIGTERM') fail(where, shown, `did not stop cleanly on SIGTERM (${e.code ?? e.signal})`, s.out.stderr);
  }
}

// ---------------------------------------------------------------- checks per page

const written = new Set(); // files the pages wrote (absolute), which `sh FILE` may run

async function checkBlock(page, block, cwd) {
  const where = (n) => `${page.rel}:${n}`;
  const marker = block.marker?.kind;
  if (marker === 'file') {
    const arg = block.marker.arg;
    if (arg.startsWith('/') && !SANDBOXED.some((p) => arg.startsWith(p))) return fail(where(block.start), arg, `a file the check writes must be relative or under ${SANDBOXED.join(', ')}`);
    const dest = arg.startsWith('/') ? sandbox(arg, cwd) : resolve(cwd, arg);
    mkdirSync(dirname(dest), { recursive: true });
    let content = sandbox(block.lines.map((l) => l.text).join('\n') + '\n', cwd);
    content = content.replace(/^(\s*metrics_listen\s*=\s*)"[^"]*"/m, '$1"127.0.0.1:0"');
    writeFileSync(dest, content);
    written.add(dest);
    log(`${where(block.start)}: wrote ${block.marker.arg}`);
  }
  if (!SHELL_INFO.has(block.info)) return;
  for (const line of commandLines(block)) {
    const cmds = simpleCommands(line.text);
    const mcp = cmds.filter((c) => c.mcpgate);
    // repository paths named by any command must exist
    for (const c of cmds) for (const w of [c.words[0], ...c.args].filter(Boolean)) {
      if (/^(\.\/)?(scripts|deploy|crates|tests-e2e|docs)\/[\w./-]*$/.test(w.word)) {
        counts.paths++;
        if (!existsSync(join(ROOT, w.word))) fail(where(line.n), line.text, `${w.word} does not exist in the repository`);
      }
    }
    // cargo commands name real packages and test targets
    for (const c of cmds.filter((c) => c.cmd === 'cargo' && !c.mcpgate)) checkCargo(where(line.n), line.text, c);
    if (marker === 'skip') { counts.skipped += cmds.length; log(`${where(line.n)}: skipped (${block.marker.arg}): ${line.text}`); continue; }
    // static check of every mcpgate command
    const why = [];
    for (const c of mcp) {
      const { problems, path, placeholder } = checkFlags(c.mcpgate);
      c.path = path;
      for (const p of problems) fail(where(line.n), line.text, p);
      if (problems.length) why.push('it does not parse');
      if (placeholder) why.push('a placeholder argument');
      if (path[0] === 'mcp') why.push('mcpgate mcp needs an authorization server to discover');
      const words = [...Object.entries(c.env).map(([k, v]) => `${k}=${v}`), ...c.mcpgate.map((w) => w.word)];
      if (words.some((w) => /^(--database(-file)?|MCPGATE_DATABASE_URL(_FILE)?=)/.test(w) || /postgres(ql)?:\/\//.test(w))) why.push('PostgreSQL');
    }
    const others = cmds.filter((c) => !c.mcpgate);
    for (const c of others) {
      const runnableShell = ['sh', 'bash'].includes(c.cmd) && c.args.length === 1 && written.has(sandbox(c.args[0].word, cwd));
      if (!HARMLESS.has(c.cmd) && !runnableShell) why.push(`${c.cmd ?? 'an assignment'} is not run by the check`);
    }
    const foreign = foreignPaths(line.text);
    if (foreign.length) why.push(`names ${foreign.join(', ')}`);
    const worth = others.filter((c) => ['sh', 'bash', 'diff', 'cat'].includes(c.cmd));
    if (marker === 'file') { counts.checked += mcp.length; if (mcp.length) log(`${where(line.n)}: checked for flags (in the file ${block.marker.arg}): ${line.text}`); continue; }
    if (marker === 'flags-only' || why.length || !mcp.length && !worth.length) {
      counts.checked += mcp.length;
      counts.skipped += others.length;
      log(`${where(line.n)}: ${mcp.length ? 'checked for flags' : 'skipped'} (${marker ? `${marker} ${block.marker.arg}` : why.join('; ') || 'no mcpgate command'}): ${line.text}`);
      continue;
    }
    // run it
    const text = sandbox(cargoToMcpgate(line.text), cwd);
    const serving = mcp.some((c) => c.path[0] === 'serve');
    const scriptCommands = others.filter((c) => ['sh', 'bash'].includes(c.cmd)).map((c) => readFileSync(sandbox(c.args[0].word, cwd), 'utf8'))
      .reduce((n, body) => n + body.split('\n').filter((l) => /^\s*mcpgate\s/.test(l)).length, 0);
    counts.run += mcp.length + scriptCommands + worth.length;
    log(`${where(line.n)}: run${serving ? ' (serving)' : ''}: ${line.text}`);
    if (serving) {
      const explicit = /--public-url[ =](\S+)/.exec(line.text)?.[1] || /MCPGATE_PUBLIC_URL=(\S+)/.exec(line.text)?.[1];
      await runServing(where(line.n), line.text, text, cwd, explicit && !explicit.includes('$') ? explicit.replace(/^["']|["']$/g, '') : null);
    } else {
      const r = spawnSync('bash', ['-o', 'pipefail', '-u', '-e', '-c', text], { cwd, env: runEnv(), encoding: 'utf8', timeout: 60000 });
      if (r.status !== 0) fail(where(line.n), line.text, `exited ${r.status ?? r.signal}`, (r.stderr || '') + (r.stdout || ''));
    }
  }
}

let cargoMeta;
function checkCargo(where, shown, c) {
  counts.cargo++;
  if (cargoMeta === undefined) {
    try {
      const m = JSON.parse(execFileSync('cargo', ['metadata', '--no-deps', '--format-version', '1', '--offline'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
      cargoMeta = new Map(m.packages.map((p) => [p.name, new Set(p.targets.filter((t) => t.kind.includes('test')).map((t) => t.name))]));
    } catch { cargoMeta = null; console.log('docs-check: cargo metadata failed: cargo commands not checked'); }
  }
  if (!cargoMeta) return;
  const a = c.args.map((w) => w.word);
  const pkgs = a.flatMap((w, i) => (w === '-p' || w === '--package' ? [a[i + 1]] : []));
  for (const p of pkgs) if (!cargoMeta.has(p)) fail(where, shown, `cargo: no package ${p} in the workspace`);
  const tests = a.flatMap((w, i) => (w === '--test' ? [a[i + 1]] : []));
  for (const t of tests) if (!pkgs.some((p) => cargoMeta.get(p)?.has(t))) fail(where, shown, `cargo: no test target ${t} in ${pkgs.join(', ') || 'the named packages'}`);
  for (const [i, w] of a.entries()) if (w === '--path' && !existsSync(join(ROOT, a[i + 1]))) fail(where, shown, `cargo: --path ${a[i + 1]} does not exist`);
}

/** Inline `mcpgate …` (or `serve --flag`, `idp add --flag` …) in the text. */
function checkInline(page) {
  const top = help([]).commands;
  for (const { n, text } of page.inline) {
    let t = text.trim();
    const first = t.split(/\s+/)[0];
    if (first !== 'mcpgate') {
      if (!first.split('|').every((w) => top.has(w)) || !/\s--[a-z]/.test(t)) continue;
      t = `mcpgate ${t}`;
    }
    let words = t.replace(/[()]/g, ' ').split(/\s+/).filter((w) => w && w !== '|' && w !== '…').slice(1);
    // `mcpgate <subcommand…> --help`: a placeholder in angle brackets ends what can be checked
    const open = words.findIndex((w) => w.startsWith('<'));
    if (open >= 0) words = words.slice(0, open);
    // `user add|passwd --password-file`: each alternative in turn
    const variants = [[]];
    for (const w of words) {
      const alts = !w.startsWith('-') && w.includes('|') ? w.split('|') : [w];
      const next = [];
      for (const v of variants) for (const a of alts) next.push([...v, a]);
      variants.splice(0, variants.length, ...next);
    }
    for (const v of variants) {
      const { problems } = checkFlags(v.map((w) => ({ word: w.replace(/^["']|["']$/g, ''), quoted: false })), { lenient: true });
      for (const p of problems) fail(`${page.rel}:${n}`, `\`${text}\``, p);
      counts.checked++;
      counts.inline++;
    }
  }
}

function checkTables(page) {
  const serve = help(['serve']);
  for (const rows of page.tables) {
    for (const { n, text } of rows.slice(2)) {
      const first = text.split('|')[1] || '';
      for (const f of first.match(/--[a-z][a-z0-9-]*/g) || []) if (!serve.options.has(f)) fail(`${page.rel}:${n}`, f, '`mcpgate serve --help` lists no such flag');
    }
  }
}

/** Every file the source tree holds as text, once, for the variable names. */
let sourceText;
function source() {
  if (sourceText) return sourceText;
  const parts = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (['node_modules', 'target', '.git', '.venv', 'screenshots'].includes(e.name)) continue;
      const p = join(d, e.name);
      if (p === import.meta.filename) continue; // this file names variables it does not define
      if (e.isDirectory()) walk(p);
      else if (/\.(rs|mjs|js|py|toml|service|conf|sh)$/.test(e.name) || !e.name.includes('.')) { try { if (statSync(p).size < 2e6) parts.push(readFileSync(p, 'utf8')); } catch {} }
    }
  };
  for (const d of ['crates', 'scripts', 'tests-e2e', 'deploy', '.ci']) if (existsSync(join(ROOT, d))) walk(join(ROOT, d));
  sourceText = parts.join('\n');
  return sourceText;
}

function checkVariablesAndLinks(page, byRel) {
  const text = readFileSync(join(ROOT, page.rel), 'utf8');
  const seen = new Set();
  for (const m of text.matchAll(/\bMCPGATE_[A-Z0-9_]*[A-Z0-9]/g)) {
    if (seen.has(m[0])) continue;
    seen.add(m[0]);
    if (!new RegExp(`\\b${m[0]}(?![A-Z0-9_])`).test(source())) {
      const n = text.slice(0, m.index).split('\n').length;
      fail(`${page.rel}:${n}`, m[0], 'no such variable in the source (crates/, scripts/, tests-e2e/, deploy/)');
    }
  }
  for (const { n, target } of page.links) {
    if (/^[a-z]+:/i.test(target)) continue;
    const [file, anchor] = target.split('#');
    const abs = file ? resolve(ROOT, dirname(page.rel), file) : join(ROOT, page.rel);
    const rel = relative(ROOT, abs);
    if (!existsSync(abs)) { fail(`${page.rel}:${n}`, target, `the link's file ${rel} does not exist`); continue; }
    if (anchor && rel.endsWith('.md')) {
      const other = byRel.get(rel) || parsePage(rel);
      if (!anchors(other.headings).has(anchor)) fail(`${page.rel}:${n}`, target, `${rel} has no heading #${anchor}`);
    }
  }
}

// ---------------------------------------------------------------- the quick start

async function quickStart(readme) {
  const block = readme.blocks.find((b) => b.marker?.kind === 'quick-start');
  const banner = readme.blocks.find((b) => b.marker?.kind === 'banner');
  if (!block) return fail('README.md', 'quick start', 'no block marked <!-- docs-check: quick-start -->');
  const [line] = commandLines(block);
  const where = `README.md:${line.n}`;
  const dir = join(TMP, 'quick-start');
  mkdirSync(dir);
  const cmds = simpleCommands(line.text).filter((c) => c.mcpgate);
  if (cmds.length !== 1) return fail(where, line.text, 'the quick start is not one mcpgate command');
  for (const p of checkFlags(cmds[0].mcpgate).problems) fail(where, line.text, p);
  counts.run++;
  log(`${where}: quick start, in an empty directory: ${line.text}`);
  const s = await startServing(cargoToMcpgate(line.text), dir);
  if (s.error) return fail(where, line.text, s.error, s.out.stderr + s.out.stdout);
  const problems = [];
  try {
    const out = s.out.stdout;
    if (!/First run: created the administrator account\./.test(out)) problems.push('the banner does not say it created the administrator');
    if (!/^\s*username: admin\s*$/m.test(out)) problems.push('the banner does not name the username admin');
    const pw = /^\s*password: (\S+)\s*$/m.exec(out)?.[1];
    if (!pw || pw.length < 16) problems.push('the banner shows no password');
    if (!existsSync(join(dir, 'mcpgate-data', 'mcpgate.db'))) problems.push('./mcpgate-data/mcpgate.db was not created');
    const base = s.base;
    if (s.issuer !== base) problems.push(`the issuer is ${s.issuer}, not ${base}`);
    const hz = await get(`${base}/healthz`);
    if (hz.status !== 200 || hz.text.trim() !== 'ok') problems.push(`/healthz: ${hz.status}`);
    const login = await get(`${base}/login`);
    if (login.status !== 200 || !/text\/html/.test(login.headers.get('content-type')) || !/name="username"/.test(login.text) || !/name="password"/.test(login.text) || !/name="csrf"/.test(login.text))
      problems.push(`the sign-in page: ${login.status}, no form with username, password and csrf`);
    const apps = await get(`${base}/apps`);
    if (apps.status !== 303 || !/\/login/.test(apps.headers.get('location') || '')) problems.push(`/apps without a session: ${apps.status}, not a redirect to the sign-in page`);
    const md = JSON.parse((await get(`${base}/.well-known/oauth-authorization-server`)).text);
    for (const k of ['authorization_endpoint', 'token_endpoint', 'registration_endpoint', 'jwks_uri']) if (!String(md[k] || '').startsWith(base)) problems.push(`metadata: ${k} is ${md[k]}`);
    if (md.issuer !== base) problems.push(`metadata: issuer ${md.issuer}`);
    if (JSON.stringify(md.code_challenge_methods_supported) !== '["S256"]') problems.push('metadata: PKCE methods are not exactly S256');
    const prm = JSON.parse((await get(`${base}/.well-known/oauth-protected-resource/mcp`)).text);
    if (prm.resource !== `${base}/mcp` || !prm.authorization_servers?.includes(base)) problems.push(`protected-resource metadata: ${JSON.stringify(prm)}`);
    for (const sc of ['op:add', 'op:sub', 'op:mult', 'op:div']) if (!prm.scopes_supported?.includes(sc)) problems.push(`protected-resource metadata lacks ${sc}`);
    const mcp = await get(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    const challenge = mcp.headers.get('www-authenticate') || '';
    if (mcp.status !== 401 || !challenge.includes(`resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`)) problems.push(`/mcp without a token: ${mcp.status} ${challenge}`);
    // the banner the README shows
    if (!banner) problems.push('no block marked <!-- docs-check: banner -->');
    else {
      const outLines = out.split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
      let at = 0;
      for (const { n, text } of banner.lines) {
        const want = text.trim().replace(/\s+/g, ' ');
        if (!want || want === '…') continue;
        const re = new RegExp(`^${want.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/127\\\.0\\\.0\\\.1:8080/g, `127\\.0\\.0\\.1:${s.port}`).replace('<random, shown once>', '\\S+').replace(/^mcpgate \d+\\\.\d+\\\.\d+/, 'mcpgate [0-9.]+')}$`);
        const found = outLines.findIndex((l, i) => i >= at && re.test(l));
        if (found < 0) problems.push(`README.md:${n}: the banner has no line "${want}" (in this order)`);
        else at = found + 1;
      }
    }
  } catch (e) {
    problems.push(String(e));
  } finally {
    const e = await s.stop();
    if (e.code !== 0) problems.push(`serve did not exit 0 on SIGTERM (${e.code ?? e.signal})`);
  }
  for (const p of problems) fail(where, line.text, p, '');
  if (problems.length) console.log(indent(tail(s.out.stdout + s.out.stderr, 20), '    | '));
}

// ---------------------------------------------------------------- main

const started = Date.now();
const parsed = pages.map(parsePage);
const byRel = new Map(parsed.map((p) => [p.rel, p]));
try {
  await quickStart(byRel.get('README.md'));
  for (const page of parsed) {
    const cwd = join(TMP, page.rel.replace(/\.md$/, '').replace(/\//g, '-'));
    for (const d of SANDBOXED) mkdirSync(join(cwd, d), { recursive: true });
    for (const block of page.blocks) {
      if (['quick-start', 'banner'].includes(block.marker?.kind)) continue;
      await checkBlock(page, block, cwd);
    }
    checkInline(page);
    checkTables(page);
    checkVariablesAndLinks(page, byRel);
  }
} finally {
  if (!KEEP) rmSync(TMP, { recursive: true, force: true });
  else console.log(`docs-check: scratch directories kept in ${TMP}`);
}

log(`docs-check: ${counts.inline} inline commands among those checked; ${counts.cargo} cargo commands checked against the workspace; ${counts.paths} repository paths checked; ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (failures.length) console.log(`docs-check: ${failures.length} failure(s)`);
console.log(`docs-check: ${counts.run} commands run, ${counts.checked} checked for flags, ${counts.skipped} skipped`);
process.exit(failures.length ? 1 : 0);
