//! `circ lsp` end to end: the built binary is spawned and spoken to in JSON-RPC with
//! `Content-Length` framing, as an editor does. Every read has a timeout, so a server that
//! stops answering fails the test instead of hanging it. The last test runs the analysis
//! behind the server over the front end's fuzz seed corpus (the examples, the UI tests and the
//! stdlib) and mutations of it: no input may make it panic.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Longest wait for one message from the server (a debug build checks a file in milliseconds).
const TIMEOUT: Duration = Duration::from_secs(20);

struct Server {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    /// Notifications read while waiting for a response.
    pending: Vec<Value>,
    cache: PathBuf,
}

impl Server {
    /// Starts `circ lsp` with a cache folder of its own and completes `initialize`.
    fn start(name: &str) -> (Server, Value) {
        let cache = temp_dir(&format!("cache-{name}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_circ"))
            .arg("lsp")
            .env("CIRC_CACHE_DIR", &cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn circ lsp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(msg) = read_message(&mut r) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let mut s = Server { child, stdin, incoming, next_id: 1, pending: Vec::new(), cache };
        let init = s.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
        s.notify("initialized", json!({}));
        (s, init)
    }

    fn send(&mut self, msg: Value) {
        let body = serde_json::to_vec(&msg).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).unwrap();
        self.stdin.write_all(&body).unwrap();
        self.stdin.flush().unwrap();
    }

    fn recv(&mut self) -> Value {
        match self.incoming.recv_timeout(TIMEOUT) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("no message from the server in {TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the server closed its output"),
        }
    }

    /// Sends a request and returns its result (panics on an error response).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let msg = self.recv();
            if msg.get("id") == Some(&json!(id)) {
                assert!(msg.get("error").is_none(), "{method} failed: {msg}");
                return msg["result"].clone();
            }
            self.pending.push(msg);
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// The next `publishDiagnostics` for `uri`: its diagnostics.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        self.published(uri)["diagnostics"].as_array().unwrap().clone()
    }

    /// The next `publishDiagnostics` for `uri`: its parameters.
    fn published(&mut self, uri: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self
                .pending
                .iter()
                .position(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri)
            {
                return self.pending.remove(i)["params"].clone();
            }
            assert!(Instant::now() < deadline, "no diagnostics for {uri}");
            let msg = self.recv();
            self.pending.push(msg);
        }
    }

    fn open(&mut self, uri: &str, text: &str) -> Vec<Value> {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "circ", "version": 1, "text": text } }),
        );
        self.diagnostics(uri)
    }

    fn change(&mut self, uri: &str, version: i64, text: &str) -> Vec<Value> {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
        );
        self.diagnostics(uri)
    }

    fn at(&mut self, method: &str, uri: &str, (line, character): (u32, u32)) -> Value {
        self.request(
            method,
            json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": character } }),
        )
    }

    /// `shutdown`, `exit`, and the exit status.
    fn shutdown(mut self) -> i32 {
        assert_eq!(self.request("shutdown", Value::Null), Value::Null);
        self.notify("exit", Value::Null);
        self.wait()
    }

    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Never leave a server behind, whatever failed.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = make_writable(&self.cache);
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

/// The stdlib copies are read-only; their folder must be writable again to be removed.
fn make_writable(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            make_writable(&p)?;
        } else {
            let mut perms = std::fs::metadata(&p)?.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&p, perms)?;
        }
    }
    Ok(())
}

/// One message: headers up to a blank line, then `Content-Length` bytes of JSON.
fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("circ-lsp-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn file_uri(path: &Path) -> String {
    circ::lsp::uri::from_path(path).unwrap().as_str().to_string()
}

/// The 0-based line and UTF-16 column of the `nth` occurrence of `needle` (plus `shift` chars).
fn find(text: &str, needle: &str, nth: usize, shift: u32) -> (u32, u32) {
    let at = text.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("no {needle}")).0;
    let line = text[..at].matches('\n').count();
    let col = text[..at].rsplit('\n').next().unwrap().encode_utf16().count();
    (line as u32, col as u32 + shift)
}

