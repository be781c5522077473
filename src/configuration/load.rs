//! Reading the file and the environment into [`Settings`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::env::{generic_target, GENERIC_PREFIX, NAMED, RESERVED};
use super::{Config, ConfigError, Settings};

/// Where the configuration came from, for `check-config`.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// Variables that set a key, with the key they set.
    pub variables: Vec<(String, String)>,
}

/// Loads the configuration the way the binary does: `.env` (when present)
/// into the process environment, then `path` (or `DRAWBRIDGE_CONFIG`, or
/// `./config.toml` when it exists), then the environment.
pub fn load(path: Option<&Path>) -> Result<(Config, Sources), ConfigError> {
    let _ = dotenvy::dotenv();
    let explicit = path
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("DRAWBRIDGE_CONFIG").map(PathBuf::from));
    let file = match explicit {
        Some(p) => Some(p),
        None => Some(PathBuf::from("config.toml")).filter(|p| p.exists()),
    };
    let text = match &file {
        Some(p) => Some(std::fs::read_to_string(p).map_err(|e| {
            ConfigError::new("--config", format!("cannot read {}: {e}", p.display()))
        })?),
        None => None,
    };
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    let (config, mut sources) = load_from(text.as_deref(), &vars)?;
    sources.file = file;
    Ok((config, sources))
}

/// Builds the configuration from a file's text and a set of variables;
/// the pure core of [`load`], used directly by tests.
pub fn load_from(
    file_text: Option<&str>,
    vars: &BTreeMap<String, String>,
) -> Result<(Config, Sources), ConfigError> {
    let defaults = defaults_table();
    let mut merged = defaults.clone();
    if let Some(text) = file_text {
        let file: Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::new("config.toml", e.to_string().trim().replace('\n', " "))
        })?;
        overlay_file(&mut merged, &defaults, file)?;
    }
    let mut sources = Sources::default();
    for (name, value) in vars {
        let Some(path) = env_target(name)? else {
            continue;
        };
        let dotted = path.join(".");
        let label = format!("{dotted} ({name})");
        let expected = lookup(&defaults, &path)
            .filter(|v| !v.is_table() || is_open_table(v))
            .ok_or_else(|| {
                ConfigError::new(name.clone(), format!("no configuration key `{dotted}`"))
            })?;
        let value = coerce(value, expected).map_err(|problem| ConfigError::new(label, problem))?;
        let (key, tables) = path.split_last().expect("a target has a section and a key");
        table_at(&mut merged, tables).insert(key.clone(), value);
        sources.variables.push((name.clone(), dotted));
    }
    let settings: Settings = Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| {
            ConfigError::new("config.toml", e.to_string().trim().replace('\n', " "))
        })?;
    Ok((Config::validate(settings)?, sources))
}

fn defaults_table() -> Table {
    match Value::try_from(Settings::default()) {
        Ok(Value::Table(t)) => t,
        _ => unreachable!("Settings always serialises to a table"),
    }
}

/// The value at `path` (`["oauth", "cimd", "enabled"]`), if any.
fn lookup<'a>(table: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let value = table.get(first)?;
    match rest {
        [] => Some(value),
        _ => lookup(value.as_table()?, rest),
    }
}

/// The table at `path`, created where missing.
fn table_at<'a>(table: &'a mut Table, path: &[String]) -> &'a mut Table {
    let Some((first, rest)) = path.split_first() else {
        return table;
    };
    let entry = table
        .entry(first.clone())
        .or_insert_with(|| Value::Table(Table::new()));
    match entry {
        Value::Table(t) => table_at(t, rest),
        _ => unreachable!("sections are tables by construction"),
    }
}

