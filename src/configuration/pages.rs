//! `[pages]` as written in `config.toml` and the environment: how the
//! pages a person sees (consent, refusals, errors) name the service.
//! Validated into [`PagesConfig`](super::PagesConfig).

use serde::{Deserialize, Serialize};

/// `[pages]`: the operator's name and logo on the pages people see.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PagesSettings {
    /// The name people know the service by (the page header, the title).
    pub service_name: String,
    /// A PNG or SVG file shown beside the name (empty: no logo); read at
    /// start and embedded in the pages.
    pub logo_file: String,
}

impl Default for PagesSettings {
    fn default() -> Self {
        Self {
            service_name: "Drawbridge".into(),
            logo_file: String::new(),
        }
    }
}
