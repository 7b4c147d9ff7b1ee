// The circ extension: starts `circ lsp` (the language server bundled in the circ binary) for
// .circ files. Everything else (diagnostics, hover, definitions, outline) comes from the server.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("circ").get("server.path") || "circ";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "circ",
    "circ",
    { run: server, debug: server },
    { documentSelector: [{ language: "circ" }] }
  );
  // Starting also launches the server; a failure (circ not on PATH) is shown by the client.
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
