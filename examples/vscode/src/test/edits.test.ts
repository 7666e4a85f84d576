// Property-style tests of the UTF-16 → UTF-8 edit conversion: random
// documents full of multi-byte text (é, CJK, emoji surrogate pairs, lone
// surrogates, CRLF), random events of several non-overlapping changes, in
// VS Code's order and others. Invariant: the byte edits, applied in order
// to the old document's bytes, give the new document's bytes.

import * as assert from "node:assert/strict";
import { test } from "node:test";

import {
  ByteEdit,
  ContentChange,
  Shadows,
  applyByteEdits,
  byteColumn,
  convertChanges,
  diffEdit,
  editMessages,
  splitLargeEdits,
  utf8Length,
  wellFormed,
} from "../edits";
import { PIECES, pick, randomChanges, randomText, rng, shuffled } from "./gen";

/**
 * Applies the edits one by one, checking each lands on UTF-8 character
 * boundaries and that its line and column describe its offset.
 */
function replay(old: string, edits: readonly ByteEdit[]): Buffer {
  let cur: Buffer = Buffer.from(old, "utf8");
  for (const e of edits) {
    assert.ok(Number.isInteger(e.offset) && e.offset >= 0, `offset ${e.offset}`);
    assert.ok(Number.isInteger(e.deleted) && e.deleted >= 0, `deleted ${e.deleted}`);
    assert.ok(e.offset + e.deleted <= cur.length, "edit past the end");
    for (const b of [e.offset, e.offset + e.deleted]) {
      if (b < cur.length) {
        assert.notEqual((cur[b] as number) & 0xc0, 0x80, `boundary ${b} inside a UTF-8 sequence`);
      }
    }
    const before = cur.subarray(0, e.offset);
    const lines = before.filter((x) => x === 0x0a).length;
    assert.equal(e.line, lines, "line");
    assert.equal(e.col, e.offset - (before.lastIndexOf(0x0a) + 1), "col");
    cur = applyByteEdits(cur, [e]);
  }
  return cur;
}

test("utf8Length agrees with Buffer.byteLength, lone surrogates included", () => {
  const r = rng(1);
  for (let i = 0; i < 500; i++) {
    const s = randomText(r, 40, true);
    assert.equal(utf8Length(s), Buffer.byteLength(s, "utf8"), JSON.stringify(s));
  }
});

test("hand-picked changes give the expected byte edits", () => {
  // é is two bytes: replacing it deletes 2.
  let c = convertChanges("café\n", [{ rangeOffset: 3, rangeLength: 1, text: "e" }], "cafe\n");
  assert.deepEqual(c.edits, [{ offset: 3, deleted: 2, text: "e", line: 0, col: 3 }]);
  // An emoji is two UTF-16 units and four bytes.
  c = convertChanges("a😀b", [{ rangeOffset: 1, rangeLength: 2, text: "" }], "ab");
  assert.deepEqual(c.edits, [{ offset: 1, deleted: 4, text: "", line: 0, col: 1 }]);
  // CJK after a newline: line 1, byte column 3.
  c = convertChanges("x\n中文", [{ rangeOffset: 3, rangeLength: 0, text: "!" }], "x\n中!文");
  assert.deepEqual(c.edits, [{ offset: 5, deleted: 0, text: "!", line: 1, col: 3 }]);
  assert.equal(c.method, "sorted");
});

test("multi-cursor typing in VS Code's order (from the end) is taken as it is", () => {
  const old = "中\r\n😀\r\né";
  // VS Code lists the three inserts from the last line to the first.
  const changes = [
    { rangeOffset: 7, rangeLength: 0, text: "x" },
    { rangeOffset: 3, rangeLength: 0, text: "x" },
    { rangeOffset: 0, rangeLength: 0, text: "x" },
  ];
  const next = "x中\r\nx😀\r\nxé";
  const c = convertChanges(old, changes, next);
  assert.equal(c.method, "sorted");
  assert.deepEqual(
    c.edits.map((e) => [e.offset, e.line, e.col]),
    [
      [11, 2, 0],
      [5, 1, 0],
      [0, 0, 0],
    ],
  );
  assert.deepEqual(replay(old, c.edits), Buffer.from(next));
  // The same changes listed from the start give the same edits.
  const asc = convertChanges(old, [...changes].reverse(), next);
  assert.equal(asc.method, "sorted");
  assert.deepEqual(asc.edits, c.edits);
});