fn range(d: &Value) -> ((u64, u64), (u64, u64)) {
    let r = &d["range"];
    let p = |v: &Value| (v["line"].as_u64().unwrap(), v["character"].as_u64().unwrap());
    (p(&r["start"]), p(&r["end"]))
}

const MODEL: &str = "\
import nn

model digits {
    data pixels: [N, 64] = csv(\"pixel_0_0\" .. \"pixel_7_7\")
    data label: int[N]
    param temperature: [] = 1 ~ lognormal(0, 1) update sgd(lr = 0.1)
    let café = pixels / 16
    let l1 = nn.dense(64, 128)
    let l2 = nn.dense(128, 10)
    let h = relu(l1(café))
    label ~ categorical(logits = l2(h) / temperature)
    train { optimizer = adam(lr = 1e-2), epochs = 3 }
}
";

#[test]
fn initialize_announces_full_sync_hover_definition_and_symbols() {
    let (server, init) = Server::start("init");
    let caps = &init["capabilities"];
    assert_eq!(caps["textDocumentSync"], json!(1), "{init}");
    assert_eq!(caps["hoverProvider"], json!(true));
    assert_eq!(caps["definitionProvider"], json!(true));
    assert_eq!(caps["documentSymbolProvider"], json!(true));
    assert_eq!(init["serverInfo"]["name"], "circ");
    assert_eq!(server.shutdown(), 0);
}

/// A mistake is published with its code and range (UTF-16 columns: `café` is 4 units, 5 bytes);
/// fixing it publishes no diagnostics.
#[test]
fn diagnostics_follow_every_change() {
    let (mut server, _) = Server::start("diags");
    let dir = temp_dir("diags");
    let uri = file_uri(&dir.join("digits.circ"));
    let broken = MODEL.replace("relu(l1(café))", "relu(l1(café)) + cafe");
    let diags = server.open(&uri, &broken);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(d["code"], "E0204");
    assert_eq!(d["severity"], json!(1));
    assert_eq!(d["source"], "circ");
    let (line, col) = find(&broken, "+ cafe", 0, 2);
    assert_eq!(range(d), ((line as u64, col as u64), (line as u64, col as u64 + 4)), "{d}");
    let message = d["message"].as_str().unwrap();
    assert!(message.starts_with("unknown name `cafe`"), "{message}");
    assert!(message.contains("help: a name with a similar spelling exists: `café`"), "{message}");

    assert_eq!(server.change(&uri, 2, MODEL), Vec::<Value>::new());

    // A change with a range (which a client may send although we ask for whole documents) is
    // applied to the text the server holds; diagnostics carry the document's version.
    let (line, col) = find(MODEL, "café))", 0, 0);
    let edit = json!({ "start": { "line": line, "character": col }, "end": { "line": line, "character": col + 4 } });
    server.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{ "range": edit, "text": "x" }] }),
    );
    let published = server.published(&uri);
    assert_eq!(published["version"], 3);
    assert_eq!(published["diagnostics"][0]["code"], "E0204", "{published}");
    assert_eq!(range(&published["diagnostics"][0]), ((line as u64, col as u64), (line as u64, col as u64 + 1)));
    assert_eq!(server.change(&uri, 4, MODEL), Vec::<Value>::new());

    // A secondary label becomes related information pointing at the first definition.
    let twice = MODEL.replace("    let l2 =", "    data label: [N]\n    let l2 =");
    let diags = server.change(&uri, 5, &twice);
    let d = diags.iter().find(|d| d["code"] == "E0202").unwrap_or_else(|| panic!("{diags:?}"));
    assert_eq!(range(d).0, (find(&twice, "label", 1, 0).0 as u64, 9));
    let related = d["relatedInformation"].as_array().unwrap();
    assert_eq!(related[0]["location"]["uri"], uri.as_str());
    assert_eq!(range(&related[0]["location"]).0, (4, 9));
    assert!(related[0]["message"].as_str().unwrap().contains("first defined here"));

    // Closing the document clears its diagnostics.
    server.notify("textDocument/didClose", json!({ "textDocument": { "uri": uri } }));
    assert_eq!(server.diagnostics(&uri), Vec::<Value>::new());
    assert_eq!(server.shutdown(), 0);
}

