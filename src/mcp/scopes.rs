//! Which scopes an MCP operation needs (`gateway.tool_scopes`): rules from a
//! tool name (exact or glob) to scopes, and method-level rules
//! (`tools/call`, `resources/read`, `prompts/get`, …). Every rule that
//! matches applies, so `"*" = ["mcp:read"]` with `"delete_*" =
//! ["mcp:write"]` makes `delete_file` need both.

use std::collections::BTreeSet;

use super::jsonrpc::Message;
use crate::domain::Glob;

#[derive(Debug, Clone, Default)]
pub struct ToolScopes {
    /// Tool-name pattern → scopes (applies to `tools/call`).
    pub tools: Vec<(Glob, Vec<String>)>,
    /// Method → scopes (applies to every call of that method).
    pub methods: Vec<(String, Vec<String>)>,
}

impl ToolScopes {
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.methods.is_empty()
    }

    /// Whether `name` is a tool rule's exact pattern (no wildcard): such
    /// names may be metric labels (a bounded set, chosen by the operator).
    pub fn is_exact(&self, name: &str) -> bool {
        self.tools
            .iter()
            .any(|(p, _)| p.as_str() == name && !p.as_str().contains(['*', '?']))
    }

    /// Every scope `message` needs (sorted, no repeats).
    pub fn required(&self, message: &Message) -> BTreeSet<String> {
        let mut needed = BTreeSet::new();
        let Some(method) = message.method() else {
            return needed;
        };
        for (m, scopes) in &self.methods {
            if m == method {
                needed.extend(scopes.iter().cloned());
            }
        }
        if method == "tools/call" {
            if let Some(name) = message.name() {
                for (pattern, scopes) in &self.tools {
                    if pattern.matches(name) {
                        needed.extend(scopes.iter().cloned());
                    }
                }
            }
        }
        needed
    }

    /// Whether a tool called `name` may be called with `granted` (for
    /// filtering `tools/list`).
    pub fn tool_allowed(&self, name: &str, granted: &[String]) -> bool {
        let call = Message::Call {
            method: "tools/call".into(),
            name: Some(name.into()),
            notification: false,
        };
        missing(&self.required(&call), granted).is_empty()
    }
}

/// The scopes of `needed` that `granted` lacks.
pub fn missing(needed: &BTreeSet<String>, granted: &[String]) -> Vec<String> {
    needed
        .iter()
        .filter(|s| !granted.iter().any(|g| g == *s))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ToolScopes {
        ToolScopes {
            tools: vec![
                (Glob::new("*"), vec!["mcp:read".into()]),
                (Glob::new("delete_*"), vec!["mcp:write".into()]),
                (
                    Glob::new("send_email"),
                    vec!["mcp:write".into(), "mail".into()],
                ),
            ],
            methods: vec![("resources/read".into(), vec!["mcp:resources".into()])],
        }
    }

    fn call(method: &str, name: Option<&str>) -> Message {
        Message::Call {
            method: method.into(),
            name: name.map(str::to_owned),
            notification: false,
        }
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_matching_rule_applies() {
        let t = table();
        assert_eq!(
            t.required(&call("tools/call", Some("read_file"))),
            set(&["mcp:read"])
        );
        assert_eq!(
            t.required(&call("tools/call", Some("delete_file"))),
            set(&["mcp:read", "mcp:write"])
        );
        assert_eq!(
            t.required(&call("tools/call", Some("send_email"))),
            set(&["mail", "mcp:read", "mcp:write"])
        );
        assert_eq!(
            t.required(&call("resources/read", Some("file:///a"))),
            set(&["mcp:resources"])
        );
        assert_eq!(t.required(&call("tools/list", None)), set(&[]));
        assert_eq!(t.required(&Message::Response), set(&[]));
        // A tools/call without a name matches no tool rule (the MCP server
        // refuses it), but method rules still apply.
        assert_eq!(t.required(&call("tools/call", None)), set(&[]));
    }

    #[test]
    fn missing_scopes_and_the_tools_list_filter_follow_the_grant() {
        let t = table();
        let granted = vec!["mcp:read".to_string()];
        let needed = t.required(&call("tools/call", Some("delete_file")));
        assert_eq!(missing(&needed, &granted), vec!["mcp:write".to_string()]);
        assert!(t.tool_allowed("read_file", &granted));
        assert!(!t.tool_allowed("delete_file", &granted));
        assert!(ToolScopes::default().tool_allowed("anything", &[]));
        assert!(t.is_exact("send_email"));
        assert!(!t.is_exact("delete_file") && !t.is_exact("delete_*"));
    }
}
