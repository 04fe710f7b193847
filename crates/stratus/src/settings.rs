//! Where the configuration comes from: `--config FILE`, else
//! `DATA_DIR/stratus.toml` when it exists, else nothing (embedded defaults);
//! then `STRATUS_<SECTION>__<KEY>` environment overrides; then `--data-dir`,
//! which wins over everything because it was typed last.

use std::path::PathBuf;

use anyhow::Context;
use stratus_common::config::default_data_dir;
use stratus_common::Config;

use crate::cli::Place;

/// The config file name looked for in the data dir.
pub const CONFIG_FILE: &str = "stratus.toml";

pub fn load(place: &Place) -> anyhow::Result<Config> {
    let file = match &place.config {
        Some(f) => Some(f.clone()),
        None => {
            let dir = place.data_dir.clone().unwrap_or_else(default_data_dir);
            Some(dir.join(CONFIG_FILE)).filter(|f| f.is_file())
        }
    };
    let mut config = Config::load(file.as_deref()).with_context(|| match &file {
        Some(f) => format!("loading {}", f.display()),
        None => "loading the configuration from the environment".to_owned(),
    })?;
    if let Some(dir) = &place.data_dir {
        config.data_dir = dir.clone();
    }
    config.data_dir = absolute(config.data_dir);
    share_image_store_access(&mut config)?;
    Ok(config)
}