fn hover_text(v: &Value) -> String {
    v["contents"]["value"].as_str().unwrap_or_else(|| panic!("no hover: {v}")).to_string()
}

#[test]
fn hover_shows_shapes_priors_signatures_and_docs() {
    let (mut server, _) = Server::start("hover");
    let uri = file_uri(&temp_dir("hover").join("digits.circ"));
    assert_eq!(server.open(&uri, MODEL), Vec::<Value>::new());

    // A let binding, at a use and at its definition: its inferred shape.
    let use_of_h = server.at("textDocument/hover", &uri, find(MODEL, "l2(h)", 0, 3));
    assert!(hover_text(&use_of_h).contains("let h: [N, 128]"), "{use_of_h}");
    assert_eq!(range(&use_of_h), ((10, 36), (10, 37)));
    let def_of_h = server.at("textDocument/hover", &uri, find(MODEL, "let h", 0, 4));
    assert!(hover_text(&def_of_h).contains("let h: [N, 128]"), "{def_of_h}");
    // The non-ASCII name, after its UTF-16 column.
    let cafe = hover_text(&server.at("textDocument/hover", &uri, find(MODEL, "café)", 0, 3)));
    assert!(cafe.contains("let café: [N, 64]"), "{cafe}");

    // Data and a parameter: type, prior, start and update rule.
    let label = hover_text(&server.at("textDocument/hover", &uri, find(MODEL, "label ~", 0, 1)));
    assert!(label.contains("data label: int[N]"), "{label}");
    let t = hover_text(&server.at("textDocument/hover", &uri, find(MODEL, "/ temperature", 0, 4)));
    for part in ["param temperature: []", "prior  lognormal(0, 1)", "start  = 1", "update sgd(lr = 0.1, momentum = 0)"]
    {
        assert!(t.contains(part), "{part} missing from {t}");
    }

    // An instance: its circuit and arguments, and the parameters it owns.
    let l1 = hover_text(&server.at("textDocument/hover", &uri, find(MODEL, "l1(café)", 0, 0)));
    assert!(l1.contains("let l1 = nn.dense(64, 128)"), "{l1}");
    assert!(l1.contains("param l1.w: [64, 128] ~ normal(0, 1) init normal(0, 0.125)"), "{l1}");

    // A circuit of the stdlib: its signature and comment.
    let dense = hover_text(&server.at("textDocument/hover", &uri, find(MODEL, "dense(64", 0, 1)));
    assert!(dense.contains("circuit dense(i: int, o: int)(x: [B, i]) -> [B, o]"), "{dense}");
    assert!(dense.contains("A fully connected layer"), "{dense}");

    // Built-ins, distributions and update rules: a line of documentation.
    let relu = hover_text(&server.at("textDocument/hover", &uri, find(MODEL, "relu", 0, 2)));
    assert!(relu.contains("relu(x)") && relu.contains("max(x, 0)"), "{relu}");
    let cat = hover_text(&server.at("textDocument/hover", &uri, find(MODEL, "categorical", 0, 0)));
    assert!(cat.contains("categorical(logits)"), "{cat}");
    let adam = hover_text(&server.at("textDocument/hover", &uri, find(MODEL, "adam", 0, 0)));
    assert!(adam.contains("beta2 = 0.999"), "{adam}");

    // The model: its `circ check -v` signature.
    let model = hover_text(&server.at("textDocument/hover", &uri, find(MODEL, "digits", 0, 0)));
    assert!(model.contains("model digits") && model.contains("param   l1.w"), "{model}");

    // Nothing under the cursor: no hover.
    assert_eq!(server.at("textDocument/hover", &uri, (1, 0)), Value::Null);
    assert_eq!(server.shutdown(), 0);
}

