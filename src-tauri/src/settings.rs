//! The Settings page's backing: the config as JSON (the TOML file's
//! sections and keys), checked by the same rules as the file
//! (`Config::parse`, so errors name the key), written back to the same
//! TOML file and applied by restarting the engine in-process.
//!
//! The file is rewritten from the settings, so comments in it are not kept.

use std::path::Path;

use postern_engine::config::{Config, ConfigError};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct FieldError {
    /// The config key, e.g. `upstream.port`; empty when the problem is not one key's.
    pub key: String,
    pub message: String,
}

/// JSON settings → TOML text. TOML has no null: a null means "not set".
pub fn to_toml(config: &Value) -> Result<String, FieldError> {
    fn strip_nulls(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), strip_nulls(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
            v => v.clone(),
        }
    }
    if !config.is_object() {
        return Err(FieldError {
            key: String::new(),
            message: "the settings must be an object of sections".into(),
        });
    }
    toml::to_string(&strip_nulls(config)).map_err(|e| FieldError {
        key: String::new(),
        message: e.to_string(),
    })
}

/// `validate_settings`: the verdict of [`check`].
pub fn validate(config: &Value, path: &Path) -> crate::contract::Validation {
    match check(config, path) {
        Ok(_) => crate::contract::Validation {
            ok: true,
            errors: vec![],
        },
        Err(errors) => crate::contract::Validation { ok: false, errors },
    }
}

/// Checks settings as the config file would be checked; the parsed config
/// and its TOML text when they are good.
pub fn check(config: &Value, path: &Path) -> Result<(Config, String), Vec<FieldError>> {
    let text = to_toml(config).map_err(|e| vec![e])?;
    match Config::parse(&text, path) {
        Ok(c) => Ok((c, text)),
        Err(e) => Err(vec![field_error(e)]),
    }
}

fn field_error(e: ConfigError) -> FieldError {
    match e {
        ConfigError::Invalid { key, message, .. } => FieldError {
            key: key.to_string(),
            message,
        },
        // "listener.allow: invalid type: …" (the key path leads when known).
        ConfigError::Parse { message, .. } => match message.split_once(": ") {
            Some((key, rest)) if !key.contains(' ') => FieldError {
                key: key.to_string(),
                message: rest.to_string(),
            },
            _ => FieldError {
                key: String::new(),
                message,
            },
        },
        ConfigError::Read { .. } => FieldError {
            key: String::new(),
            message: e.to_string(),
        },
    }
}

/// Writes the TOML text to `path` (through a temporary file and a rename,
/// so a crash leaves the old file or the new one, never half of one).
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot save {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_json(config: &Config) -> Value {
        serde_json::to_value(config).unwrap()
    }

    #[test]
    fn defaults_round_trip_through_json_and_toml() {
        let config = Config::default();
        let mut json = to_json(&config);
        json["listener"]["listen"] = serde_json::json!(["127.0.0.1:2525"]);
        let (back, text) = check(&json, Path::new("p.toml")).unwrap();
        assert!(text.contains("[listener]"), "{text}");
        assert_eq!(to_json(&back), json);
    }

    #[test]
    fn errors_name_the_key() {
        let mut json = to_json(&Config::default());
        json["listener"]["listen"] = serde_json::json!([]);
        json["listener"]["tls_listen"] = serde_json::json!([]);
        let errs = check(&json, Path::new("p.toml")).unwrap_err();
        assert_eq!(errs[0].key, "listener.listen", "{errs:?}");

        let mut json = to_json(&Config::default());
        json["listener"]["max_message_bytes"] = serde_json::json!("lots");
        let errs = check(&json, Path::new("p.toml")).unwrap_err();
        assert_eq!(errs[0].key, "listener.max_message_bytes", "{errs:?}");
        assert!(check(&serde_json::json!(3), Path::new("p")).is_err());
    }

    #[test]
    fn writes_replace_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/postern.toml");
        write(&p, "a = 1\n").unwrap();
        write(&p, "a = 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a = 2\n");
    }
}
