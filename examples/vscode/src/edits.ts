/**
 * VS Code content changes to UTF-8 byte edits.
 *
 * VS Code reports a document change as a list of content changes whose
 * `rangeOffset`/`rangeLength` count UTF-16 code units. Candor's
 * `editor.edit` wants UTF-8 byte offsets: `offset` is where the change
 * starts in the document as it is just before that edit, `deleted` how many
 * bytes it removes and `text` what it inserts. Applying the byte edits of
 * one event in order to the document's old bytes must give its new bytes.
 *
 * All changes of one event are ranges in the document *before* the event,
 * and they do not overlap. VS Code lists them from the end of the document
 * to its start (its own extension host applies them one after another, in
 * that order), which is the order in which each range stays valid after
 * the ones before it were applied. This module does not rely on the order
 * it is given: it sorts the changes from the end of the document backwards
 * (ties keep their given order), applies them one by one to a shadow copy
 * of the old text, and checks the result against the document's new text.
 * If that does not match, it tries the changes in the order given, and if
 * that does not match either, it sends one edit computed from the two texts
 * (their common prefix and suffix), so the byte stream always replays to
 * the document's real content.
 *
 * A UTF-16 boundary can fall between the two halves of a surrogate pair
 * (an emoji, say), where no UTF-8 boundary exists; such a change is widened
 * by that one code unit, and re-inserts it. Lone surrogates count as the
 * three bytes of U+FFFD, as Node's UTF-8 encoder writes them.
 *
 * No `vscode` import: this module runs under plain Node for its tests.
 */

/** One entry of `TextDocumentChangeEvent.contentChanges`. */
export interface ContentChange {
  readonly rangeOffset: number;
  readonly rangeLength: number;
  readonly text: string;
}

/** One `editor.edit`: UTF-8 bytes, in the document just before it. */
export type ByteEdit = {
  /** Byte offset where the edit starts. */
  offset: number;
  /** Bytes removed from `offset`. */
  deleted: number;
  /** Text inserted at `offset`. */
  text: string;
  /** 0-based line of `offset` (lines end at `\n`). */
  line: number;
  /** 0-based byte column of `offset` in its line. */
  col: number;
};

/** How an event's changes were turned into edits. */
export type Method = "sorted" | "as-given" | "diff";

export interface Conversion {
  edits: ByteEdit[];
  /** The document's text after the event. */
  text: string;
  method: Method;
}

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function isLow(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * UTF-8 length of `s[from, to)` as Node encodes it (lone surrogates as
 * U+FFFD, three bytes). A pair is only counted as one 4-byte character
 * when both halves are inside the range.
 */
export function utf8Length(s: string, from = 0, to = s.length): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      n += 1;
    } else if (c < 0x800) {
      n += 2;
    } else if (isHigh(c) && i + 1 < to && isLow(s.charCodeAt(i + 1))) {
      n += 4;
      i++;
    } else {
      n += 3;
    }
  }
  return n;
}

function countNewlines(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = s.indexOf("\n", from); i !== -1 && i < to; i = s.indexOf("\n", i + 1)) {
    n++;
  }
  return n;
}

/** The 0-based byte column of UTF-16 `character` in `lineText`. */
export function byteColumn(lineText: string, character: number): number {
  let end = Math.max(0, Math.min(character, lineText.length));
  if (end > 0 && end < lineText.length && isHigh(lineText.charCodeAt(end - 1)) && isLow(lineText.charCodeAt(end))) {
    end--;
  }
  return utf8Length(lineText, 0, end);
}

function isIndex(n: number): boolean {
  return Number.isInteger(n) && n >= 0;
}

/**
 * Applies `changes` one after another, each a range of the text as the
 * previous ones left it. Undefined when a range does not fit.
 */