/// Shapes of values inside a circuit: one line for the circuit on its own, one per instance.
#[test]
fn hover_inside_a_circuit_shows_each_elaboration() {
    let (mut server, _) = Server::start("circuit");
    let uri = file_uri(&temp_dir("circuit").join("two.circ"));
    let text = "\
circuit double(k: int)(x: [B, k]) -> [B, k] {
    let y = x * 2
    return y
}
model m {
    data a: [N, 3] = csv(\"a\" .. \"c\")
    data b: [N, 5] = csv(\"d\" .. \"h\")
    let s = double(3)
    let t = double(5)
    let z = sum(s(a)) + sum(t(b))
    b ~ normal(z, 1)
}
";
    assert_eq!(server.open(&uri, text), Vec::<Value>::new());
    let y = hover_text(&server.at("textDocument/hover", &uri, find(text, "return y", 0, 7)));
    for line in ["let y: [B, k]", "let s.y: [N, 3]", "let t.y: [N, 5]"] {
        assert!(y.contains(line), "{line} missing from {y}");
    }
    let k = hover_text(&server.at("textDocument/hover", &uri, find(text, "k]) ->", 0, 0)));
    assert!(k.contains("argument k: int") && k.contains("argument s.k = 3"), "{k}");
    assert_eq!(server.shutdown(), 0);
}

#[test]
fn definition_jumps_to_bindings_into_the_stdlib_and_to_imports() {
    let (mut server, _) = Server::start("definition");
    let dir = temp_dir("definition");
    let uri = file_uri(&dir.join("digits.circ"));
    server.open(&uri, MODEL);

    // A use of a let: its definition in the document.
    let h = server.at("textDocument/definition", &uri, find(MODEL, "l2(h)", 0, 3));
    assert_eq!(h["uri"], uri.as_str());
    assert_eq!(range(&h), ((9, 8), (9, 9)));

    // `nn.dense`: the circuit in the stdlib, served as a read-only file.
    let dense = server.at("textDocument/definition", &uri, find(MODEL, "dense(64", 0, 2));
    let stdlib_uri = dense["uri"].as_str().unwrap();
    let path = circ::lsp::uri::to_path(&stdlib_uri.parse::<lsp_types::Uri>().unwrap()).unwrap();
    assert!(path.starts_with(&server.cache) && path.ends_with("nn.circ"), "{}", path.display());
    let stdlib = std::fs::read_to_string(&path).unwrap();
    assert_eq!(stdlib, include_str!("../stdlib/nn.circ"));
    assert!(std::fs::metadata(&path).unwrap().permissions().readonly());
    let (line, col) = find(&stdlib, "dense(i", 0, 0);
    assert_eq!(range(&dense), ((line as u64, col as u64), (line as u64, col as u64 + 5)));

    // The module in `nn.dense`, and the `import` itself: the module's file.
    for pos in [find(MODEL, "nn.dense", 0, 1), find(MODEL, "import nn", 0, 8)] {
        let nn = server.at("textDocument/definition", &uri, pos);
        assert_eq!(nn["uri"], stdlib_uri);
        assert_eq!(range(&nn), ((0, 0), (0, 0)));
    }

    // The stdlib file opened in the editor is a document like any other.
    assert_eq!(server.open(stdlib_uri, &stdlib), Vec::<Value>::new());
    let mlp_dense = server.at("textDocument/definition", stdlib_uri, find(&stdlib, "dense(i, h)", 0, 1));
    assert_eq!(mlp_dense["uri"], stdlib_uri);
    assert_eq!(range(&mlp_dense).0, (line as u64, col as u64));

    // A module next to the file: its circuits, and its mistakes shown on the import.
    std::fs::write(dir.join("layers.circ"), "circuit scale(k: int)(x: [B, k]) -> [B, k] {\n    return x * q\n}\n")
        .unwrap();
    let main = "import layers\nmodel m {\n    data x: [N, 2] = csv(\"a\", \"b\")\n    let s = layers.scale(2)\n    x ~ normal(s(x), 1)\n}\n";
    let main_uri = file_uri(&dir.join("main.circ"));
    let diags = server.open(&main_uri, main);
    let d = diags.iter().find(|d| d["code"] == "E0204").unwrap_or_else(|| panic!("{diags:?}"));
    assert_eq!(range(d), ((0, 0), (0, 13)), "shown on the import: {d}");
    let layers_uri = file_uri(&dir.join("layers.circ").canonicalize().unwrap());
    assert_eq!(d["relatedInformation"][0]["location"]["uri"], layers_uri.as_str());
    assert_eq!(range(&d["relatedInformation"][0]["location"]), ((1, 15), (1, 16)));
    let scale = server.at("textDocument/definition", &main_uri, find(main, "scale", 0, 1));
    assert_eq!(scale["uri"], layers_uri.as_str());
    assert_eq!(range(&scale), ((0, 8), (0, 13)));
    assert_eq!(server.shutdown(), 0);
}

#[test]
fn document_symbols_outline_models_circuits_and_bindings() {
    let (mut server, _) = Server::start("symbols");
    let uri = file_uri(&temp_dir("symbols").join("digits.circ"));
    let text = format!("circuit twice(k: int)(x: [B, k]) -> [B, k] {{\n    param g: [k] = 1\n    let y = x * g\n    return y * 2\n}}\n{MODEL}");
    server.open(&uri, &text);
    let symbols = server.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": uri } }));
    let names = |v: &Value| -> Vec<(String, u64, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let detail = s["detail"].as_str().unwrap_or("").to_string();
                (s["name"].as_str().unwrap().to_string(), s["kind"].as_u64().unwrap(), detail)
            })
            .collect()
    };
    let top = names(&symbols);
    assert_eq!(
        top,
        [
            ("twice".into(), 12, "(k: int)(x: [B, k]) -> [B, k]".into()),
            ("nn".into(), 2, String::new()),
            ("digits".into(), 5, String::new())
        ]
    );
    assert_eq!(
        names(&symbols[0]["children"]),
        [
            ("k".into(), 26, "int".into()),
            ("x".into(), 13, "[B, k]".into()),
            ("g".into(), 7, "[k]".into()),
            ("y".into(), 13, "[B, k]".into())
        ]
    );
    let model: Vec<(String, u64, String)> = names(&symbols[2]["children"]);
    let expect: Vec<(&str, u64, &str)> = vec![
        ("pixels", 8, "[N, 64]"),
        ("label", 8, "int[N]"),
        ("temperature", 7, "[]"),
        ("café", 13, "[N, 64]"),
        ("l1", 13, "= nn.dense(64, 128)"),
        ("l2", 13, "= nn.dense(128, 10)"),
        ("h", 13, "[N, 128]"),
    ];
    let expect: Vec<(String, u64, String)> = expect.into_iter().map(|(a, b, c)| (a.into(), b, c.into())).collect();
    assert_eq!(model, expect);
    // Each symbol's name lies inside its range.
    let r = range(&symbols[2]);
    let s = range(&json!({ "range": symbols[2]["selectionRange"] }));
    assert!(r.0 <= s.0 && s.1 <= r.1, "{r:?} {s:?}");
    assert_eq!(server.shutdown(), 0);
}

