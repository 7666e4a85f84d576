/**
 * The VS Code glue: turns editor events into Candor ingest messages.
 *
 * What is sent (only for documents of the `file` scheme; the daemon then
 * drops files outside watched workspaces, denied or git-ignored ones, and
 * everything its consent does not cover):
 *
 * - editor.focus       the active editor changed (and again on reconnect)
 * - editor.edit        each content change, as UTF-8 byte edits (edits.ts)
 * - editor.cursor      the primary cursor moved (at most ~4 a second)
 * - editor.selection   the primary selection is not empty: its start and
 *                      end positions only, never the selected text
 * - editor.diagnostics a file's diagnostics changed: counts by severity
 * - editor.command     `workbench.action.files.save` for an explicit save
 *                      (VS Code has no event for commands in general)
 *
 * Nothing here shows an error when the daemon is not running; the
 * `Candor: Show Status` command tells what the client has seen.
 */

import * as vscode from "vscode";

import { IngestClient, Message, resolveSocketPath } from "./client";
import { Shadows, byteColumn, editMessages } from "./edits";

const EDITOR = "vscode";
/** Cursor and selection events: at most one per this many ms (~4/s). */
const CURSOR_INTERVAL_MS = 250;

class Recorder implements vscode.Disposable {
  private client: IngestClient;
  private readonly shadows = new Shadows();
  private readonly diagnostics = new Map<string, string>();
  private readonly manualSaves = new Set<string>();
  private readonly disposables: vscode.Disposable[] = [];
  private cursorPending: Message | undefined;
  private cursorLast = 0;
  private cursorTimer: NodeJS.Timeout | undefined;
  private conversions = { sorted: 0, "as-given": 0, diff: 0 };

