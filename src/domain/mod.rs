//! Domain types: each parses its raw input once, so code that holds one
//! knows it is valid.

pub mod access;
mod application_type;
mod cidr;
mod client_id;
mod document_url;
mod error_code;
mod glob;
mod metadata;
pub mod pkce;
mod redirect_uri;
mod resource;
mod scope;
pub mod secret;
pub mod timeline;

pub use access::{AccessPolicy, Person, Refusal};
pub use application_type::ApplicationType;
pub use cidr::Cidr;
pub use client_id::ClientId;
pub use document_url::{DocumentUrl, DocumentUrlError};
pub use error_code::ErrorCode;
pub use glob::Glob;
pub use metadata::{
    AuthMethod, ClientMetadata, GrantType, MetadataError, RegistrationPolicy, RegistrationRequest,
};
pub use pkce::{CodeChallenge, PkceError};
pub use redirect_uri::{has_dot_segment, matches_registered, RedirectUri, RedirectUriError};
pub use resource::names_resource;
pub use scope::{ScopeError, ScopeSet, OFFLINE_ACCESS};
pub use secret::{SecretHash, SecretToken};
