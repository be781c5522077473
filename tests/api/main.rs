//! The one integration-test binary: every area of the HTTP surface and the
//! binary's behaviour, driven the way a client or operator would.

mod binary;
mod discovery;
mod health;
mod helpers;
mod registration;
mod registration_input;
mod storage_modes;
