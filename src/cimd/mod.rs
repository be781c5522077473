//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document,
//! the MCP authorization revision 2026-07-28): a client identifies itself
//! with an `https` URL whose document Drawbridge fetches and validates.
//!
//! - [`crate::domain::DocumentUrl`]: which `client_id`s name a document.
//! - [`policy`]: which document URLs the operator takes.
//! - [`address`]: which addresses a fetch may reach.
//! - [`fetch`]: fetching one document safely.
//! - [`document`]: validating what was fetched.
//! - [`cache`]: keeping documents as HTTP caching allows, one fetch per URL at a time.

pub mod address;
pub mod cache;
pub mod document;
pub mod fetch;
pub mod policy;

pub use crate::domain::{DocumentUrl, DocumentUrlError};
pub use cache::{Cached, CimdError, DocumentCache, Lifetimes, Source};
pub use document::{validate, DocumentError};
pub use fetch::{fetch, FetchError, FetchPolicy, Fetched};
pub use policy::{PolicyRefusal, UrlPattern, UrlPolicy};
