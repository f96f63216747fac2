//! The Settings page's backing: the config as JSON (the TOML file's
//! sections and keys), checked by the same rules as the file
//! (`Config::parse`, so errors name the key), written back to the same
//! TOML file and applied by restarting the engine in-process.
//!
//! The file is rewritten from the settings, so comments in it are not kept;
//! it holds only the keys whose values differ from the defaults, so what
//! the window (or the setup assistant) writes reads like a hand-written
//! config, and a later release's better default still reaches the keys the
//! admin never set.

use std::path::Path;

use postern_engine::config::{Config, ConfigError, UpstreamAuth, UpstreamMode};
use serde::Serialize;
use serde_json::Value;

use crate::shell::Shell;

#[derive(Debug, Clone, Serialize, PartialEq, ts_rs::TS)]
pub struct FieldError {
    /// The config key, e.g. `upstream.port`; empty when the problem is not one key's.
    pub key: String,
    pub message: String,
}

/// The config as JSON: the TOML's sections and keys (durations as "5m").
fn to_json(config: &Config) -> Value {
    serde_json::to_value(config).expect("the config serialises")
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
/// and its (minimal) TOML text when they are good.
pub fn check(config: &Value, path: &Path) -> Result<(Config, String), Vec<FieldError>> {
    let text = to_toml(config).map_err(|e| vec![e])?;
    let parsed = Config::parse(&text, path).map_err(|e| vec![field_error(e)])?;
    let text = minimal_toml(&parsed, path)?;
    Ok((parsed, text))
}

/// A config's TOML with only what differs from the defaults: sections with
/// nothing set are left out. `upstream.auth = "none"` is left out for relay
/// and Direct Send, whose default it is. Checked to read back as `config`.
pub fn minimal_toml(config: &Config, path: &Path) -> Result<String, Vec<FieldError>> {
    let mut json = to_json(config);
    let defaults = to_json(&Config::default());
    if let (Some(sections), Some(default_sections)) = (json.as_object_mut(), defaults.as_object()) {
        for (name, section) in sections.iter_mut() {
            if let (Some(keys), Some(default_keys)) = (
                section.as_object_mut(),
                default_sections.get(name).and_then(Value::as_object),
            ) {
                keys.retain(|k, v| default_keys.get(k) != Some(v));
            }
        }
        if config.upstream.mode != UpstreamMode::Submission
            && config.upstream.auth == UpstreamAuth::None
        {
            if let Some(u) = sections.get_mut("upstream").and_then(Value::as_object_mut) {
                u.remove("auth");
            }
        }
        sections.retain(|_, section| !matches!(section.as_object(), Some(keys) if keys.is_empty()));
    }
    let text = to_toml(&json).map_err(|e| vec![e])?;
    match Config::parse(&text, path) {
        Ok(back) if back == *config => Ok(text),
        Ok(_) => Err(vec![FieldError {
            key: String::new(),
            message: "the settings do not read back the same from the file; nothing was saved"
                .into(),
        }]),
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

/// Saves a checked config and applies it (`save_settings`, the LAN switch,
/// and through `edit_and_apply` the secrets and setup): the file is written, and when the config changed (or the engine is not
/// running) the shell's config is replaced and `restart` starts the engine
/// on it (in the tray app `app::start_engine`). Returns whether it restarted.
pub async fn save_and_apply<F, Fut>(
    shell: &Shell,
    parsed: Config,
    text: &str,
    restart: F,
) -> Result<bool, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    write(&shell.config_path, text)?;
    let changed = *shell.config.read().await != parsed;
    let stopped = shell.running.lock().await.is_none();
    let restarted = changed || stopped;
    if restarted {
        *shell.config.write().await = parsed;
        tracing::info!("settings saved; restarting the relay with them");
        restart().await?;
    }
    Ok(restarted)
}

/// The current config changed by `edit`, checked by the file's rules, saved
/// minimal and applied. The error is the first problem, in words.
pub async fn edit_and_apply<F, Fut>(
    shell: &Shell,
    edit: impl FnOnce(&mut Config) -> Result<(), String>,
    restart: F,
) -> Result<bool, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut config = shell.config.read().await.clone();
    edit(&mut config)?;
    let text = minimal_toml(&config, &shell.config_path).map_err(|e| plain(&e))?;
    save_and_apply(shell, config, &text, restart).await
}

/// Field errors as one sentence ("listener.users: …").
pub fn plain(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| {
            if e.key.is_empty() {
                e.message.clone()
            } else {
                format!("{}: {}", e.key, e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_json_and_toml() {
        let config = Config::default();
        let mut json = to_json(&config);
        json["listener"]["listen"] = serde_json::json!(["127.0.0.1:2525"]);
        let (back, text) = check(&json, Path::new("p.toml")).unwrap();
        // Nothing differs from the defaults: nothing is written.
        assert_eq!(text.trim(), "", "{text}");
        assert_eq!(to_json(&back), json);
        assert_eq!(Config::parse(&text, Path::new("p.toml")).unwrap(), config);
    }

    #[test]
    fn a_saved_form_holds_only_what_was_changed_and_reads_back_the_same() {
        let mut json = to_json(&Config::default());
        json["upstream"]["mailbox"] = serde_json::json!("scanner@contoso.com");
        json["oauth"]["client_id"] = serde_json::json!("11111111-2222-3333-4444-555555555555");
        json["oauth"]["tenant"] = serde_json::json!("contoso.com");
        json["oauth"]["flow"] = serde_json::json!("client-credentials");
        json["listener"]["listen"] = serde_json::json!(["0.0.0.0:2525"]);
        json["listener"]["allow"] = serde_json::json!(["127.0.0.0/8", "::1/128", "192.168.1.0/24"]);
        json["delivery"]["retry_first"] = serde_json::json!("2m");
        let (parsed, text) = check(&json, Path::new("p.toml")).unwrap();
        let table: toml::Table = text.parse().unwrap();
        let keys = |s: &str| -> Vec<String> {
            let mut k: Vec<String> = table[s].as_table().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        let mut sections: Vec<&String> = table.keys().collect();
        sections.sort();
        assert_eq!(
            sections,
            ["delivery", "listener", "oauth", "upstream"],
            "{text}"
        );
        assert_eq!(keys("listener"), ["allow", "listen"], "{text}");
        assert_eq!(keys("upstream"), ["mailbox"], "{text}");
        assert_eq!(keys("oauth"), ["client_id", "flow", "tenant"], "{text}");
        assert_eq!(keys("delivery"), ["retry_first"], "{text}");
        assert_eq!(table["oauth"]["flow"].as_str(), Some("client-credentials"));
        let back = Config::parse(&text, Path::new("p.toml")).unwrap();
        assert_eq!(back, parsed);
        assert_eq!(to_json(&back), json);
    }

    #[test]
    fn relay_leaves_out_the_auth_it_implies() {
        let text = "[upstream]\nmode = \"relay\"\ndomain = \"contoso.com\"\n";
        let config = Config::parse(text, Path::new("p.toml")).unwrap();
        let (parsed, saved) = check(&to_json(&config), Path::new("p.toml")).unwrap();
        assert_eq!(parsed, config);
        let table: toml::Table = saved.parse().unwrap();
        assert!(table["upstream"].get("auth").is_none(), "{saved}");
        assert_eq!(Config::parse(&saved, Path::new("p.toml")).unwrap(), config);
    }

    #[test]
    fn the_readme_example_reads_back_the_same() {
        let readme = include_str!("../../README.md");
        let example = readme
            .split("```toml")
            .nth(1)
            .and_then(|s| s.split("```").next())
            .expect("README has a toml example");
        let config = Config::parse(example, Path::new("p.toml")).unwrap();
        let saved = minimal_toml(&config, Path::new("p.toml")).unwrap();
        assert_eq!(Config::parse(&saved, Path::new("p.toml")).unwrap(), config);
        // Every key written is one the hand-written example has.
        let hand: toml::Table = example.parse().unwrap();
        let ours: toml::Table = saved.parse().unwrap();
        for (section, keys) in &ours {
            for key in keys.as_table().unwrap().keys() {
                assert!(hand[section].get(key).is_some(), "{section}.{key}: {saved}");
            }
        }
    }

    /// What the setup assistant writes for Microsoft Graph (ui/src/setup/draft.ts,
    /// `applyChoice`) on a first start: the engine takes it, and the saved file
    /// holds only those keys.
    #[test]
    fn the_setup_assistants_graph_config_is_valid() {
        use postern_engine::config::{OAuthFlow, UpstreamAuth, UpstreamMode};
        let mut json = to_json(&Config::default());
        json["upstream"]["mode"] = serde_json::json!("graph");
        json["upstream"]["auth"] = serde_json::json!("oauth");
        json["upstream"]["mailbox"] = serde_json::json!("scanner@contoso.com");
        json["oauth"]["flow"] = serde_json::json!("client-credentials");
        json["oauth"]["tenant"] = serde_json::json!("contoso.com");
        json["oauth"]["client_id"] = serde_json::json!("7f3c2a10-5b1e-4d2c-9a8e-2c1f0b9e6d44");
        json["graph"]["endpoint"] = serde_json::json!("https://graph.microsoft.com");
        let v = validate(&json, Path::new("p.toml"));
        assert!(v.ok, "{:?}", v.errors);
        let (parsed, text) = check(&json, Path::new("p.toml")).unwrap();
        assert_eq!(parsed.upstream.mode, UpstreamMode::Graph);
        assert_eq!(parsed.upstream.auth, UpstreamAuth::OAuth);
        assert_eq!(parsed.oauth.flow, OAuthFlow::ClientCredentials);
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["upstream"]["mode"].as_str(), Some("graph"), "{text}");
        assert_eq!(
            table["oauth"]["flow"].as_str(),
            Some("client-credentials"),
            "{text}"
        );
        assert_eq!(Config::parse(&text, Path::new("p.toml")).unwrap(), parsed);
        // A plain-http endpoint is the engine's to refuse, under its key.
        json["graph"]["endpoint"] = serde_json::json!("http://example.com");
        let v = validate(&json, Path::new("p.toml"));
        assert!(!v.ok);
        assert_eq!(v.errors[0].key, "graph.endpoint", "{:?}", v.errors);
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
