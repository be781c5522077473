//! The MCP protocol as the gateway sees it: what a request asks for, and
//! which scopes that needs.
//!
//! - [`jsonrpc`]: reading a request body (single or batched) and the
//!   `Mcp-Method`/`Mcp-Name` headers.
//! - [`scopes`]: the operator's table of scopes per tool and method.

pub mod jsonrpc;
pub mod scopes;

pub use jsonrpc::{read, JsonRpcError, Message};
pub use scopes::{missing, ToolScopes};