#[test]
fn shutdown_then_exit_ends_with_status_0_and_exit_alone_with_1() {
    let (server, _) = Server::start("exit0");
    assert_eq!(server.shutdown(), 0);

    let (mut server, _) = Server::start("exit1");
    server.notify("exit", Value::Null);
    assert_eq!(server.wait(), 1);

    // After `shutdown`, requests are refused until `exit`.
    let (mut server, _) = Server::start("refuse");
    server.request("shutdown", Value::Null);
    server.send(json!({ "jsonrpc": "2.0", "id": 77, "method": "textDocument/hover", "params": {
        "textDocument": { "uri": "file:///x.circ" }, "position": { "line": 0, "character": 0 } } }));
    let answer = server.recv();
    assert_eq!(answer["id"], 77);
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    server.notify("exit", Value::Null);
    assert_eq!(server.wait(), 0);
}

/// Unknown requests get an error and bad parameters get an error; the server stays up.
#[test]
fn bad_requests_are_answered_with_errors() {
    let (mut server, _) = Server::start("bad");
    server.send(json!({ "jsonrpc": "2.0", "id": 5, "method": "textDocument/formatting", "params": {} }));
    assert_eq!(server.recv()["error"]["code"], -32601);
    server.send(json!({ "jsonrpc": "2.0", "id": 6, "method": "textDocument/hover", "params": { "nonsense": 1 } }));
    assert_eq!(server.recv()["error"]["code"], -32602);
    // A document never opened: no hover, no definition, no symbols.
    assert_eq!(server.at("textDocument/hover", "file:///never.circ", (0, 0)), Value::Null);
    assert_eq!(server.at("textDocument/definition", "file:///never.circ", (0, 0)), Value::Null);
    // A document that is not a file: checked on its own, importing only the stdlib.
    assert_eq!(server.open("untitled:Untitled-1", MODEL), Vec::<Value>::new());
    assert_eq!(server.shutdown(), 0);
}

