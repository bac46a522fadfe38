// A local farm for the browser tests: the real assay-coordinator (with its HTTP listener serving
// web/) and assay-worker binaries on loopback, the `assay` CLI against them, data in a temporary
// folder. Every process it starts is stopped by pid; the folder is removed.
//
// Binaries: $ASSAY_COORDINATOR_BIN, $ASSAY_WORKER_BIN, $ASSAY_CLI_BIN, or under $ASSAY_BIN_DIR
// (a CMake build folder: coordinator/assay-coordinator, worker/assay-worker, cli/assay).
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, existsSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceRoot = path.resolve(here, '../..');
const binDir = process.env.ASSAY_BIN_DIR || path.join(sourceRoot, 'build/ci');
export const bins = {
  coordinator: process.env.ASSAY_COORDINATOR_BIN || path.join(binDir, 'coordinator/assay-coordinator'),
  worker: process.env.ASSAY_WORKER_BIN || path.join(binDir, 'worker/assay-worker'),
  cli: process.env.ASSAY_CLI_BIN || path.join(binDir, 'cli/assay'),
};

// Tokens of the farm's token file: one per role the tests play.
export const TOKENS = {
  admin: 'dash-admin-0123456789abcdef0123456789',
  read: 'dash-read-0123456789abcdef0123456789a',
  worker: 'dash-worker-0123456789abcdef012345678',
};
const TOKEN_FILE = `${TOKENS.admin} submit,read,admin,cache-read,cache-write\n`
  + `${TOKENS.read} read\n${TOKENS.worker} worker,cache-read,cache-write\n`;

