//! `circ lsp`: a language server over standard input and output.
//!
//! Built on rust-analyzer's `lsp-server` (the transport and JSON-RPC framing) and `lsp-types`:
//! one synchronous loop handles one message at a time, so edits are applied in the order they
//! were sent and every answer reads the latest text. Documents are synced whole
//! (`TextDocumentSyncKind::Full`): circ files are small, and checking one is milliseconds.
//!
//! Each open document is checked on open and on every change (`analysis.rs`), and its
//! diagnostics are published; hover (`hover.rs`), go to definition and document symbols
//! (`navigate.rs`) read the last analysis. Positions are UTF-16 columns.

pub mod analysis;
pub mod docs;
pub mod hover;
pub mod navigate;
pub mod uri;

use analysis::Analysis;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Exit, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{DocumentSymbolRequest, GotoDefinition, HoverRequest, Request as _, Shutdown};
use lsp_types::{
    DocumentSymbolResponse, GotoDefinitionResponse, HoverProviderCapability, OneOf, PublishDiagnosticsParams,
    ServerCapabilities, ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// How the server ended: after `shutdown` then `exit` (status 0), or otherwise (status 1, as the
/// protocol asks of a server that exits without a shutdown request).
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    Clean,
    WithoutShutdown,
}

/// Serves on stdin/stdout until `exit`, or until stdin closes.
pub fn run() -> Result<Ending, Box<dyn std::error::Error + Send + Sync>> {
    let (connection, io_threads) = Connection::stdio();
    let caps = serde_json::json!({
        "capabilities": capabilities(),
        "serverInfo": ServerInfo { name: "circ".into(), version: Some(env!("CARGO_PKG_VERSION").into()) },
    });
    let (id, _params) = connection.initialize_start()?;
    connection.initialize_finish(id, caps)?;
    let mut server = Server::new(uri::serve_stdlib());
    let ending = server.serve(&connection);
    // The writer thread ends once every sender is gone.
    drop(connection);
    io_threads.join()?;
    Ok(ending)
}

pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        ..Default::default()
    }
}

/// The open documents and what was learned from them.
pub struct Server {
    docs: HashMap<Uri, Analysis>,
    stdlib_dir: Option<PathBuf>,
    shut_down: bool,
    /// Set by `exit`: the loop ends.
    ending: Option<Ending>,
}

impl Server {
    pub fn new(stdlib_dir: Option<PathBuf>) -> Server {
        Server { docs: HashMap::new(), stdlib_dir, shut_down: false, ending: None }
    }

    /// The message loop: answers requests, applies notifications, publishes diagnostics.
    pub fn serve(&mut self, connection: &Connection) -> Ending {
        for msg in &connection.receiver {
            for out in self.handle(msg) {
                if connection.sender.send(out).is_err() {
                    return Ending::WithoutShutdown;
                }
            }
            if let Some(ending) = self.ending.take() {
                return ending;
            }
        }
        Ending::WithoutShutdown
    }

    /// Handles one message (after `initialize`) and returns what to send back.
    pub fn handle(&mut self, msg: Message) -> Vec<Message> {
        match msg {
            Message::Request(req) => vec![Message::Response(self.request(req))],
            Message::Notification(n) => self.notification(n),
            // The server sends no requests, so expects no responses.
            Message::Response(_) => Vec::new(),
        }
    }

    fn request(&mut self, req: Request) -> Response {
        if self.shut_down {
            return Response::new_err(req.id, ErrorCode::InvalidRequest as i32, "the server is shut down".into());
        }
        let id = req.id.clone();
        // A bug behind a request must not end the editor's session: it answers with an error.
        match catch_unwind(AssertUnwindSafe(|| self.answer(req))) {
            Ok(resp) => resp,
            Err(_) => Response::new_err(id, ErrorCode::InternalError as i32, "circ lsp: internal error".into()),
        }
    }