/// The key a variable sets (`["section", …, "key"]`), if it is a
/// configuration variable at all.
fn env_target(name: &str) -> Result<Option<Vec<String>>, ConfigError> {
    if let Some((_, target)) = NAMED.iter().find(|(n, _)| *n == name) {
        return Ok(Some(target.split('.').map(str::to_owned).collect()));
    }
    if !name.starts_with(GENERIC_PREFIX) || RESERVED.contains(&name) {
        return Ok(None);
    }
    // Only the `DRAWBRIDGE_<SECTION>__<KEY>` form is configuration (an
    // unknown section or key in it is an error, later); other
    // `DRAWBRIDGE_*` names belong to the tools around the server (the
    // operator scripts' DRAWBRIDGE_URL) and must not stop it.
    Ok(generic_target(name))
}

/// Checks every key of the file against the defaults (unknown keys and
/// wrong types are errors), then copies it over them.
fn overlay_file(merged: &mut Table, defaults: &Table, file: Table) -> Result<(), ConfigError> {
    for (section, value) in file {
        let Some(Value::Table(known)) = defaults.get(&section) else {
            return Err(ConfigError::new(section, "unknown section"));
        };
        let Value::Table(keys) = value else {
            return Err(ConfigError::new(section, "expected a table ([section])"));
        };
        let merged = table_at(merged, std::slice::from_ref(&section));
        overlay_table(merged, known, keys, &section)?;
    }
    Ok(())
}

/// One table of the file (`label` is its dotted name) over its defaults;
/// sub-tables (`[oauth.cimd]`) recurse.
fn overlay_table(
    merged: &mut Table,
    known: &Table,
    keys: Table,
    label: &str,
) -> Result<(), ConfigError> {
    for (key, value) in keys {
        let label = format!("{label}.{key}");
        let expected = known
            .get(&key)
            .ok_or_else(|| ConfigError::new(&label, "unknown key"))?;
        if !same_type(expected, &value) {
            return Err(ConfigError::new(
                &label,
                format!(
                    "expected {}, found {}",
                    type_name(expected),
                    type_name(&value)
                ),
            ));
        }
        match (expected, value) {
            // An open table (`[gateway.tool_scopes]`): its keys are the
            // operator's, checked when the settings are read.
            (open, value) if is_open_table(open) => {
                merged.insert(key, value);
            }
            (Value::Table(known), Value::Table(keys)) => {
                let merged = table_at(merged, std::slice::from_ref(&key));
                overlay_table(merged, known, keys, &label)?;
            }
            (_, value) => {
                merged.insert(key, value);
            }
        }
    }
    Ok(())
}

/// A table whose default is empty holds the operator's own keys (a map
/// from names to lists), rather than known settings.
fn is_open_table(v: &Value) -> bool {
    v.as_table().is_some_and(Table::is_empty)
}

fn same_type(expected: &Value, got: &Value) -> bool {
    match (expected, got) {
        (Value::Array(_), Value::Array(items)) => items.iter().all(Value::is_str),
        _ => std::mem::discriminant(expected) == std::mem::discriminant(got),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list of strings",
        Value::Table(_) => "a table",
    }
}

/// Turns a variable's text into a value of the key's type.
fn coerce(raw: &str, expected: &Value) -> Result<Value, String> {
    let raw = raw.trim();
    match expected {
        Value::String(_) => Ok(Value::String(raw.to_owned())),
        Value::Integer(_) => raw
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("expected an integer, got `{raw}`")),
        Value::Boolean(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("expected true or false, got `{raw}`")),
        },
        Value::Array(_) => Ok(Value::Array(
            raw.split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )),
        // An open table: `name=item item;other=item` (items split like a
        // list's).
        open if is_open_table(open) => {
            let mut table = Table::new();
            for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
                let (name, items) = entry
                    .split_once('=')
                    .ok_or_else(|| format!("expected `name=value;…`, got `{entry}`"))?;
                let items = coerce(items, &Value::Array(Vec::new()))?;
                table.insert(name.trim().to_owned(), items);
            }
            Ok(Value::Table(table))
        }
        other => Err(format!(
            "cannot be set from the environment ({})",
            type_name(other)
        )),
    }
}