function applyInOrder(old: string, changes: readonly ContentChange[]): { edits: ByteEdit[]; text: string } | undefined {
  let cur = old;
  const edits: ByteEdit[] = [];
  // Bytes and newlines of cur[0, cachePos): still valid after an edit at
  // or after cachePos, so changes sorted from the end cost O(total span).
  let cachePos = 0;
  let cacheBytes = 0;
  let cacheLines = 0;
  for (const c of changes) {
    if (!isIndex(c.rangeOffset) || !isIndex(c.rangeLength) || typeof c.text !== "string") {
      return undefined;
    }
    let start = c.rangeOffset;
    let end = start + c.rangeLength;
    let text = c.text;
    if (end > cur.length) {
      return undefined;
    }
    if (start === end && text === "") {
      continue;
    }
    // Widen by one code unit where a boundary would split a surrogate pair,
    // in the old text or in the new one.
    if (start > 0 && isHigh(cur.charCodeAt(start - 1))) {
      const next = text !== "" ? text.charCodeAt(0) : cur.charCodeAt(end);
      if (isLow(cur.charCodeAt(start)) || isLow(next)) {
        start--;
        text = cur[start] + text;
      }
    }
    if (end < cur.length && isLow(cur.charCodeAt(end))) {
      const prev = text !== "" ? text.charCodeAt(text.length - 1) : cur.charCodeAt(start - 1);
      if (isHigh(cur.charCodeAt(end - 1)) || isHigh(prev)) {
        text = text + cur[end];
        end++;
      }
    }
    let offset: number;
    let line: number;
    if (start <= cachePos) {
      offset = cacheBytes - utf8Length(cur, start, cachePos);
      line = cacheLines - countNewlines(cur, start, cachePos);
    } else {
      offset = utf8Length(cur, 0, start);
      line = countNewlines(cur, 0, start);
    }
    const lineStart = start === 0 ? 0 : cur.lastIndexOf("\n", start - 1) + 1;
    const col = utf8Length(cur, lineStart, start);
    const deleted = utf8Length(cur, start, end);
    edits.push({ offset, deleted, text, line, col });
    cur = cur.slice(0, start) + text + cur.slice(end);
    cachePos = start;
    cacheBytes = offset;
    cacheLines = line;
  }
  return { edits, text: cur };
}

/** The changes from the end of the document to its start (stable). */
function sortedFromTheEnd(changes: readonly ContentChange[]): ContentChange[] {
  return changes
    .map((c, i) => ({ c, i }))
    .sort(
      (a, b) =>
        b.c.rangeOffset - a.c.rangeOffset ||
        b.c.rangeOffset + b.c.rangeLength - (a.c.rangeOffset + a.c.rangeLength) ||
        a.i - b.i,
    )
    .map((x) => x.c);
}

/**
 * One edit taking `oldText` to `newText`: what lies between their common
 * prefix and suffix (never splitting a surrogate pair). Empty when equal.
 */
export function diffEdit(oldText: string, newText: string): ByteEdit[] {
  if (oldText === newText) {
    return [];
  }
  const max = Math.min(oldText.length, newText.length);
  let p = 0;
  while (p < max && oldText.charCodeAt(p) === newText.charCodeAt(p)) {
    p++;
  }
  if (p > 0 && isHigh(oldText.charCodeAt(p - 1))) {
    p--;
  }
  let s = 0;
  while (s < max - p && oldText.charCodeAt(oldText.length - 1 - s) === newText.charCodeAt(newText.length - 1 - s)) {
    s++;
  }
  if (s > 0 && isLow(oldText.charCodeAt(oldText.length - s))) {
    s--;
  }
  const lineStart = p === 0 ? 0 : oldText.lastIndexOf("\n", p - 1) + 1;
  return [
    {
      offset: utf8Length(oldText, 0, p),
      deleted: utf8Length(oldText, p, oldText.length - s),
      text: newText.slice(p, newText.length - s),
      line: countNewlines(oldText, 0, p),
      col: utf8Length(oldText, lineStart, p),
    },
  ];
}

/**
 * Converts one change event. `newText`, the document's text after the
 * event, lets the result be checked (and repaired); without it the
 * changes are taken as ranges of the old text, sorted from the end.
 */
export function convertChanges(oldText: string, changes: readonly ContentChange[], newText?: string): Conversion {
  const sorted = sortedFromTheEnd(changes);
  const first = applyInOrder(oldText, sorted);
  if (newText === undefined) {
    if (first) {
      return { ...first, method: "sorted" };
    }
    return { edits: [], text: oldText, method: "sorted" };
  }
  if (first && first.text === newText) {
    return { ...first, method: "sorted" };
  }
  if (sorted.some((c, i) => c !== changes[i])) {
    const given = applyInOrder(oldText, changes);
    if (given && given.text === newText) {
      return { ...given, method: "as-given" };
    }
  }
  return { edits: diffEdit(oldText, newText), text: newText, method: "diff" };
}

