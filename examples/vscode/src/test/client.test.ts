// The ingest client: silent without a daemon, reconnecting with back-off
// (against a small local server), and against a REAL Candor daemon when
// CANDOR_INGEST_SOCKET and CANDOR_TEST_FILE are set (tests/vscode.rs sets
// them): focus, a stream of edits made by the same conversion the extension
// uses, cursor, selection, diagnostics and a save, every reply ok; a
// malformed line answered with an error on a connection that stays usable;
// files outside the workspace or git-ignored reported as not recorded.

import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";

import { IngestClient, Message, Reply, encode, resolveSocketPath } from "../client";
import { ContentChange, Shadows, byteColumn, editMessages } from "../edits";
import { randomChanges, randomText, rng } from "./gen";

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) {
      assert.fail(`timed out waiting for ${what}`);
    }
    await sleep(10);
  }
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "candor-vscode-"));
}

test("the socket path: setting, then CANDOR_INGEST_SOCKET, CANDOR_DATA_DIR, XDG_DATA_HOME, ~/.local/share", () => {
  const env = {
    CANDOR_INGEST_SOCKET: "/run/a.sock",
    CANDOR_DATA_DIR: "/data/candor",
    XDG_DATA_HOME: "/xdg",
  };
  assert.equal(resolveSocketPath(" /set/s.sock ", env, "/home/u"), "/set/s.sock");
  assert.equal(resolveSocketPath("~/s.sock", env, "/home/u"), "/home/u/s.sock");
  assert.equal(resolveSocketPath("", env, "/home/u"), "/run/a.sock");
  assert.equal(resolveSocketPath(undefined, { ...env, CANDOR_INGEST_SOCKET: "" }, "/home/u"), "/data/candor/ingest.sock");
  assert.equal(resolveSocketPath(undefined, { XDG_DATA_HOME: "/xdg" }, "/home/u"), "/xdg/candor/ingest.sock");
  assert.equal(resolveSocketPath(undefined, { XDG_DATA_HOME: "relative" }, "/home/u"), "/home/u/.local/share/candor/ingest.sock");
  assert.equal(resolveSocketPath(undefined, {}, "/home/u"), "/home/u/.local/share/candor/ingest.sock");
});

test("a message line carries v, kind and a current ts first", () => {
  const line = encode({ kind: "editor.cursor", file: "/w/a", line: 1, col: 2 }, 1764340000123);
  assert.equal(line, '{"v":1,"kind":"editor.cursor","ts":1764340000123,"file":"/w/a","line":1,"col":2}');
});

test("without a daemon the client stays silent, queues boundedly and never throws", { timeout: 20_000 }, async (t) => {
  const dir = tempDir();
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const regular = path.join(dir, "not-a-socket");
  fs.writeFileSync(regular, "");
  for (const socketPath of [path.join(dir, "missing.sock"), path.join(dir, "no/such/dir/ingest.sock"), regular]) {
    const client = new IngestClient({ socketPath, maxQueue: 10, minBackoffMs: 10, maxBackoffMs: 40 });
    for (let i = 0; i < 25; i++) {
      client.send({ kind: "editor.cursor", file: "/w/a", line: i, col: 0 });
    }
    client.sendRaw("not even json");
    await sleep(300);
    const s = client.stats();
    assert.equal(s.connected, false);
    assert.equal(s.sent, 0);
    assert.equal(s.queued, 10);
    assert.equal(s.dropped, 16);
    assert.equal(s.errors, 0);
    assert.ok(s.lastConnectError, "the reason is kept for the status command");
    assert.equal(await client.flush(100), false);
    client.close();
    client.send({ kind: "editor.cursor", file: "/w/a", line: 0, col: 0 });
    assert.equal(client.stats().dropped, 27);
    client.close();
  }
});