// Calls `check` until it returns a truthy value or `ms` pass; its value, or an error naming `what`.
export async function waitFor(what, check, ms = 30000, every = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

function exitOf(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', resolve));
}

// A signal (SIGTERM), up to 10 s for it to end, then SIGKILL.
async function stopProcess(child, signal = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const ended = await Promise.race([exitOf(child).then(() => true), new Promise((r) => setTimeout(() => r(false), 10000))]);
  if (!ended) {
    child.kill('SIGKILL');
    await exitOf(child);
  }
}

// Processes still running and folders still there when the test process exits (a run cut short):
// the processes are killed by pid, the folders removed.
const running = new Set();
const folders = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  if (process.env.ASSAY_KEEP_FARM !== '1') for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

export class Farm {
  constructor({ tokens = true } = {}) {
    for (const [what, file] of Object.entries(bins)) {
      if (!existsSync(file)) throw new Error(`no ${what} binary at ${file}: build it, or set ASSAY_BIN_DIR to the build folder`);
    }
    this.dir = mkdtempSync(path.join(tmpdir(), 'assay-browser-'));
    folders.add(this.dir);
    this.tokens = tokens;
    this.processes = [];
    this.workers = new Map();
    if (tokens) {
      writeFileSync(path.join(this.dir, 'tokens'), TOKEN_FILE, { mode: 0o600 });
      for (const [role, token] of Object.entries(TOKENS)) writeFileSync(path.join(this.dir, `${role}.token`), `${token}\n`, { mode: 0o600 });
    }
  }

  start(name, argv) {
    const log = openSync(path.join(this.dir, `${name}.log`), 'a');
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', log, log] });
    closeSync(log);
    child.name = name;
    this.processes.push(child);
    running.add(child);
    child.once('exit', () => running.delete(child));
    return child;
  }

  logOf(name) {
    try { return readFileSync(path.join(this.dir, `${name}.log`), 'utf8'); } catch { return ''; }
  }

  async readPort(file, child, what) {
    const text = await waitFor(`${what} to write its port`, () => {
      if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${this.logOf(child.name).slice(-2000)}`);
      const t = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
      return /^\d+$/.test(t) ? t : null;
    }, 30000);
    return Number(text);
  }

  async startCoordinator(extra = []) {
    const portFile = path.join(this.dir, 'port');
    const httpPortFile = path.join(this.dir, 'http-port');
    const argv = [bins.coordinator, '--listen', '127.0.0.1:0', '--port-file', portFile, '--data', path.join(this.dir, 'data'),
      '--http-listen', '127.0.0.1:0', '--http-port-file', httpPortFile, '--web-root', path.join(sourceRoot, 'web'),
      '--heartbeat-seconds', '0.5', '--lease-seconds', '5', ...extra];
    if (this.tokens) argv.push('--token-file', path.join(this.dir, 'tokens'));
    this.coordinator = this.start('coordinator', argv);
    this.port = await this.readPort(portFile, this.coordinator, 'the coordinator');
    this.httpPort = await this.readPort(httpPortFile, this.coordinator, "the coordinator's HTTP listener");
    this.address = `127.0.0.1:${this.port}`;
    this.url = `http://127.0.0.1:${this.httpPort}`;
  }

  async startWorker(id, { slots = 2, labels = [] } = {}) {
    const argv = [bins.worker, '--coordinator', this.address, '--id', id, '--slots', String(slots),
      '--work-dir', path.join(this.dir, `work-${id}`), '--executor', 'process'];
    for (const l of labels) argv.push('--label', l);
    if (this.tokens) argv.push('--token-file', path.join(this.dir, 'worker.token'));
    // The workers and their steps run at a lower priority (nice 10, which `nice` sets and then
    // becomes the worker: its pid is the worker's). On a 2-core machine eight running steps would
    // otherwise take the browser's renderer off the CPU for a hundred milliseconds at a time, and
    // the page's timing checks would measure the scheduler instead of the page; a user's browser
    // is seldom on a build machine.
    const child = this.start(`worker-${id}`, ['nice', '-n', '10', ...argv]);
    this.workers.set(id, child);
    await waitFor(`worker ${id} to connect`, async () => {
      if (child.exitCode !== null) throw new Error(`worker ${id} exited: ${this.logOf(child.name).slice(-2000)}`);
      const list = await this.workersJson();
      return list.some((w) => w.id === id && w.connected);
    }, 30000, 200);
  }

  // Runs the CLI with the admin token; {code, out, err}.
  cli(args, { role = 'admin', timeout = 180000 } = {}) {
    const argv = ['--coordinator', this.address];
    if (this.tokens) argv.push('--token-file', path.join(this.dir, `${role}.token`));
    argv.push(...args);
    return new Promise((resolve) => {
      execFile(bins.cli, argv, { timeout, maxBuffer: 64 << 20 }, (error, out, err) => {
        resolve({ code: error ? (error.code ?? 1) : 0, out, err });
      });
    });
  }

  async workersJson() {
    const r = await this.cli(['--json', 'workers']);
    if (r.code !== 0) throw new Error(`assay workers: ${r.err}`);
    const parsed = JSON.parse(r.out);
    return Array.isArray(parsed) ? parsed : parsed.workers || [];
  }

  // Writes files (path -> content) into a new tree and returns its folder.
  writeTree(name, files) {
    const root = path.join(this.dir, 'trees', name);
    for (const [file, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      writeFileSync(path.join(root, file), content);
    }
    return root;
  }

  // Submits a tree (without waiting) and returns the job id.
  async submit(tree, labels = {}) {
    const args = ['submit', tree];
    for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
    const r = await this.cli(args);
    if (r.code !== 0) throw new Error(`assay submit failed (${r.code}): ${r.err}${r.out}`);
    return r.out.trim().split('\n').pop().trim();
  }

  async waitJob(id, timeout = 180000) {
    return this.cli(['wait', id], { timeout });
  }

  // The HTTP API from the test itself (not the page), with a role's token.
  async api(pathname, { role = 'admin', method = 'GET', body } = {}) {
    const headers = {};
    if (this.tokens && role) headers.Authorization = `Bearer ${TOKENS[role]}`;
    if (body) headers['Content-Type'] = 'application/json';
    return fetch(`${this.url}${pathname}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  }

  async stop() {
    // SIGINT: a worker stops at once, handing back what it runs (SIGTERM would let it finish first).
    for (const child of this.workers.values()) await stopProcess(child, 'SIGINT');
    for (const child of this.processes) await stopProcess(child);
    if (process.env.ASSAY_KEEP_FARM !== '1') rmSync(this.dir, { recursive: true, force: true });
    folders.delete(this.dir);
  }
}
