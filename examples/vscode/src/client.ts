/**
 * A client of Candor's ingest socket (protocol version 1).
 *
 * Messages are newline-delimited JSON objects, `{"v":1,"kind":…,"ts":…,…}`;
 * the daemon answers each with one line, in order: `{"ok":true}`, or
 * `{"ok":false,"error":"…"}` with `"not_recorded":"<reason>"` when the
 * message was valid but consent, a pause, the workspace rules or the rate
 * limit kept it out.
 *
 * - Messages sent while the socket is connecting (or down) wait in a
 *   bounded queue; ones that waited longer than `maxAgeMs` are dropped
 *   rather than recorded late, since the daemon stamps events on arrival.
 * - `ts` is stamped when a line is written, so it is always "now".
 * - A connection that fails or ends is retried with exponential back-off
 *   (with jitter), forever, until `close()`. Nothing here throws or
 *   reports errors to the user: a daemon that is not running is normal.
 * - Replies are counted: ok, not recorded (by reason), errors (the daemon
 *   refused the message as invalid), with the last of each kept.
 *
 * No `vscode` import: this module runs under plain Node for its tests.
 */

import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export const PROTOCOL_VERSION = 1;
export const SOCKET_NAME = "ingest.sock";

/** A message: its kind and fields; `v` and `ts` are added when sent. */
export interface Message {
  kind: string;
  [field: string]: unknown;
}

/** One reply line from the daemon. */
export interface Reply {
  ok: boolean;
  error?: string;
  not_recorded?: string;
}

export interface ClientOptions {
  socketPath: string;
  /** Messages kept while not connected; the oldest go first (5000). */
  maxQueue?: number;
  /** Queued messages older than this are dropped, not sent (30 s). */
  maxAgeMs?: number;
  /** First retry delay (250 ms), doubled per failure up to `maxBackoffMs` (30 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Called after each successful connection, before the queue is sent. */
  onConnect?: () => void;
  /** Called for each reply with the message it answers (when known). */
  onReply?: (reply: Reply, line: string | undefined) => void;
  /** Optional debug log; never used for user-facing errors. */
  log?: (line: string) => void;
}

export interface ClientStats {
  socketPath: string;
  connected: boolean;
  /** Successful connections so far. */
  connects: number;
  /** Lines written to the socket. */
  sent: number;
  ok: number;
  notRecorded: number;
  notRecordedBy: Record<string, number>;
  /** Replies refusing a message as invalid (a bug in the sender). */
  errors: number;
  /** Messages never sent: queue full, waited too long, or client closed. */
  dropped: number;
  /** Lines written whose connection ended before their reply. */
  unanswered: number;
  queued: number;
  inFlight: number;
  lastError?: string;
  lastNotRecorded?: string;
  /** Why the last connection attempt failed (e.g. ENOENT: no daemon). */
  lastConnectError?: string;
}

interface Queued {
  msg?: Message;
  raw?: string;
  at: number;
}

/** Stop writing while this many bytes wait in the socket's buffer. */
const HIGH_WATER = 4 * 1024 * 1024;

/**
 * Where the daemon's ingest socket is: the setting, else
 * `$CANDOR_INGEST_SOCKET`, else `$CANDOR_DATA_DIR/ingest.sock`, else
 * `$XDG_DATA_HOME/candor/ingest.sock`, else
 * `~/.local/share/candor/ingest.sock`.
 */
export function resolveSocketPath(
  setting: string | undefined,
  env: Record<string, string | undefined> = process.env,
  home: string = os.homedir(),
): string {
  const tilde = (p: string): string => (p === "~" ? home : p.startsWith("~/") ? path.join(home, p.slice(2)) : p);
  const set = (v: string | undefined): v is string => typeof v === "string" && v.trim() !== "";
  if (set(setting)) {
    return tilde(setting.trim());
  }
  if (set(env.CANDOR_INGEST_SOCKET)) {
    return tilde(env.CANDOR_INGEST_SOCKET);
  }
  if (set(env.CANDOR_DATA_DIR)) {
    return path.join(tilde(env.CANDOR_DATA_DIR), SOCKET_NAME);
  }
  if (set(env.XDG_DATA_HOME) && path.isAbsolute(env.XDG_DATA_HOME)) {
    return path.join(env.XDG_DATA_HOME, "candor", SOCKET_NAME);
  }
  return path.join(home, ".local", "share", "candor", SOCKET_NAME);
}