/// Everything the server computes from a document, at many positions, over the front end's
/// fuzz seed corpus (fuzz/README.md: the examples, the UI tests and the stdlib), each file also
/// cut short and with bytes dropped: nothing panics, and every range lies in its file.
#[test]
fn analysis_never_panics_on_the_fuzz_corpus() {
    use circ::lsp::{analysis::Analysis, hover, navigate};
    use lsp_types::Position;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["examples", "tests/ui", "stdlib"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "circ") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() > 100, "the corpus is too small: {}", files.len());
    let stdlib = temp_dir("corpus");
    circ::lsp::uri::write_stdlib(&stdlib).unwrap();
    let mut cases = 0;
    for (n, path) in files.iter().enumerate() {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let cut = |k: usize| chars.get(k).map_or(text.len(), |(i, _)| *i);
        let mut variants = vec![text.clone(), text[..cut(chars.len() * 2 / 3)].to_string()];
        // Drop a few characters at places that vary from file to file.
        let drop: Vec<usize> = (1..4).map(|j| (n * 7919 + j * 104_729) % chars.len().max(1)).collect();
        let dropped: String =
            chars.iter().enumerate().filter(|(k, _)| !drop.contains(k)).map(|(_, (_, c))| *c).collect();
        variants.push(dropped);
        for (v, variant) in variants.iter().enumerate() {
            let uri = circ::lsp::uri::from_path(path).unwrap();
            let run = std::panic::catch_unwind(|| {
                let a = Analysis::new(uri, variant, Some(&stdlib));
                for d in a.diagnostics() {
                    assert!(d.range.start <= d.range.end, "{d:?}");
                }
                let lines = variant.split('\n').count() as u32;
                for line in 0..=lines {
                    for character in (0..48).step_by(3).chain([999]) {
                        let pos = Position::new(line, character);
                        let _ = hover::hover(&a, pos);
                        if let Some(loc) = navigate::definition(&a, pos) {
                            assert!(loc.range.start <= loc.range.end);
                        }
                    }
                }
                navigate::symbols(&a).len()
            });
            assert!(run.is_ok(), "{} (variant {v}) panicked", path.display());
            cases += 1;
        }
    }
    let _ = make_writable(&stdlib);
    let _ = std::fs::remove_dir_all(&stdlib);
    assert!(cases >= 300);
}

/// The VS Code grammar highlights every keyword of the lexer and every name of the language
/// the server documents, and its JSON files parse.
#[test]
fn vscode_grammar_knows_every_keyword_and_builtin() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vscode = root.join("editors/vscode");
    for f in ["package.json", "language-configuration.json", "syntaxes/circ.tmLanguage.json"] {
        let text = std::fs::read_to_string(vscode.join(f)).unwrap();
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    let grammar = std::fs::read_to_string(vscode.join("syntaxes/circ.tmLanguage.json")).unwrap();
    let lexer = std::fs::read_to_string(root.join("src/front/lexer.rs")).unwrap();
    let keywords: Vec<&str> = lexer
        .split("#[token(\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|t| t.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    assert!(keywords.len() >= 14, "{keywords:?}");
    let names = circ::lsp::docs::DOCS.iter().map(|(n, ..)| *n);
    for word in keywords.iter().copied().chain(names) {
        let delimited =
            ["(", "|"].iter().any(|a| [")", "|"].iter().any(|b| grammar.contains(&format!("{a}{word}{b}"))));
        assert!(delimited, "`{word}` is not highlighted by {}", vscode.display());
    }
}