test("a change that splits a surrogate pair is widened to the whole character", () => {
  // Replace only the low half of 😀 (U+1F600) with that of 😁 (U+1F601).
  const c = convertChanges("a😀", [{ rangeOffset: 2, rangeLength: 1, text: "\uDE01" }], "a😁");
  assert.deepEqual(c.edits, [{ offset: 1, deleted: 4, text: "😁", line: 0, col: 1 }]);
  // Insert between the halves: the new document holds two lone surrogates.
  const next = "\uD83Dx\uDE00";
  const d = convertChanges("😀", [{ rangeOffset: 1, rangeLength: 0, text: "x" }], next);
  assert.deepEqual(replay("😀", d.edits), Buffer.from(next));
  // A deletion that joins two lone halves into a pair.
  const e = convertChanges("\uD83Dx\uDE00", [{ rangeOffset: 1, rangeLength: 1, text: "" }], "😀");
  assert.deepEqual(replay("\uD83Dx\uDE00", e.edits), Buffer.from("😀"));
});

test("random events, in VS Code's order, ascending or shuffled, replay to the new bytes", () => {
  const r = rng(42);
  let events = 0;
  for (let round = 0; round < 300; round++) {
    let doc = randomText(r, 60, round % 3 === 0);
    const shadows = new Shadows();
    shadows.open("doc", doc);
    for (let step = 0; step < 8; step++) {
      const { changes, next } = randomChanges(r, doc, 1 + Math.floor(r() * 5), round % 3 === 0, true);
      const descending = [...changes].reverse();
      for (const order of [descending, changes, shuffled(r, changes)]) {
        const c = convertChanges(doc, order, next);
        assert.equal(c.method, "sorted", `${JSON.stringify(doc)} ${JSON.stringify(order)}`);
        assert.equal(c.text, next);
        assert.deepEqual(replay(doc, c.edits), Buffer.from(next, "utf8"), JSON.stringify({ doc, order }));
        // Without the new text to check against, the same edits.
        assert.deepEqual(convertChanges(doc, order).edits, c.edits);
      }
      const s = shadows.change("doc", descending, next);
      assert.ok(s);
      assert.equal(shadows.get("doc"), next);
      doc = next;
      events++;
    }
  }
  assert.ok(events >= 2000);
});

test("touching changes and changes in sequential coordinates still replay exactly", () => {
  const r = rng(7);
  const methods = new Set<string>();
  for (let round = 0; round < 2000; round++) {
    const doc = randomText(r, 30, round % 2 === 0);
    const { changes, next } = randomChanges(r, doc, 1 + Math.floor(r() * 4), round % 2 === 0, false);
    const c = convertChanges(doc, shuffled(r, changes), next);
    methods.add(c.method);
    assert.deepEqual(replay(doc, c.edits), Buffer.from(next, "utf8"));
    // Each change relative to the text the previous ones left (not how
    // VS Code reports them, but the result must still be exact).
    let cur = doc;
    const seq: ContentChange[] = [];
    for (const ch of changes) {
      const shift = cur.length - doc.length;
      seq.push({ ...ch, rangeOffset: ch.rangeOffset + shift });
      cur = cur.slice(0, ch.rangeOffset + shift) + ch.text + cur.slice(ch.rangeOffset + shift + ch.rangeLength);
    }
    const ascending = convertChanges(doc, seq, cur);
    methods.add(ascending.method);
    assert.equal(ascending.text, cur);
    assert.deepEqual(replay(doc, ascending.edits), Buffer.from(cur, "utf8"));
  }
  assert.ok(methods.has("as-given"), [...methods].join());
});

