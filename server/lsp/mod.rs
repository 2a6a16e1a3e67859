//! The protocol edge: the only module that names LSP types or UTF-16. It converts positions to
//! byte offsets on the way in and back on the way out, and dispatches to the core through one
//! table (`dispatch.rs`).

mod agents;
mod body;
mod capabilities;
mod client;
mod completion;
mod dispatch;
mod ext;
mod options;
mod outbox;
pub mod outline;
mod position;
mod running;
mod runs;
mod server;
mod settings;
mod stdio;
mod template;
mod timing;
mod to_ext;
mod transport;
mod workspace;

pub use position::{Encoding, to_byte, to_byte_clamped, to_position};
pub use server::Backend;

use std::path::PathBuf;
use std::sync::Arc;

use crate::chunks::ChunkConfig;
pub use timing::MethodTimes;

/// Serves LSP on stdin/stdout until the client says `exit` or closes the stream.
/// `config_file` is the user's config file given on the command line (else `STRATA_CONFIG`, else
/// the XDG location).
pub async fn serve_stdio(config: ChunkConfig, config_file: Option<PathBuf>) {
    crate::resources::memory::release_when_idle();
    // This thread reads the client's messages (see `stdio`).
    crate::resources::sched::respond_quickly();
    let (input, output, room) = match stdio::stdio() {
        Ok(stdio) => stdio,
        Err(e) => {
            tracing::error!("stdout cannot be written: {e}");
            return;
        }
    };
    transport::serve(input, output, room, |outbox| {
        let client = client::Client::new(outbox.clone());
        let running = Arc::new(running::Running::new(outbox));
        Arc::new(Backend::new(
            client,
            running,
            config,
            config_file,
            Arc::new(MethodTimes::default()),
        ))
    })
    .await;
}

/// The answer to a request whose handler panicked: an internal error naming the method and the
/// panic's message (logged here). Returns the message too, for telling the user.
fn panicked(
    method: &str,
    panic: &(dyn std::any::Any + Send),
) -> (tower_lsp_server::jsonrpc::Error, String) {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(method, "handler panicked: {what}");
    let error = tower_lsp_server::jsonrpc::Error {
        code: tower_lsp_server::jsonrpc::ErrorCode::InternalError,
        message: format!("internal error in {method}: {what}").into(),
        data: None,
    };
    (error, what)
}

/// The file a document key (a URI) names: only `file:` URIs name one (not `git:`,
/// `untitled:`…). The session's `path_of` for editors.
pub fn file_path(key: &str) -> Option<PathBuf> {
    if !key.starts_with("file:") {
        return None;
    }
    let uri: tower_lsp_server::ls_types::Uri = key.parse().ok()?;
    Some(uri.to_file_path()?.into_owned())
}

/// The error for a request about a document the client has not opened.
fn not_open(uri: &tower_lsp_server::ls_types::Uri) -> tower_lsp_server::jsonrpc::Error {
    tower_lsp_server::jsonrpc::Error::invalid_params(format!("{} is not open", uri.as_str()))
}

/// The parse of an open document's current version (waiting for it if an edit is being parsed).
async fn parsed(
    store: &crate::documents::DocumentStore,
    uri: &tower_lsp_server::ls_types::Uri,
) -> tower_lsp_server::jsonrpc::Result<Arc<crate::documents::Parsed>> {
    let entry = store.entry(uri.as_str()).ok_or_else(|| not_open(uri))?;
    entry.parsed().await.ok_or_else(|| not_open(uri))
}