  constructor(private readonly log: vscode.OutputChannel) {
    this.client = this.newClient();
    for (const doc of vscode.workspace.textDocuments) {
      this.follow(doc);
    }
    const w = vscode.workspace;
    this.disposables.push(
      w.onDidOpenTextDocument((d) => this.follow(d)),
      w.onDidCloseTextDocument((d) => {
        this.shadows.close(d.uri.toString());
        this.manualSaves.delete(d.uri.toString());
      }),
      w.onDidChangeTextDocument((e) => this.onChange(e)),
      w.onWillSaveTextDocument((e) => {
        const key = e.document.uri.toString();
        if (e.reason === vscode.TextDocumentSaveReason.Manual) {
          this.manualSaves.add(key);
        } else {
          this.manualSaves.delete(key);
        }
      }),
      w.onDidSaveTextDocument((d) => {
        if (this.manualSaves.delete(d.uri.toString()) && isFile(d)) {
          this.send({ kind: "editor.command", command: "workbench.action.files.save", file: d.uri.fsPath });
        }
      }),
      w.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration("candor.socketPath")) {
          this.client.close();
          this.client = this.newClient();
        }
      }),
      vscode.window.onDidChangeActiveTextEditor((ed) => this.focus(ed)),
      vscode.window.onDidChangeTextEditorSelection((e) => this.onSelection(e)),
      vscode.languages.onDidChangeDiagnostics((e) => this.onDiagnostics(e)),
    );
  }

  private newClient(): IngestClient {
    const setting = vscode.workspace.getConfiguration("candor").get<string>("socketPath");
    const socketPath = resolveSocketPath(setting);
    this.log.appendLine(`Candor: ingest socket ${socketPath}`);
    return new IngestClient({
      socketPath,
      // Each (re)connection starts with where the user is.
      onConnect: () => this.focus(vscode.window.activeTextEditor),
      log: (line) => this.log.appendLine(`Candor: ${line}`),
    });
  }

  private send(msg: Message): void {
    this.client.send({ ...msg, editor: EDITOR });
  }

  private follow(doc: vscode.TextDocument): void {
    if (isFile(doc)) {
      this.shadows.open(doc.uri.toString(), doc.getText());
    }
  }

  private focus(ed: vscode.TextEditor | undefined): void {
    if (ed && isFile(ed.document)) {
      this.send({ kind: "editor.focus", file: ed.document.uri.fsPath, language: ed.document.languageId });
    }
  }

  private onChange(e: vscode.TextDocumentChangeEvent): void {
    const doc = e.document;
    if (!isFile(doc) || e.contentChanges.length === 0) {
      return;
    }
    const conv = this.shadows.change(doc.uri.toString(), e.contentChanges, doc.getText());
    if (!conv) {
      return;
    }
    this.conversions[conv.method]++;
    if (conv.method !== "sorted") {
      this.log.appendLine(`Candor: ${doc.uri.fsPath}: changes converted ${conv.method}`);
    }
    for (const msg of editMessages(doc.uri.fsPath, conv.edits)) {
      this.send(msg);
    }
  }

  private onSelection(e: vscode.TextEditorSelectionChangeEvent): void {
    const doc = e.textEditor.document;
    const sel = e.selections[0];
    if (!isFile(doc) || !sel) {
      return;
    }
    const col = (p: vscode.Position): number => byteColumn(doc.lineAt(p.line).text, p.character);
    const file = doc.uri.fsPath;
    const msg: Message = sel.isEmpty
      ? { kind: "editor.cursor", file, line: sel.active.line, col: col(sel.active) }
      : {
          kind: "editor.selection",
          file,
          line: sel.start.line,
          col: col(sel.start),
          end_line: sel.end.line,
          end_col: col(sel.end),
        };
    this.throttledCursor(msg);
  }

  /** The latest position wins; one is sent at most every 250 ms. */
  private throttledCursor(msg: Message): void {
    this.cursorPending = msg;
    if (this.cursorTimer) {
      return;
    }
    const wait = this.cursorLast + CURSOR_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.flushCursor();
    } else {
      this.cursorTimer = setTimeout(() => {
        this.cursorTimer = undefined;
        this.flushCursor();
      }, wait);
    }
  }

  private flushCursor(): void {
    if (this.cursorPending) {
      this.send(this.cursorPending);
      this.cursorPending = undefined;
      this.cursorLast = Date.now();
    }
  }

  private onDiagnostics(e: vscode.DiagnosticChangeEvent): void {
    for (const uri of e.uris) {
      if (uri.scheme !== "file") {
        continue;
      }
      const n = [0, 0, 0, 0];
      for (const d of vscode.languages.getDiagnostics(uri)) {
        const i = severityIndex(d.severity);
        n[i] = (n[i] ?? 0) + 1;
      }
      const key = uri.toString();
      const counts = n.join(",");
      if ((this.diagnostics.get(key) ?? "0,0,0,0") === counts) {
        continue;
      }
      this.diagnostics.set(key, counts);
      const [errors, warnings, info, hints] = n;
      this.send({ kind: "editor.diagnostics", file: uri.fsPath, errors, warnings, info, hints });
    }
  }

  status(): string {
    const s = this.client.stats();
    const reasons = Object.entries(s.notRecordedBy)
      .map(([r, n]) => `${r} ${n}`)
      .join(", ");
    const lines = [
      `socket ${s.socketPath}: ${s.connected ? "connected" : "not connected"}`,
      `sent ${s.sent}, recorded ${s.ok}, not recorded ${s.notRecorded}${reasons ? ` (${reasons})` : ""}, refused ${s.errors}`,
      `queued ${s.queued}, dropped ${s.dropped}, unanswered ${s.unanswered}, documents followed ${this.shadows.size}`,
    ];
    if (s.lastError) {
      lines.push(`last refusal: ${s.lastError}`);
    }
    if (s.lastNotRecorded) {
      lines.push(`last not recorded: ${s.lastNotRecorded}`);
    }
    if (!s.connected && s.lastConnectError) {
      lines.push(`last connection error: ${s.lastConnectError} (is \`candor start\` running?)`);
    }
    lines.push(`edit conversions: ${JSON.stringify(this.conversions)}`);
    return lines.join("\n");
  }

  async stop(): Promise<void> {
    if (this.cursorTimer) {
      clearTimeout(this.cursorTimer);
      this.cursorTimer = undefined;
    }
    this.flushCursor();
    await this.client.flush(2000);
    this.dispose();
  }

  dispose(): void {
    if (this.cursorTimer) {
      clearTimeout(this.cursorTimer);
      this.cursorTimer = undefined;
    }
    for (const d of this.disposables.splice(0)) {
      d.dispose();
    }
    this.client.close();
  }
}

function isFile(doc: vscode.TextDocument): boolean {
  return doc.uri.scheme === "file";
}

function severityIndex(s: vscode.DiagnosticSeverity): number {
  switch (s) {
    case vscode.DiagnosticSeverity.Error:
      return 0;
    case vscode.DiagnosticSeverity.Warning:
      return 1;
    case vscode.DiagnosticSeverity.Information:
      return 2;
    default:
      return 3;
  }
}

let recorder: Recorder | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel("Candor");
  context.subscriptions.push(log);
  try {
    recorder = new Recorder(log);
  } catch (e) {
    // Never break the editor: log it and stay inactive.
    log.appendLine(`Candor: not started: ${e instanceof Error ? e.message : String(e)}`);
  }
  context.subscriptions.push(
    vscode.commands.registerCommand("candor.status", () => {
      const text = recorder ? recorder.status() : "Candor is not running in this window (see the Candor output).";
      log.appendLine(text);
      void vscode.window.showInformationMessage(text.split("\n").slice(0, 2).join(" — "), "Show Details").then((pick) => {
        if (pick) {
          log.show(true);
        }
      });
    }),
  );
}

export async function deactivate(): Promise<void> {
  const r = recorder;
  recorder = undefined;
  await r?.stop();
}
