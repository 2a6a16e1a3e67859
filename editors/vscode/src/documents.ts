// Read-only documents the extension shows: the context pack and the statistics.
//
// Owns the `strata:` URI scheme and the text behind each of its documents. A document keeps its
// name, so running a command again refreshes the tab it already has instead of opening another;
// nothing here is ever saved to disk.

import * as vscode from "vscode";

export const SCHEME = "strata";

export class VirtualDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly texts = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.toString()) ?? "";
  }

  /** Shows `text` as `strata:/<name>`; the name's extension picks the language (`.md`, `.json`). */
  async show(name: string, text: string): Promise<void> {
    const uri = vscode.Uri.from({ scheme: SCHEME, path: `/${name}` });
    this.texts.set(uri.toString(), text);
    this.changed.fire(uri);
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(document, {
      viewColumn: vscode.ViewColumn.Beside,
      preserveFocus: true,
      preview: true,
    });
  }

  dispose(): void {
    this.changed.dispose();
    this.texts.clear();
  }
}