/// With `[image] store = "s3"`, compute hosts read image objects straight
/// from the image store (seed steps 21–25: from the storage cluster, not
/// through the image API), with the store's credentials and endpoint unless
/// `[imagecache.s3]` names its own (as Nova shares Glance's Ceph keyring).
/// `[imagecache.ceph]`, when set, finds the endpoint through the monitors.
fn share_image_store_access(config: &mut Config) -> anyhow::Result<()> {
    let image = config.sections.get("image").and_then(toml::Value::as_table);
    let is_s3 = image
        .and_then(|t| t.get("store"))
        .and_then(toml::Value::as_str)
        == Some("s3");
    let Some(store_s3) = image
        .and_then(|t| t.get("s3"))
        .and_then(toml::Value::as_table)
        .filter(|_| is_s3)
        .cloned()
    else {
        return Ok(());
    };
    let mut cache_s3 = config
        .sections
        .get("imagecache")
        .and_then(|c| c.get("s3"))
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    let is_set = |t: &toml::Table, k: &str| {
        t.get(k)
            .and_then(toml::Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    // Credentials go together: the host's own pair, or the store's.
    let groups: [&[&str]; 3] = [&["endpoint"], &["access_key", "secret_key"], &["region"]];
    for keys in groups {
        if keys.iter().any(|k| is_set(&cache_s3, k)) {
            continue;
        }
        for k in keys {
            if let Some(v) = store_s3.get(*k) {
                cache_s3.insert((*k).to_owned(), v.clone());
            }
        }
    }
    set_key(config, "imagecache", "s3", toml::Value::Table(cache_s3))
}

/// The string at `[section] key`, empty when the key or section is missing
/// or not a string.
pub fn section_str(config: &Config, section: &str, key: &str) -> String {
    config
        .sections
        .get(section)
        .and_then(|s| s.get(key))
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Sets `[section] key = value`, creating the section; the section's other
/// keys stay as they are (it is read by the service that owns it, whose
/// type the binary need not know).
pub fn set_key(
    config: &mut Config,
    section: &str,
    key: &str,
    value: impl Into<toml::Value>,
) -> anyhow::Result<()> {
    let entry = config
        .sections
        .entry(section.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let table = entry
        .as_table_mut()
        .with_context(|| format!("[{section}] in the configuration is not a section"))?;
    table.insert(key.to_owned(), value.into());
    Ok(())
}

/// The data dir is printed and written into files; make it absolute so
/// that those stay right whatever directory they are used from.
fn absolute(dir: PathBuf) -> PathBuf {
    if dir.is_absolute() {
        return dir;
    }
    std::env::current_dir().map(|c| c.join(&dir)).unwrap_or(dir)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn place(data_dir: Option<&Path>, config: Option<&Path>) -> Place {
        Place {
            data_dir: data_dir.map(Path::to_owned),
            config: config.map(Path::to_owned),
        }
    }

    #[test]
    fn the_data_dir_file_is_read_and_the_flag_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "data_dir = \"/elsewhere\"\nregion = \"RegionTwo\"\n[endpoints]\nidentity_port = 15999\n",
        )
        .expect("write");
        let c = load(&place(Some(dir.path()), None)).expect("config");
        assert_eq!(c.region, "RegionTwo");
        assert_eq!(c.endpoints.identity_port, 15999);
        assert_eq!(c.data_dir, dir.path(), "--data-dir wins over the file");
    }

    #[test]
    fn an_explicit_file_replaces_the_data_dir_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(CONFIG_FILE), "region = \"FromDir\"\n").expect("write");
        let other = dir.path().join("other.toml");
        std::fs::write(&other, "region = \"FromFlag\"\n").expect("write");
        let c = load(&place(Some(dir.path()), Some(&other))).expect("config");
        assert_eq!(c.region, "FromFlag");
    }

    #[test]
    fn no_file_means_defaults_and_a_missing_named_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = load(&place(Some(dir.path()), None)).expect("config");
        assert_eq!(c.endpoints.identity_port, 5000);
        assert!(load(&place(
            Some(dir.path()),
            Some(&dir.path().join("nope.toml"))
        ))
        .is_err());
    }

    #[test]
    fn keys_are_set_beside_the_others() {
        let mut c =
            Config::from_toml_and_env("[compute]\nfake_hosts = 3\n", Vec::new()).expect("config");
        assert_eq!(section_str(&c, "compute", "host"), "");
        set_key(&mut c, "compute", "host", "node-a").expect("set");
        set_key(&mut c, "network", "metadata_secret", "s").expect("set");
        assert_eq!(section_str(&c, "compute", "host"), "node-a");
        assert_eq!(section_str(&c, "network", "metadata_secret"), "s");
        let cc: stratus_compute::ComputeConfig = c.section("compute").expect("compute");
        assert_eq!((cc.host.as_str(), cc.fake_hosts), ("node-a", 3));
        let mut bad = Config::from_toml_and_env("", Vec::new()).expect("config");
        bad.sections.insert("x".into(), toml::Value::Integer(1));
        assert!(set_key(&mut bad, "x", "k", "v").is_err());
    }

    /// `[imagecache.s3] key`, empty when missing.
    fn cache_s3(c: &Config, key: &str) -> String {
        c.sections
            .get("imagecache")
            .and_then(|t| t.get("s3"))
            .and_then(|t| t.get(key))
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn the_image_cache_reads_the_s3_store_with_its_credentials() {
        let store = "[image]\nstore = \"s3\"\n[image.s3]\nendpoint = \"http://127.0.0.1:7480\"\n\
                     bucket = \"b\"\naccess_key = \"A\"\nsecret_key = \"S\"\n";
        let mut c = Config::from_toml_and_env(store, Vec::new()).expect("config");
        share_image_store_access(&mut c).expect("share");
        assert_eq!(cache_s3(&c, "endpoint"), "http://127.0.0.1:7480");
        assert_eq!(
            (cache_s3(&c, "access_key"), cache_s3(&c, "secret_key")),
            ("A".into(), "S".into())
        );
        assert_eq!(
            cache_s3(&c, "bucket"),
            "",
            "the bucket comes with each location"
        );

        // What the host names itself wins, key by key (a credential pair
        // as one); a file store shares nothing.
        let own = format!("{store}[imagecache.s3]\nendpoint = \"http://rgw2\"\n");
        let mut c = Config::from_toml_and_env(&own, Vec::new()).expect("config");
        share_image_store_access(&mut c).expect("share");
        assert_eq!(
            (cache_s3(&c, "endpoint"), cache_s3(&c, "access_key")),
            ("http://rgw2".into(), "A".into())
        );
        let own = format!("{store}[imagecache.s3]\naccess_key = \"B\"\n");
        let mut c = Config::from_toml_and_env(&own, Vec::new()).expect("config");
        share_image_store_access(&mut c).expect("share");
        assert_eq!(
            (cache_s3(&c, "access_key"), cache_s3(&c, "secret_key")),
            ("B".into(), String::new()),
            "a host's own key is never paired with the store's secret"
        );
        let file = store.replace("\"s3\"\n[image.s3]", "\"file\"\n[image.s3]");
        let mut c = Config::from_toml_and_env(&file, Vec::new()).expect("config");
        share_image_store_access(&mut c).expect("share");
        assert!(!c.sections.contains_key("imagecache"));
    }

    #[test]
    fn a_relative_data_dir_becomes_absolute() {
        let c = load(&place(Some(Path::new("rel/dir")), None)).expect("config");
        assert!(c.data_dir.is_absolute());
        assert!(c.data_dir.ends_with("rel/dir"));
    }
}