/** A stand-in daemon: answers each line with `answer(line)`. */
function fakeDaemon(socketPath: string, answer: (line: string) => Reply): Promise<{ server: net.Server; lines: string[]; conns: net.Socket[] }> {
  const lines: string[] = [];
  const conns: net.Socket[] = [];
  const server = net.createServer((sock) => {
    conns.push(sock);
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("error", () => undefined);
    sock.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        sock.write(JSON.stringify(answer(line)) + "\n");
      }
    });
  });
  return new Promise((resolve) => server.listen(socketPath, () => resolve({ server, lines, conns })));
}

test("messages queued before the daemon starts are sent once it does, in order; a lost connection is retried", { timeout: 20_000 }, async (t) => {
  const dir = tempDir();
  const socketPath = path.join(dir, "ingest.sock");
  const servers: Array<{ server: net.Server; conns: net.Socket[] }> = [];
  const clients: IngestClient[] = [];
  t.after(async () => {
    for (const c of clients) {
      c.close();
    }
    for (const s of servers) {
      s.conns.forEach((c) => c.destroy());
      await new Promise((r) => s.server.close(r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let connects = 0;
  const client = new IngestClient({ socketPath, minBackoffMs: 20, maxBackoffMs: 80, onConnect: () => connects++ });
  clients.push(client);
  for (let i = 0; i < 5; i++) {
    client.send({ kind: "editor.cursor", file: "/w/a", line: i, col: 0 });
  }
  await sleep(250);
  assert.equal(client.stats().sent, 0);
  const answers: Reply[] = [
    { ok: true },
    { ok: false, error: "not recorded: capture is paused", not_recorded: "paused" },
    { ok: false, error: "editor.cursor has no field `colour`" },
  ];
  let n = 0;
  const d = await fakeDaemon(socketPath, () => answers[n++ % 3] as Reply);
  servers.push(d);
  assert.equal(await client.flush(3000), true);
  let s = client.stats();
  assert.equal(s.connects, 1);
  assert.equal(connects, 1);
  assert.deepEqual(
    d.lines.map((l) => JSON.parse(l).line),
    [0, 1, 2, 3, 4],
  );
  for (const l of d.lines) {
    const m = JSON.parse(l);
    assert.equal(m.v, 1);
    assert.ok(Math.abs(m.ts - Date.now()) < 5000);
  }
  assert.deepEqual([s.ok, s.notRecorded, s.errors], [2, 2, 1]);
  assert.deepEqual(s.notRecordedBy, { paused: 2 });
  assert.equal(s.lastError, "editor.cursor has no field `colour`");
  assert.equal(s.lastNotRecorded, "not recorded: capture is paused");

  // The daemon drops the connection (a restart): the client comes back.
  for (const c of d.conns) {
    c.destroy();
  }
  await waitFor("a reconnection", () => client.stats().connects === 2);
  client.send({ kind: "editor.cursor", file: "/w/a", line: 99, col: 0 });
  assert.equal(await client.flush(3000), true);
  s = client.stats();
  assert.equal(s.connects, 2);
  assert.equal(connects, 2);
  assert.equal(JSON.parse(d.lines[d.lines.length - 1] as string).line, 99);

  // Messages that waited too long are dropped, not recorded late.
  const later = path.join(dir, "later.sock");
  const late = new IngestClient({ socketPath: later, maxAgeMs: 50, minBackoffMs: 400, maxBackoffMs: 400 });
  clients.push(late);
  late.send({ kind: "editor.cursor", file: "/w/a", line: 0, col: 0 });
  await sleep(100);
  const d2 = await fakeDaemon(later, () => ({ ok: true }));
  servers.push(d2);
  await sleep(900);
  assert.equal(late.stats().connects, 1);
  assert.equal(late.stats().sent, 0);
  assert.equal(late.stats().dropped, 1);
});

const SOCKET = process.env.CANDOR_INGEST_SOCKET;
const FILE = process.env.CANDOR_TEST_FILE;
const live = SOCKET && FILE ? false : "CANDOR_INGEST_SOCKET and CANDOR_TEST_FILE are not set (tests/vscode.rs runs this against a daemon)";

/** VS Code-like events for a document: hand-picked, then random. */
function* events(initial: string): Generator<{ changes: ContentChange[]; next: string }> {
  const step = (doc: string, asc: ContentChange[]): { changes: ContentChange[]; next: string } => {
    let next = "";
    let at = 0;
    for (const c of asc) {
      next += doc.slice(at, c.rangeOffset) + c.text;
      at = c.rangeOffset + c.rangeLength;
    }
    // VS Code lists an event's changes from the end of the document.
    return { changes: [...asc].reverse(), next: next + doc.slice(at) };
  };
  let doc = initial;
  const emit = (asc: ContentChange[]): { changes: ContentChange[]; next: string } => {
    const e = step(doc, asc);
    doc = e.next;
    return e;
  };
  // Typing at the end, then an accented word, CJK and an emoji.
  for (const ch of ["\n", "c", "a", "f", "é", " ", "中", "文", " ", "😀"]) {
    yield emit([{ rangeOffset: doc.length, rangeLength: 0, text: ch }]);
  }
  // Backspace over the emoji (two UTF-16 units, four bytes).
  yield emit([{ rangeOffset: doc.length - 2, rangeLength: 2, text: "" }]);
  // Three cursors, one at the start of each of the first three lines.
  const starts = [0];
  for (let i = doc.indexOf("\n"); i !== -1 && starts.length < 3; i = doc.indexOf("\n", i + 1)) {
    starts.push(i + 1);
  }
  yield emit(starts.map((s) => ({ rangeOffset: s, rangeLength: 0, text: "// " })));
  // Replace the first "é" with an emoji with a skin tone.
  const e = doc.indexOf("é");
  yield emit([{ rangeOffset: e, rangeLength: 1, text: "👍🏽" }]);
  // A paste long enough to be split into several messages.
  let big = "\n";
  while (Buffer.byteLength(big) < 20_000) {
    big += "línea 中文 😀 — ";
  }
  yield emit([{ rangeOffset: doc.indexOf("\n") + 1, rangeLength: 0, text: big }]);
  // Delete most of the paste again, across lines.
  const from = doc.indexOf("línea");
  let to = from + big.length - 30;
  if (/[\uDC00-\uDFFF]/.test(doc[to] ?? "")) {
    to++;
  }
  yield emit([{ rangeOffset: from, rangeLength: to - from, text: "" }]);
  // Random multi-change events (format-on-type, refactorings, undo).
  const r = rng(2024);
  for (let i = 0; i < 40; i++) {
    const { changes } = randomChanges(r, doc, 1 + Math.floor(r() * 4), false, true, false);
    if (changes.length > 0) {
      yield emit(changes);
    }
  }
  // Select all and retype.
  yield emit([{ rangeOffset: 0, rangeLength: doc.length, text: randomText(rng(9), 30, false) + "\nfin ✓\n" }]);
}

test("against a real daemon", { skip: live, timeout: 120_000 }, async (t) => {
  const socketPath = SOCKET as string;
  const file = FILE as string;
  const replies: Array<{ reply: Reply; line: string | undefined }> = [];
  // What was recorded, by kind, for tests/vscode.rs to find in the store.
  const okByKind: Record<string, number> = {};
  const client = new IngestClient({
    socketPath,
    onReply: (reply, line) => {
      replies.push({ reply, line });
      if (reply.ok && line) {
        const kind = JSON.parse(line).kind as string;
        okByKind[kind] = (okByKind[kind] ?? 0) + 1;
      }
    },
  });
  t.after(() => client.close());
  const send = (m: Message): void => client.send({ ...m, editor: "vscode" });

  await t.test("focus, edits, cursor, selection, diagnostics and a save are all recorded", async () => {
    const initial = fs.readFileSync(file, "utf8");
    // Sent before the connection is up: queued, then delivered.
    send({ kind: "editor.focus", file, language: "markdown" });
    const shadows = new Shadows();
    shadows.open(file, initial);
    let doc = initial;
    let edits = 0;
    let split = false;
    for (const ev of events(initial)) {
      const conv = shadows.change(file, ev.changes, ev.next);
      assert.ok(conv);
      assert.equal(conv.method, "sorted", "VS Code's order needs no repair");
      const msgs = editMessages(file, conv.edits);
      split ||= msgs.length > conv.edits.length;
      for (const m of msgs) {
        send(m);
        edits++;
      }
      doc = ev.next;
    }
    assert.ok(split, "the long paste was split");
    assert.ok(edits > 60, `${edits} edits`);
    const lines = doc.split("\n");
    const last = lines.length - 2;
    send({ kind: "editor.cursor", file, line: last, col: byteColumn(lines[last] as string, 4) });
    send({ kind: "editor.selection", file, line: 0, col: 0, end_line: last, end_col: byteColumn(lines[last] as string, 5) });
    send({ kind: "editor.diagnostics", file, errors: 2, warnings: 1, info: 0, hints: 3 });
    send({ kind: "editor.command", command: "workbench.action.files.save", file });
    assert.equal(await client.flush(15_000), true, JSON.stringify(client.stats()));
    const s = client.stats();
    const bad = replies.filter((r) => !r.reply.ok);
    assert.deepEqual(bad, [], "every message is recorded");
    assert.equal(s.ok, s.sent);
    assert.equal(s.ok, edits + 5);
    assert.equal(s.connects, 1);
    // What VS Code writes on save: the document's text.
    fs.writeFileSync(file, doc, "utf8");
  });

  await t.test("a malformed line is answered with an error and the connection stays usable", async () => {
    const before = client.stats();
    replies.length = 0;
    client.sendRaw("this is not json");
    client.sendRaw(JSON.stringify({ v: 1, kind: "editor.edit", ts: Date.now(), file, offset: -1, deleted: 0, text: "x", editor: "vscode" }));
    client.sendRaw(JSON.stringify({ v: 1, kind: "editor.command", ts: Date.now(), command: "s/a/b/ --all", editor: "vscode" }));
    send({ kind: "editor.cursor", file, line: 0, col: 0 });
    assert.equal(await client.flush(5000), true);
    assert.equal(replies.length, 4);
    const [notJson, negative, args, cursor] = replies.map((r) => r.reply);
    assert.match(notJson?.error ?? "", /not JSON/);
    assert.match(negative?.error ?? "", /must not be negative/);
    assert.match(args?.error ?? "", /without arguments/);
    assert.deepEqual(cursor, { ok: true });
    const s = client.stats();
    assert.equal(s.errors, before.errors + 3);
    assert.match(s.lastError ?? "", /without arguments/);
    assert.equal(s.connects, 1, "the same connection");
    assert.equal(s.connected, true);
  });

  await t.test("files outside the workspaces and git-ignored files are not recorded", async () => {
    const before = client.stats();
    const outside = path.join(path.parse(file).root, "candor-vscode-test-outside", "a.txt");
    send({ kind: "editor.focus", file: outside });
    const ignored = process.env.CANDOR_TEST_IGNORED;
    if (ignored) {
      send({ kind: "editor.edit", file: ignored, offset: 0, deleted: 0, text: "never_recorded", line: 0, col: 0 });
    }
    assert.equal(await client.flush(5000), true);
    const s = client.stats();
    assert.equal(s.notRecorded, before.notRecorded + (ignored ? 2 : 1));
    assert.equal(s.notRecordedBy.outside, 1);
    if (ignored) {
      assert.equal(s.notRecordedBy.ignored, 1);
    }
  });

  client.close();
  const report = process.env.CANDOR_TEST_REPORT;
  if (report) {
    fs.writeFileSync(report, JSON.stringify({ recorded: okByKind }));
  }
});
