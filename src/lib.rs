//! Drawbridge: an OAuth 2.1 gateway that gives MCP clients Dynamic Client
//! Registration in front of an upstream identity provider (Google).

pub mod actors;
pub mod audit;
pub mod cimd;
pub mod clock;
pub mod commands;
pub mod configuration;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod mcp;
pub mod metrics;
pub mod open_files;
pub mod pages;
pub mod persistence;
pub mod rate_limit;
pub mod service;
pub mod single_flight;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod upstream;
