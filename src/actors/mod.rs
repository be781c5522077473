//! The actors that own Drawbridge's state. Each alone writes its own trees.

pub mod handle;
pub mod janitor;
pub mod lease;
pub mod registry;
pub mod token_broker;
pub mod vault;
