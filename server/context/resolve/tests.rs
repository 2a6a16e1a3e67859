//! Resolution tests: small workspaces written here, indexed through the real archive.