/**
 * Splits edits whose text is longer than `maxTextBytes` UTF-8 bytes into
 * an edit with the deletion and the first part, then inserts of the rest
 * (a message line must stay under the daemon's 64 KiB).
 */
export function splitLargeEdits(edits: readonly ByteEdit[], maxTextBytes = 8192): ByteEdit[] {
  const out: ByteEdit[] = [];
  for (const e of edits) {
    if (utf8Length(e.text) <= maxTextBytes) {
      out.push(e);
      continue;
    }
    let { offset, deleted, line, col } = e;
    let from = 0;
    while (from < e.text.length) {
      let to = from;
      let bytes = 0;
      while (to < e.text.length) {
        const c = e.text.charCodeAt(to);
        const pair = isHigh(c) && to + 1 < e.text.length && isLow(e.text.charCodeAt(to + 1));
        const w = utf8Length(e.text, to, to + (pair ? 2 : 1));
        if (bytes + w > maxTextBytes && to > from) {
          break;
        }
        bytes += w;
        to += pair ? 2 : 1;
      }
      const part = e.text.slice(from, to);
      out.push({ offset, deleted, text: part, line, col });
      offset += bytes;
      deleted = 0;
      const nl = part.lastIndexOf("\n");
      if (nl === -1) {
        col += bytes;
      } else {
        line += countNewlines(part, 0, part.length);
        col = utf8Length(part, nl + 1);
      }
      from = to;
    }
  }
  return out;
}

/**
 * `s` with each lone surrogate replaced by U+FFFD. Its UTF-8 bytes are the
 * same as `s`'s (Node encodes a lone surrogate as U+FFFD), and unlike `s`
 * it can be sent as JSON that a strict parser accepts.
 */
export function wellFormed(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

/** An `editor.edit` message's fields (without `v`, `ts` and `editor`). */
export type EditMessage = ByteEdit & {
  kind: "editor.edit";
  file: string;
};

/**
 * The `editor.edit` messages for one converted event of `file`: long
 * inserts split, text made well-formed.
 */
export function editMessages(file: string, edits: readonly ByteEdit[]): EditMessage[] {
  return splitLargeEdits(edits).map((e) => ({ kind: "editor.edit", file, ...e, text: wellFormed(e.text) }));
}

/** Applies byte edits in order (what a reader of the store does). */
export function applyByteEdits(old: Uint8Array, edits: readonly Pick<ByteEdit, "offset" | "deleted" | "text">[]): Buffer {
  let cur: Buffer = Buffer.from(old);
  for (const e of edits) {
    if (e.offset + e.deleted > cur.length) {
      throw new RangeError(`edit at ${e.offset} deleting ${e.deleted} is past the end (${cur.length} bytes)`);
    }
    cur = Buffer.concat([cur.subarray(0, e.offset), Buffer.from(e.text, "utf8"), cur.subarray(e.offset + e.deleted)]);
  }
  return cur;
}

/**
 * Shadow copies of open documents' text, keyed by URI, so that each change
 * event can be measured against the text it changed.
 */
export class Shadows {
  private readonly docs = new Map<string, string>();

  /** Documents longer than `maxChars` UTF-16 units are not followed. */
  constructor(private readonly maxChars = 16 * 1024 * 1024) {}

  open(key: string, text: string): void {
    if (text.length > this.maxChars) {
      this.docs.delete(key);
    } else {
      this.docs.set(key, text);
    }
  }

  close(key: string): void {
    this.docs.delete(key);
  }

  has(key: string): boolean {
    return this.docs.has(key);
  }

  get(key: string): string | undefined {
    return this.docs.get(key);
  }

  get size(): number {
    return this.docs.size;
  }

  /**
   * Converts one change event of a followed document and keeps its new
   * text. Undefined when the document was not followed (it is from now on,
   * when `newText` is given and not too long).
   */
  change(key: string, changes: readonly ContentChange[], newText?: string): Conversion | undefined {
    const old = this.docs.get(key);
    if (old === undefined) {
      if (newText !== undefined) {
        this.open(key, newText);
      }
      return undefined;
    }
    const conv = convertChanges(old, changes, newText);
    this.open(key, conv.text);
    return conv;
  }
}