/** The line for a message, stamped now. */
export function encode(msg: Message, now: number = Date.now()): string {
  const { kind, ...fields } = msg;
  return JSON.stringify({ v: PROTOCOL_VERSION, kind, ts: now, ...fields });
}

export class IngestClient {
  readonly socketPath: string;
  private readonly maxQueue: number;
  private readonly maxAgeMs: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly opts: ClientOptions;

  private sock: net.Socket | undefined;
  private connected = false;
  private closed = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private queue: Queued[] = [];
  /** Lines written and not yet answered, oldest first. */
  private inFlight: string[] = [];
  private partial = "";
  private waiters: Array<(done: boolean) => void> = [];
  private readonly s: Omit<ClientStats, "socketPath" | "connected" | "queued" | "inFlight"> = {
    connects: 0,
    sent: 0,
    ok: 0,
    notRecorded: 0,
    notRecordedBy: {},
    errors: 0,
    dropped: 0,
    unanswered: 0,
  };

  constructor(opts: ClientOptions) {
    this.opts = opts;
    this.socketPath = opts.socketPath;
    this.maxQueue = opts.maxQueue ?? 5000;
    this.maxAgeMs = opts.maxAgeMs ?? 30_000;
    this.minBackoffMs = opts.minBackoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.connect();
  }

  /** Sends a message (now, or once connected). Never throws. */
  send(msg: Message): void {
    this.enqueue({ msg, at: Date.now() });
  }

  /** Sends a line as it is (for tests and diagnostics). Never throws. */
  sendRaw(line: string): void {
    this.enqueue({ raw: line.replace(/\n/g, " "), at: Date.now() });
  }

  get isConnected(): boolean {
    return this.connected;
  }

  stats(): ClientStats {
    return {
      socketPath: this.socketPath,
      connected: this.connected,
      queued: this.queue.length,
      inFlight: this.inFlight.length,
      ...this.s,
      notRecordedBy: { ...this.s.notRecordedBy },
    };
  }

