// Random documents and VS Code-like change events for the tests.

import { ContentChange } from "../edits";

/** A small seeded PRNG (mulberry32), so failures can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const PIECES = ["a", "b", "z", " ", "\t", "\n", "\r\n", "é", "ß", "€", "中", "文", "😀", "👍🏽", "𝄞", "x"];
export const LONE = ["\uD83D", "\uDE00"];

export function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

export function randomText(r: () => number, max: number, lone: boolean): string {
  const n = Math.floor(r() * max);
  let s = "";
  for (let i = 0; i < n; i++) {
    s += lone && r() < 0.05 ? pick(r, LONE) : pick(r, PIECES);
  }
  return s;
}

/**
 * Up to `k` non-overlapping changes of `doc` in UTF-16 units (boundaries
 * may split surrogate pairs unless `splitPairs` is false), ascending, with the new text they make when
 * all are ranges of the old document. `gap` keeps a unit between changes.
 */
export function randomChanges(
  r: () => number,
  doc: string,
  k: number,
  lone: boolean,
  gap: boolean,
  splitPairs = true,
): { changes: ContentChange[]; next: string } {
  const cuts: number[] = [];
  for (let i = 0; i < 2 * k; i++) {
    let cut = Math.floor(r() * (doc.length + 1));
    // As an editor's cursor would: never between the halves of a pair.
    const c = doc.charCodeAt(cut);
    if (!splitPairs && cut > 0 && c >= 0xdc00 && c <= 0xdfff) {
      cut--;
    }
    cuts.push(cut);
  }
  cuts.sort((a, b) => a - b);
  const changes: ContentChange[] = [];
  let last = -1;
  for (let i = 0; i < k; i++) {
    const start = cuts[2 * i] as number;
    const end = cuts[2 * i + 1] as number;
    if (gap ? start <= last : start < last) {
      continue;
    }
    const text = r() < 0.3 ? "" : randomText(r, 6, lone);
    if (start === end && text === "") {
      continue;
    }
    changes.push({ rangeOffset: start, rangeLength: end - start, text });
    last = end;
  }
  let next = "";
  let at = 0;
  for (const c of changes) {
    next += doc.slice(at, c.rangeOffset) + c.text;
    at = c.rangeOffset + c.rangeLength;
  }
  next += doc.slice(at);
  return { changes, next };
}

export function shuffled<T>(r: () => number, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

