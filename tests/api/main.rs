//! The one integration-test binary: every area of the HTTP surface and the
//! binary's behaviour, driven the way a client or operator would.

mod access;
mod acme;
mod admin;
mod backup;
mod binary;
mod cimd;
mod cimd_host;
mod cimd_signin;
mod concurrency;
mod crash;
mod discovery;
mod disk_faults;
mod fake_google;
mod gateway;
mod gateway_hardening;
mod hangup;
mod health;
mod helpers;
mod hostile;
mod https;
mod interop;
mod login_flow;
mod oidc_identity;
mod operations;
mod pages;
mod previous_release;
mod refresh_check;
mod registration;
mod registration_input;
mod security;
mod signin_binding;
mod storage_modes;
mod timeline;
mod tool_scopes;
mod upstream_faults;
