//! Finding a cloud's credentials as the `openstack` CLI does: `--os-cloud
//! NAME` (or `OS_CLOUD`) names an entry of `clouds.yaml`, which is
//! `OS_CLIENT_CONFIG_FILE`, else the first of `./clouds.yaml`,
//! `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`.
//!
//! The files are read with a small reader of the YAML that clouds.yaml
//! uses (nested block mappings of scalars, plain or quoted), to avoid a
//! YAML library for one file.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde_json::{Map, Value};

/// Password credentials of one cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudAuth {
    pub auth_url: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    pub region_name: Option<String>,
    pub interface: String,
}

/// The clouds.yaml the `openstack` CLI would read.
pub fn config_file() -> anyhow::Result<PathBuf> {
    if let Some(f) = std::env::var_os("OS_CLIENT_CONFIG_FILE").filter(|f| !f.is_empty()) {
        return Ok(PathBuf::from(f));
    }
    let mut candidates = vec![PathBuf::from("clouds.yaml")];
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".config/openstack/clouds.yaml"));
    }
    candidates.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "no clouds.yaml: set OS_CLIENT_CONFIG_FILE (stratus up writes one in its data dir)"
            )
        })
}

/// The credentials of cloud `name` (`--os-cloud`, else `OS_CLOUD`) in the
/// clouds.yaml the CLI would read.
pub fn load(name: Option<&str>) -> anyhow::Result<CloudAuth> {
    let name = match name {
        Some(n) => n.to_owned(),
        None => std::env::var("OS_CLOUD")
            .ok()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| anyhow!("name a cloud with --os-cloud NAME or OS_CLOUD"))?,
    };
    load_file(&config_file()?, &name)
}

/// Cloud `name` of clouds.yaml `file`.
pub fn load_file(file: &Path, name: &str) -> anyhow::Result<CloudAuth> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    cloud_of(&text, name).with_context(|| format!("in {}", file.display()))
}

/// Cloud `name` of a clouds.yaml text.
pub fn cloud_of(text: &str, name: &str) -> anyhow::Result<CloudAuth> {
    let doc = parse(text)?;
    let cloud = doc
        .get("clouds")
        .and_then(|c| c.get(name))
        .ok_or_else(|| anyhow!("no cloud named {name:?}"))?;
    let auth = cloud
        .get("auth")
        .ok_or_else(|| anyhow!("cloud {name:?} has no auth section"))?;
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let need = |k: &str| s(auth, k).ok_or_else(|| anyhow!("cloud {name:?} has no auth.{k}"));
    let domain = s(auth, "domain_name")
        .or_else(|| s(auth, "domain_id"))
        .unwrap_or_else(|| "Default".to_owned());
    Ok(CloudAuth {
        auth_url: need("auth_url")?,
        username: need("username")?,
        password: need("password")?,
        project_name: need("project_name")?,
        user_domain_name: s(auth, "user_domain_name").unwrap_or_else(|| domain.clone()),
        project_domain_name: s(auth, "project_domain_name").unwrap_or(domain),
        region_name: s(cloud, "region_name"),
        interface: s(cloud, "interface").unwrap_or_else(|| "public".to_owned()),
    })
}

/// Block mappings of scalars, by indentation; scalars stay strings.
fn parse(text: &str) -> anyhow::Result<Value> {
    // The open mappings: (indent of their keys, key in the parent, map).
    let mut stack: Vec<(usize, String, Map<String, Value>)> = vec![(0, String::new(), Map::new())];
    let mut pending: Option<(usize, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        if line.trim().is_empty() || line.trim() == "---" {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        let (key, value) = body
            .split_once(':')
            .filter(|(k, _)| !k.starts_with('"') && !k.starts_with('\''))
            .ok_or_else(|| anyhow!("line {}: only `key: value` lines are read", n + 1))?;
        if let Some((parent_indent, parent_key)) = pending.take() {
            if indent > parent_indent {
                stack.push((indent, parent_key, Map::new()));
            } else {
                insert(&mut stack, parent_key, Value::String(String::new()));
            }
        }
        while stack.len() > 1 && indent < stack.last().map_or(0, |s| s.0) {
            close(&mut stack);
        }
        if indent != stack.last().map_or(0, |s| s.0) && stack.len() > 1 {
            bail!("line {}: unexpected indentation", n + 1);
        }
        let key = key.trim().to_owned();
        let value = value.trim();
        if value.is_empty() {
            pending = Some((indent, key));
        } else {
            insert(&mut stack, key, Value::String(scalar(value)?));
        }
    }
    if let Some((_, key)) = pending {
        insert(&mut stack, key, Value::String(String::new()));
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    Ok(Value::Object(stack.pop().map(|s| s.2).unwrap_or_default()))
}

fn insert(stack: &mut [(usize, String, Map<String, Value>)], key: String, v: Value) {
    if let Some(top) = stack.last_mut() {
        top.2.insert(key, v);
    }
}

fn close(stack: &mut Vec<(usize, String, Map<String, Value>)>) {
    if let Some((_, key, map)) = stack.pop() {
        insert(stack, key, Value::Object(map));
    }
}

/// A line without its comment (`#` at the start or after a space, outside
/// quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if c == '"' && prev != '\\' => quote = None,
            Some('\'') if c == '\'' => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' && prev.is_whitespace() => return &line[..i],
            None => {}
        }
        prev = c;
    }
    line
}

/// A scalar's string: double-quoted ones have JSON's escapes (as
/// `stratus up` writes them), single-quoted ones double their quotes.
fn scalar(v: &str) -> anyhow::Result<String> {
    if v.starts_with('"') {
        return serde_json::from_str(v).map_err(|e| anyhow!("a quoted string {v}: {e}"));
    }
    if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return Ok(inner.replace("''", "'"));
    }
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_stratus_up_writes() {
        let text = crate::clouds_yaml::render(
            Path::new("/d/clouds.yaml"),
            "http://127.0.0.1:5000/v3",
            "a\"b: #c",
            "RegionOne",
        );
        let c = cloud_of(&text, "stratus").expect("cloud");
        assert_eq!(c.auth_url, "http://127.0.0.1:5000/v3");
        assert_eq!(c.password, "a\"b: #c");
        assert_eq!(c.username, "admin");
        assert_eq!(c.project_domain_name, "Default");
        assert_eq!(c.region_name.as_deref(), Some("RegionOne"));
        assert_eq!(c.interface, "public");
    }

    #[test]
    fn reads_plain_and_single_quoted_scalars_and_several_clouds() {
        let text = "clouds:\n  a:\n    auth:\n      auth_url: http://x:5000\n      \
                    username: u # a comment\n      password: 'it''s'\n      \
                    project_name: p\n      domain_name: D\n\n  b:\n    auth:\n      \
                    auth_url: http://y\n";
        let a = cloud_of(text, "a").expect("a");
        assert_eq!(a.username, "u");
        assert_eq!(a.password, "it's");
        assert_eq!(a.user_domain_name, "D");
        assert_eq!(a.region_name, None);
        let err = cloud_of(text, "b").expect_err("b has no username");
        assert!(err.to_string().contains("auth.username"), "{err}");
        assert!(cloud_of(text, "c").is_err());
    }
}
