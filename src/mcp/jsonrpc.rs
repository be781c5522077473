//! What an MCP request asks for, read from its JSON-RPC body (single or
//! batched) and the 2026-07-28 transport's `Mcp-Method`/`Mcp-Name` headers,
//! which must agree with the body when both are present. Only the method
//! and the name of the tool, resource or prompt are read: never arguments.

use serde_json::Value;

/// Largest batch taken (each entry is checked against the policy).
pub const MAX_BATCH: usize = 100;

/// One JSON-RPC message of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request or notification: its method and the name it acts on
    /// (`tools/call` and `prompts/get`: `params.name`; `resources/read`:
    /// `params.uri`).
    Call {
        method: String,
        name: Option<String>,
        notification: bool,
    },
    /// A response to a request of the server's (sampling, elicitation).
    Response,
}

impl Message {
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Call { method, .. } => Some(method),
            Message::Response => None,
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            Message::Call { name, .. } => name.as_deref(),
            Message::Response => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonRpcError {
    #[error("the body is not JSON")]
    NotJson,
    #[error("an object in the body names the same member twice")]
    DuplicateKey,
    #[error("a JSON-RPC batch must not be empty")]
    EmptyBatch,
    #[error("a JSON-RPC batch holds at most {MAX_BATCH} messages")]
    BatchTooLarge,
    #[error("each JSON-RPC message must be an object with \"jsonrpc\": \"2.0\"")]
    NotJsonRpc,
    #[error("a JSON-RPC request's method must be a string")]
    BadMethod,
    #[error("the {0} of a {1} request must be a string")]
    BadName(&'static str, String),
    #[error("the Mcp-Method header does not match the request's method")]
    MethodMismatch,
    #[error("the Mcp-Name header does not match the request's {0}")]
    NameMismatch(&'static str),
    #[error("the Mcp-Name header needs the Mcp-Method header")]
    NameWithoutMethod,
}

/// The field that names what `method` acts on, if any.
fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        _ => None,
    }
}

fn message(value: &Value) -> Result<Message, JsonRpcError> {
    let obj = value.as_object().ok_or(JsonRpcError::NotJsonRpc)?;
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(JsonRpcError::NotJsonRpc);
    }
    let Some(method) = obj.get("method") else {
        return if obj.contains_key("result") || obj.contains_key("error") {
            Ok(Message::Response)
        } else {
            Err(JsonRpcError::NotJsonRpc)
        };
    };
    let method = method.as_str().ok_or(JsonRpcError::BadMethod)?.to_owned();
    let name = match name_field(&method) {
        None => None,
        Some(field) => match obj.get("params").and_then(|p| p.get(field)) {
            Some(Value::String(s)) => Some(s.clone()),
            None => None,
            Some(_) => return Err(JsonRpcError::BadName(field, method)),
        },
    };
    Ok(Message::Call {
        method,
        name,
        notification: !obj.contains_key("id"),
    })
}

/// The messages of `body`, checked against the `Mcp-Method` and `Mcp-Name`
/// headers when they are sent.
pub fn read(
    body: &[u8],
    header_method: Option<&str>,
    header_name: Option<&str>,
) -> Result<Vec<Message>, JsonRpcError> {
    // Parsers disagree on which of two equal members wins: a body that
    // names `method` or `name` twice could say one thing to this check and
    // another to the MCP server, so a repeated member is refused.
    let UniqueKeys(value) = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => JsonRpcError::DuplicateKey,
        _ => JsonRpcError::NotJson,
    })?;
    let messages = match &value {
        Value::Array(batch) if batch.is_empty() => return Err(JsonRpcError::EmptyBatch),
        Value::Array(batch) if batch.len() > MAX_BATCH => return Err(JsonRpcError::BatchTooLarge),
        Value::Array(batch) => batch.iter().map(message).collect::<Result<Vec<_>, _>>()?,
        single => vec![message(single)?],
    };
    if header_name.is_some() && header_method.is_none() {
        return Err(JsonRpcError::NameWithoutMethod);
    }
    if let Some(header_method) = header_method {
        // The headers describe the request; every call in the body must be it.
        for m in &messages {
            let Message::Call { method, name, .. } = m else {
                continue;
            };
            if method != header_method {
                return Err(JsonRpcError::MethodMismatch);
            }
            if let (Some(field), Some(header_name)) = (name_field(method), header_name) {
                if name.as_deref() != Some(header_name) {
                    return Err(JsonRpcError::NameMismatch(field));
                }
            }
        }
    }
    Ok(messages)
}