    fn answer(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let bad = |e: lsp_server::ExtractError<Request>| {
            Response::new_err(id.clone(), ErrorCode::InvalidParams as i32, format!("{e:?}"))
        };
        match req.method.as_str() {
            Shutdown::METHOD => {
                self.shut_down = true;
                Response::new_ok(req.id, ())
            }
            HoverRequest::METHOD => match req.extract::<lsp_types::HoverParams>(HoverRequest::METHOD) {
                Ok((id, p)) => {
                    let at = p.text_document_position_params;
                    let result = self.docs.get(&at.text_document.uri).and_then(|a| hover::hover(a, at.position));
                    Response::new_ok(id, result)
                }
                Err(e) => bad(e),
            },
            GotoDefinition::METHOD => match req.extract::<lsp_types::GotoDefinitionParams>(GotoDefinition::METHOD) {
                Ok((id, p)) => {
                    let at = p.text_document_position_params;
                    let result = self
                        .docs
                        .get(&at.text_document.uri)
                        .and_then(|a| navigate::definition(a, at.position))
                        .map(GotoDefinitionResponse::Scalar);
                    Response::new_ok(id, result)
                }
                Err(e) => bad(e),
            },
            DocumentSymbolRequest::METHOD => {
                match req.extract::<lsp_types::DocumentSymbolParams>(DocumentSymbolRequest::METHOD) {
                    Ok((id, p)) => {
                        let result = self
                            .docs
                            .get(&p.text_document.uri)
                            .map(|a| DocumentSymbolResponse::Nested(navigate::symbols(a)));
                        Response::new_ok(id, result)
                    }
                    Err(e) => bad(e),
                }
            }
            _ => Response::new_err(req.id, ErrorCode::MethodNotFound as i32, format!("unknown request {}", req.method)),
        }
    }

    fn notification(&mut self, n: Notification) -> Vec<Message> {
        match n.method.as_str() {
            Exit::METHOD => {
                self.ending = Some(if self.shut_down { Ending::Clean } else { Ending::WithoutShutdown });
                Vec::new()
            }
            DidOpenTextDocument::METHOD => {
                match n.extract::<lsp_types::DidOpenTextDocumentParams>(DidOpenTextDocument::METHOD) {
                    Ok(p) => self.update(p.text_document.uri, p.text_document.text, p.text_document.version),
                    Err(_) => Vec::new(),
                }
            }
            DidChangeTextDocument::METHOD => {
                match n.extract::<lsp_types::DidChangeTextDocumentParams>(DidChangeTextDocument::METHOD) {
                    Ok(p) => {
                        let uri = p.text_document.uri;
                        let Some(text) = self.apply(&uri, p.content_changes) else { return Vec::new() };
                        self.update(uri, text, p.text_document.version)
                    }
                    Err(_) => Vec::new(),
                }
            }
            DidCloseTextDocument::METHOD => {
                match n.extract::<lsp_types::DidCloseTextDocumentParams>(DidCloseTextDocument::METHOD) {
                    Ok(p) => {
                        self.docs.remove(&p.text_document.uri);
                        // A closed document keeps no diagnostics in the editor.
                        vec![publish(p.text_document.uri, Vec::new(), None)]
                    }
                    Err(_) => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// The text of a document after a change. We ask for whole documents, but a change with a
    /// range (from a client that sends them anyway) is applied to the text we hold.
    fn apply(&self, uri: &Uri, changes: Vec<lsp_types::TextDocumentContentChangeEvent>) -> Option<String> {
        let mut text: Option<String> = self.docs.get(uri).map(|a| a.text(analysis::ROOT).to_string());
        for change in changes {
            match (change.range, text.as_mut()) {
                (None, _) => text = Some(change.text),
                (Some(r), Some(t)) => {
                    let lines = analysis::LineIndex::new(t);
                    let start = lines.offset(t, r.start);
                    let end = lines.offset(t, r.end).max(start);
                    t.replace_range(start..end, &change.text);
                }
                // An edit of a document never opened: nothing to apply it to.
                (Some(_), None) => return None,
            }
        }
        text
    }

    /// Checks a document's new text and publishes its diagnostics.
    fn update(&mut self, uri: Uri, text: String, version: i32) -> Vec<Message> {
        let stdlib = self.stdlib_dir.clone();
        let analysed = catch_unwind(AssertUnwindSafe(|| Analysis::new(uri.clone(), &text, stdlib.as_deref())));
        match analysed {
            Ok(analysis) => {
                let diags = analysis.diagnostics();
                self.docs.insert(uri.clone(), analysis);
                vec![publish(uri, diags, Some(version))]
            }
            Err(_) => {
                // A bug in the checker: say so on the document rather than end the session.
                self.docs.remove(&uri);
                let d = lsp_types::Diagnostic {
                    severity: Some(lsp_types::DiagnosticSeverity::ERROR),
                    source: Some("circ".into()),
                    message: "circ lsp: internal error while checking this file (please report it)".into(),
                    ..Default::default()
                };
                vec![publish(uri, vec![d], Some(version))]
            }
        }
    }
}

fn publish(uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>, version: Option<i32>) -> Message {
    let params = PublishDiagnosticsParams { uri, diagnostics, version };
    Message::Notification(Notification::new(PublishDiagnostics::METHOD.to_string(), params))
}
