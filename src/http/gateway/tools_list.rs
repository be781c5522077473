//! `gateway.filter_tools_list`: the MCP server's answer to `tools/list`
//! keeps only the tools the token may call, so a client does not offer a
//! tool that the gateway would refuse. A JSON answer (single or batched)
//! is filtered whole; an event stream event by event (each `data:` line
//! that holds a JSON-RPC result with `tools`). Anything that is not such
//! JSON passes unchanged.

use serde_json::Value;

use crate::mcp::ToolScopes;

/// Removes the tools `granted` may not call from every `result.tools` of a
/// JSON-RPC answer (an object or a batch); `None` when nothing changed.
pub(super) fn filter_json(body: &[u8], table: &ToolScopes, granted: &[String]) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    let changed = match &mut value {
        Value::Array(batch) => batch
            .iter_mut()
            .fold(false, |c, m| filter_message(m, table, granted) | c),
        message => filter_message(message, table, granted),
    };
    changed.then(|| serde_json::to_vec(&value).ok()).flatten()
}

fn filter_message(message: &mut Value, table: &ToolScopes, granted: &[String]) -> bool {
    let Some(tools) = message
        .get_mut("result")
        .and_then(|r| r.get_mut("tools"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = tools.len();
    tools.retain(|tool| match tool.get("name").and_then(Value::as_str) {
        Some(name) => table.tool_allowed(name, granted),
        None => true,
    });
    tools.len() != before
}

/// Filters the complete events of `buffer` (those ended by a blank line),
/// appending them to `out`; answers how many bytes of `buffer` were used.
pub(super) fn filter_events(
    buffer: &[u8],
    table: &ToolScopes,
    granted: &[String],
    out: &mut Vec<u8>,
) -> usize {
    let mut used = 0;
    while let Some(end) = event_end(&buffer[used..]) {
        let event = &buffer[used..used + end];
        filter_event(event, table, granted, out);
        used += end;
    }
    used
}

/// The length of the first complete event (up to and with its blank line).
fn event_end(buffer: &[u8]) -> Option<usize> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn filter_event(event: &[u8], table: &ToolScopes, granted: &[String], out: &mut Vec<u8>) {
    for line in event.split_inclusive(|b| *b == b'\n') {
        let filtered = line
            .strip_prefix(b"data:")
            .and_then(|data| filter_json(data.trim_ascii(), table, granted));
        match filtered {
            Some(json) => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&json);
                out.extend_from_slice(if line.ends_with(b"\r\n") {
                    b"\r\n"
                } else {
                    b"\n"
                });
            }
            None => out.extend_from_slice(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Glob;

    fn table() -> ToolScopes {
        ToolScopes {
            tools: vec![(Glob::new("delete_*"), vec!["mcp:write".into()])],
            methods: vec![],
        }
    }

    fn names(body: &[u8]) -> Vec<String> {
        let v: Value = serde_json::from_slice(body).unwrap();
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read_file"},{"name":"delete_file"}]}}"#;

    #[test]
    fn json_answers_keep_the_tools_the_token_may_call() {
        let read = vec!["mcp:read".to_string()];
        let out = filter_json(LIST.as_bytes(), &table(), &read).unwrap();
        assert_eq!(names(&out), ["read_file"]);
        let write = vec!["mcp:write".to_string()];
        assert!(filter_json(LIST.as_bytes(), &table(), &write).is_none());
        let batch = format!("[{LIST},{{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{{}}}}]");
        let out = filter_json(batch.as_bytes(), &table(), &read).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["result"]["tools"].as_array().unwrap().len(), 1);
        assert!(filter_json(b"not json", &table(), &read).is_none());
    }

    #[test]
    fn events_are_filtered_once_complete() {
        let read = vec!["mcp:read".to_string()];
        let stream = format!("event: message\ndata: {LIST}\n\ndata: {{\"partial");
        let mut out = Vec::new();
        let used = filter_events(stream.as_bytes(), &table(), &read, &mut out);
        assert_eq!(&stream.as_bytes()[used..], b"data: {\"partial");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("event: message\ndata: {") && text.ends_with("}\n\n"));
        assert!(!text.contains("delete_file") && text.contains("read_file"));
    }
}