/// Any JSON value, read in one pass that fails on an object with a
/// repeated member.
struct UniqueKeys(Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<UniqueKeys, E> {
        // JSON text has no NaN or infinity; `from` maps them to null.
        Ok(UniqueKeys(Value::from(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(Value::String(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(Value::String(v)))
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys(Value::Null))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(UniqueKeys(Value::Array(items)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(serde::de::Error::custom(DUPLICATE));
            }
            let UniqueKeys(value) = map.next_value()?;
            members.insert(key, value);
        }
        Ok(UniqueKeys(Value::Object(members)))
    }
}

/// The visitor's only error: any other failure is the text's.
const DUPLICATE: &str = "duplicate member";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    fn call(method: &str, name: Option<&str>, notification: bool) -> Message {
        Message::Call {
            method: method.into(),
            name: name.map(str::to_owned),
            notification,
        }
    }

    #[test]
    fn single_requests_name_their_tool_resource_or_prompt() {
        let tool = body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "delete_file", "arguments": {"path": "/"}}}),
        );
        assert_eq!(
            read(&tool, None, None).unwrap(),
            vec![call("tools/call", Some("delete_file"), false)]
        );
        let res = body(
            json!({"jsonrpc": "2.0", "id": "a", "method": "resources/read", "params": {"uri": "file:///x"}}),
        );
        assert_eq!(
            read(&res, None, None).unwrap(),
            vec![call("resources/read", Some("file:///x"), false)]
        );
        let note = body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert_eq!(
            read(&note, None, None).unwrap(),
            vec![call("notifications/initialized", None, true)]
        );
        let list = body(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
        assert_eq!(
            read(&list, None, None).unwrap(),
            vec![call("tools/list", None, false)]
        );
    }

    #[test]
    fn batches_are_read_message_by_message_responses_included() {
        let batch = body(json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a"}},
            {"jsonrpc": "2.0", "method": "notifications/progress"},
            {"jsonrpc": "2.0", "id": 7, "result": {}}
        ]));
        assert_eq!(
            read(&batch, None, None).unwrap(),
            vec![
                call("tools/call", Some("a"), false),
                call("notifications/progress", None, true),
                Message::Response
            ]
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        use JsonRpcError::*;
        for (raw, why) in [
            (b"not json".to_vec(), NotJson),
            (br#"{"jsonrpc": "2.0", "id": 1"#.to_vec(), NotJson),
            (br#"{"jsonrpc": "2.0", "id": 1} {}"#.to_vec(), NotJson),
            ([b"[".repeat(200), b"]".repeat(200)].concat(), NotJson),
            (
                br#"{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "method": "tools/list"}"#
                    .to_vec(),
                DuplicateKey,
            ),
            (
                br#"[{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "a", "name": "b"}}]"#
                    .to_vec(),
                DuplicateKey,
            ),
            (b"[]".to_vec(), EmptyBatch),
            (b"42".to_vec(), NotJsonRpc),
            (body(json!({"id": 1, "method": "tools/list"})), NotJsonRpc),
            (
                body(json!({"jsonrpc": "1.0", "id": 1, "method": "tools/list"})),
                NotJsonRpc,
            ),
            (body(json!({"jsonrpc": "2.0", "id": 1})), NotJsonRpc),
            (
                body(json!({"jsonrpc": "2.0", "id": 1, "method": 5})),
                BadMethod,
            ),
            (
                body(
                    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 5}}),
                ),
                BadName("name", "tools/call".into()),
            ),
            (
                body(json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, 3])),
                NotJsonRpc,
            ),
        ] {
            assert_eq!(
                read(&raw, None, None).unwrap_err(),
                why,
                "{}",
                String::from_utf8_lossy(&raw)
            );
        }
        for raw in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","name":"delete_file"}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":{"b":1,"b":2}}}]"#,
        ] {
            assert_eq!(
                read(raw.as_bytes(), None, None).unwrap_err(),
                DuplicateKey,
                "{raw}"
            );
        }
        let huge: Vec<Value> = (0..=MAX_BATCH)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "ping"}))
            .collect();
        assert_eq!(
            read(&body(Value::Array(huge)), None, None).unwrap_err(),
            BatchTooLarge
        );
    }

    #[test]
    fn headers_must_agree_with_the_body() {
        use JsonRpcError::*;
        let tool = body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "read_file"}}),
        );
        assert!(read(&tool, Some("tools/call"), Some("read_file")).is_ok());
        assert!(read(&tool, Some("tools/call"), None).is_ok());
        assert_eq!(
            read(&tool, Some("tools/list"), None).unwrap_err(),
            MethodMismatch
        );
        assert_eq!(
            read(&tool, Some("tools/call"), Some("delete_file")).unwrap_err(),
            NameMismatch("name")
        );
        assert_eq!(
            read(&tool, None, Some("read_file")).unwrap_err(),
            NameWithoutMethod
        );
        // A batch smuggling a second tool behind the headers' one.
        let batch = body(json!([
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "read_file"}},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "delete_file"}}
        ]));
        assert_eq!(
            read(&batch, Some("tools/call"), Some("read_file")).unwrap_err(),
            NameMismatch("name")
        );
        let res = body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "file:///a"}}),
        );
        assert_eq!(
            read(&res, Some("resources/read"), Some("file:///b")).unwrap_err(),
            NameMismatch("uri")
        );
    }
}
