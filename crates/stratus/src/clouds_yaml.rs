//! `clouds.yaml` for the `openstack` CLI and openstacksdk, so that
//! `OS_CLIENT_CONFIG_FILE=DIR/clouds.yaml openstack --os-cloud stratus ...`
//! works right after `stratus up`.

use std::path::Path;

use crate::secrets::write_private;

/// The cloud name in the file.
pub const CLOUD_NAME: &str = "stratus";
pub const FILE: &str = "clouds.yaml";

/// The file's text. Strings are written as JSON strings, which YAML reads
/// as double-quoted scalars with the same escapes, so a password with any
/// characters stays intact without a YAML library.
pub fn render(path: &Path, auth_url: &str, password: &str, region: &str) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "# Written by `stratus up`; use with\n\
         #   export OS_CLIENT_CONFIG_FILE={file_hint}\n\
         #   openstack --os-cloud {name} token issue\n\
         clouds:\n  {name}:\n    auth:\n      auth_url: {auth_url}\n      username: \"admin\"\n      \
         password: {password}\n      project_name: \"admin\"\n      user_domain_name: \"Default\"\n      \
         project_domain_name: \"Default\"\n    region_name: {region}\n    interface: \"public\"\n    \
         identity_api_version: 3\n",
        file_hint = path.display(),
        name = CLOUD_NAME,
        auth_url = q(auth_url),
        password = q(password),
        region = q(region),
    )
}

/// Writes `dir/clouds.yaml` (mode 0600: it holds the admin password).
pub fn write(dir: &Path, auth_url: &str, password: &str, region: &str) -> anyhow::Result<()> {
    let path = dir.join(FILE);
    write_private(&path, &render(&path, auth_url, password, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_quoted() {
        let text = render(
            Path::new("/d/clouds.yaml"),
            "http://127.0.0.1:5000/v3",
            "a\"b: #c",
            "RegionOne",
        );
        assert!(text.contains(r#"password: "a\"b: #c""#), "{text}");
        assert!(text.contains("auth_url: \"http://127.0.0.1:5000/v3\""));
        assert!(text.contains("identity_api_version: 3"));
    }
}