  /**
   * Resolves true once every queued message was sent and answered, or
   * false after `timeoutMs` (e.g. when no daemon is running).
   */
  flush(timeoutMs = 5000): Promise<boolean> {
    if (this.idle()) {
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      let done = false;
      const finish = (v: boolean): void => {
        if (!done) {
          done = true;
          clearTimeout(t);
          resolve(v);
        }
      };
      const t = setTimeout(() => finish(false), timeoutMs);
      this.waiters.push(finish);
    });
  }

  /** Stops: drops what is queued, ends the connection, no more retries. */
  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    const wasIdle = this.idle();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.s.dropped += this.queue.length;
    this.queue = [];
    const sock = this.sock;
    this.sock = undefined;
    this.connected = false;
    if (sock) {
      try {
        sock.end();
        sock.destroySoon?.();
      } catch {
        // ending a broken socket: nothing to do
      }
    }
    this.s.unanswered += this.inFlight.length;
    this.inFlight = [];
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) {
      f(wasIdle);
    }
  }

  dispose(): void {
    this.close();
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.inFlight.length === 0;
  }

  private wake(): void {
    const idle = this.idle();
    if (idle) {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) {
        f(idle);
      }
    }
  }

  private log(line: string): void {
    try {
      this.opts.log?.(line);
    } catch {
      // a logger must not break the client
    }
  }

  private enqueue(q: Queued): void {
    if (this.closed) {
      this.s.dropped++;
      return;
    }
    this.queue.push(q);
    while (this.queue.length > this.maxQueue) {
      this.queue.shift();
      this.s.dropped++;
    }
    if (this.connected) {
      this.drain();
    }
  }

  private connect(): void {
    if (this.closed || this.sock) {
      return;
    }
    let sock: net.Socket;
    try {
      sock = net.createConnection({ path: this.socketPath });
    } catch (e) {
      this.s.lastConnectError = errorText(e);
      this.retry();
      return;
    }
    this.sock = sock;
    sock.setEncoding("utf8");
    sock.on("connect", () => {
      if (this.sock !== sock) {
        return;
      }
      this.connected = true;
      this.failures = 0;
      this.s.connects++;
      this.log(`connected to ${this.socketPath}`);
      try {
        this.opts.onConnect?.();
      } catch (e) {
        this.log(`onConnect: ${errorText(e)}`);
      }
      this.drain();
    });
    sock.on("data", (chunk: string) => {
      if (this.sock === sock) {
        this.receive(chunk);
      }
    });
    sock.on("drain", () => {
      if (this.sock === sock) {
        this.drain();
      }
    });
    sock.on("error", (e: Error) => {
      if (this.sock === sock) {
        this.s.lastConnectError = errorText(e);
      }
    });
    sock.on("close", () => {
      if (this.sock !== sock) {
        return;
      }
      this.sock = undefined;
      this.connected = false;
      if (this.partial.trim() !== "") {
        this.receive("\n");
      }
      this.partial = "";
      this.s.unanswered += this.inFlight.length;
      this.inFlight = [];
      this.dropStale();
      this.wake();
      this.retry();
    });
  }

  private retry(): void {
    if (this.closed || this.timer) {
      return;
    }
    const base = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    const delay = Math.round(base * (0.5 + Math.random() * 0.5));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
    this.timer.unref?.();
  }

  private dropStale(): void {
    const now = Date.now();
    const before = this.queue.length;
    this.queue = this.queue.filter((q) => now - q.at <= this.maxAgeMs);
    this.s.dropped += before - this.queue.length;
  }

  private drain(): void {
    const sock = this.sock;
    if (!sock || !this.connected) {
      return;
    }
    this.dropStale();
    while (this.queue.length > 0 && sock.writableLength < HIGH_WATER) {
      const q = this.queue.shift() as Queued;
      let line: string;
      try {
        line = q.raw ?? encode(q.msg as Message);
      } catch (e) {
        this.s.dropped++;
        this.s.lastError = `not sent: ${errorText(e)}`;
        continue;
      }
      this.inFlight.push(line);
      this.s.sent++;
      try {
        sock.write(line + "\n");
      } catch (e) {
        this.s.lastConnectError = errorText(e);
        break;
      }
    }
    this.wake();
  }

  private receive(chunk: string): void {
    this.partial += chunk;
    let nl: number;
    while ((nl = this.partial.indexOf("\n")) !== -1) {
      const text = this.partial.slice(0, nl).trim();
      this.partial = this.partial.slice(nl + 1);
      if (text !== "") {
        this.reply(text);
      }
    }
    this.wake();
  }

  private reply(text: string): void {
    // A reply that answers no message of ours (the daemon refusing the
    // connection itself) is still counted, as an error.
    const line = this.inFlight.shift();
    let r: Reply;
    try {
      const v: unknown = JSON.parse(text);
      r = typeof v === "object" && v !== null ? (v as Reply) : { ok: false, error: `unexpected reply: ${text}` };
    } catch {
      r = { ok: false, error: `unreadable reply: ${text.slice(0, 200)}` };
    }
    if (r.ok === true) {
      this.s.ok++;
    } else if (typeof r.not_recorded === "string") {
      this.s.notRecorded++;
      this.s.notRecordedBy[r.not_recorded] = (this.s.notRecordedBy[r.not_recorded] ?? 0) + 1;
      this.s.lastNotRecorded = String(r.error ?? r.not_recorded);
    } else {
      this.s.errors++;
      this.s.lastError = String(r.error ?? text);
      this.log(`refused: ${this.s.lastError}`);
    }
    try {
      this.opts.onReply?.(r, line);
    } catch (e) {
      this.log(`onReply: ${errorText(e)}`);
    }
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    return e.message;
  }
  return String(e);
}
