//! A message body as the writer takes it: bytes made whole, or an answer of megabytes written a
//! block at a time as it goes out. A whole-file answer of a 3 MB file is 3–6 MB of JSON; made
//! whole it is encoded into one buffer (and the client waits for all of it before the first
//! byte leaves), then copied again into the pipe. Streamed, its length is counted first — the
//! header needs it — and its blocks are encoded as the pipe takes them: no buffer of the whole
//! answer, and the client reads while the rest is encoded.

/// How much of a streamed body is encoded at a time.
pub const BLOCK: usize = 64 * 1024;

pub enum Body {
    Bytes(Vec<u8>),
    Streamed(Streamed),
    /// A body, and what to do once its last byte has left the process (see
    /// [`Body::when_written`]).
    Timed(Box<Body>, Written),
}

/// Run by the writer once a body's last byte is written to the client.
pub type Written = Box<dyn FnOnce() + Send>;

/// A body given as blocks, and the bytes they add up to (exactly: the header says it).
pub struct Streamed {
    len: usize,
    blocks: Box<dyn Iterator<Item = Vec<u8>> + Send>,
}

impl Streamed {
    /// `blocks` must add up to `len` bytes.
    pub fn new(len: usize, blocks: impl Iterator<Item = Vec<u8>> + Send + 'static) -> Streamed {
        Streamed {
            len,
            blocks: Box::new(blocks),
        }
    }

    /// The body with `head` in front of it and `tail` after it.
    pub fn wrapped(self, head: Vec<u8>, tail: &'static [u8]) -> Streamed {
        Streamed {
            len: head.len() + self.len + tail.len(),
            blocks: Box::new(
                std::iter::once(head)
                    .chain(self.blocks)
                    .chain(std::iter::once(tail.to_vec())),
            ),
        }
    }
}

impl Body {
    /// The bytes the body is.
    pub fn len(&self) -> usize {
        match self {
            Body::Bytes(bytes) => bytes.len(),
            Body::Streamed(streamed) => streamed.len,
            Body::Timed(body, _) => body.len(),
        }
    }

    /// The body, with `then` to run once the writer has written its last byte to the client
    /// (flushed, not merely buffered). A body that is never written never runs it.
    pub fn when_written(self, then: impl FnOnce() + Send + 'static) -> Body {
        Body::Timed(Box::new(self), Box::new(then))
    }

    /// What to run once this body is written, taken out (the body is left without it).
    pub fn take_written(&mut self) -> Option<Written> {
        if !matches!(self, Body::Timed(..)) {
            return None;
        }
        match std::mem::replace(self, Body::Bytes(Vec::new())) {
            Body::Timed(body, then) => {
                *self = *body;
                Some(then)
            }
            _ => None,
        }
    }

    /// The pieces to write, in order.
    pub fn blocks(self) -> Box<dyn Iterator<Item = Vec<u8>> + Send> {
        match self {
            Body::Bytes(bytes) => Box::new(std::iter::once(bytes)),
            Body::Streamed(streamed) => streamed.blocks,
            Body::Timed(body, _) => body.blocks(),
        }
    }

    /// The whole body in one buffer.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Body::Bytes(bytes) => bytes,
            Body::Streamed(streamed) => {
                let mut out = Vec::with_capacity(streamed.len);
                for block in streamed.blocks {
                    out.extend_from_slice(&block);
                }
                out
            }
            Body::Timed(body, _) => body.into_bytes(),
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::Bytes(bytes)
    }
}
