//! Context: for a position or selection, and an optional question, exactly what an agent will
//! send — tiers of code under token budgets, secrets redacted, ignored files never included.
//! Assembly is pure; the workspace it reads is behind a trait, implemented at the edges.

pub(crate) mod assemble;
mod background;
mod bpe;
mod bpe_layout;
mod fit;
#[cfg(test)]
pub(crate) mod fixture;
pub(crate) mod immediate;
mod pack;
mod redact;
mod resolve;
mod sources;
#[cfg(test)]
mod tests;
mod tokens;
mod working;

pub use assemble::{Diagnostic, Message, NoWorkspace, RecentChunk, Request, Workspace, assemble};
pub use pack::{Budgets, ContextPack, Dropped, Fidelity, Item, Tier, TierPack};
pub use redact::{MARKER as REDACTED, Redaction, is_secret_file, redact};
pub use sources::ArchiveWorkspace;
pub use tokens::{Encoding, Tokenizer};