test("changes that do not match the new text fall back to one exact diff edit", () => {
  const r = rng(99);
  for (let i = 0; i < 1000; i++) {
    const a = randomText(r, 30, true);
    const b = r() < 0.5 ? a.slice(0, Math.floor(r() * a.length)) + randomText(r, 6, true) : randomText(r, 30, true);
    const c = convertChanges(a, [{ rangeOffset: a.length + 5, rangeLength: 3, text: "?" }], b);
    assert.ok(a === b ? c.edits.length === 0 : c.method === "diff");
    assert.deepEqual(replay(a, c.edits), Buffer.from(b, "utf8"));
    assert.deepEqual(replay(a, diffEdit(a, b)), Buffer.from(b, "utf8"));
  }
});

test("long inserts are split at character boundaries and still replay exactly", () => {
  const r = rng(5);
  for (let i = 0; i < 50; i++) {
    const doc = randomText(r, 40, false);
    let big = "";
    while (big.length < 3000) {
      big += pick(r, PIECES);
    }
    const at = Math.floor(r() * (doc.length + 1));
    const end = Math.min(doc.length, at + Math.floor(r() * 5));
    const widened = convertChanges(doc, [{ rangeOffset: at, rangeLength: end - at, text: big }]);
    const next = doc.slice(0, at) + big + doc.slice(end);
    assert.equal(widened.text, next);
    const parts = splitLargeEdits(widened.edits, 500);
    assert.ok(parts.length > 1);
    parts.forEach((p, j) => {
      assert.ok(Buffer.byteLength(p.text) <= 500);
      const next = parts[j + 1];
      if (next) {
        const hi = p.text.charCodeAt(p.text.length - 1);
        const lo = next.text.charCodeAt(0);
        assert.ok(!(hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff), "a split cut a surrogate pair");
      }
    });
    assert.deepEqual(replay(doc, parts), Buffer.from(next, "utf8"));
  }
});

test("edit messages are well-formed JSON with the same bytes", () => {
  const r = rng(11);
  for (let i = 0; i < 300; i++) {
    const doc = randomText(r, 30, true);
    const { changes, next } = randomChanges(r, doc, 3, true, true);
    const msgs = editMessages("/w/a.txt", convertChanges(doc, changes, next).edits);
    for (const m of msgs) {
      assert.equal(m.kind, "editor.edit");
      assert.equal(m.file, "/w/a.txt");
      // Well-formed: survives a round trip through UTF-8 unchanged.
      assert.equal(Buffer.from(m.text, "utf8").toString("utf8"), m.text);
    }
    assert.deepEqual(replay(doc, msgs), Buffer.from(next, "utf8"));
  }
});

test("byte columns count UTF-8 bytes and never split a pair", () => {
  assert.equal(byteColumn("é中😀x", 0), 0);
  assert.equal(byteColumn("é中😀x", 1), 2);
  assert.equal(byteColumn("é中😀x", 2), 5);
  assert.equal(byteColumn("é中😀x", 3), 5);
  assert.equal(byteColumn("é中😀x", 4), 9);
  assert.equal(byteColumn("é中😀x", 99), 10);
});

test("shadows follow documents from their opening, and not past a size", () => {
  const s = new Shadows(10);
  assert.equal(s.change("a", [{ rangeOffset: 0, rangeLength: 0, text: "x" }], "x"), undefined);
  assert.equal(s.get("a"), "x", "a document seen first in a change is followed from then on");
  const c = s.change("a", [{ rangeOffset: 1, rangeLength: 0, text: "é" }], "xé");
  assert.deepEqual(c?.edits, [{ offset: 1, deleted: 0, text: "é", line: 0, col: 1 }]);
  s.open("big", "0123456789ab");
  assert.equal(s.has("big"), false);
  s.close("a");
  assert.equal(s.has("a"), false);
});

test("wellFormed replaces only lone surrogates, keeping the bytes", () => {
  assert.equal(wellFormed("a😀b"), "a😀b");
  assert.equal(wellFormed("\uD83Da\uDE00"), "\uFFFDa\uFFFD");
  const r = rng(3);
  for (let i = 0; i < 300; i++) {
    const s = randomText(r, 30, true);
    assert.deepEqual(Buffer.from(wellFormed(s)), Buffer.from(s));
  }
});
