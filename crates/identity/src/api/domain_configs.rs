//! `/v3/domains/{id}/config[/{group}[/{option}]]` and
//! `/v3/domains/config[/{group}[/{option}]]/default`: domain-specific
//! identity configuration, as Keystone's `DomainConfigManager` checks it.
//!
//! Only Keystone's whitelisted options of the `identity` and `ldap` groups
//! (and the sensitive `ldap.password`, stored but never shown) may be set;
//! anything else is Keystone's 403 "Invalid domain specific configuration".
//! Stratus stores the configuration; it does not yet serve users from LDAP.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::check_id;
use super::extract::{Body, Caller};
use crate::db::domain_configs::{
    domain_config_delete, domain_config_list, domain_config_set, ConfigOption,
};
use crate::db::domains::domain_get;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::Inner;

/// Keystone's `whitelisted_options` with its defaults (keystone.conf).
fn whitelisted(group: &str) -> &'static [(&'static str, Value)] {
    use std::sync::OnceLock;
    static IDENTITY: OnceLock<Vec<(&str, Value)>> = OnceLock::new();
    static LDAP: OnceLock<Vec<(&str, Value)>> = OnceLock::new();
    match group {
        "identity" => {
            IDENTITY.get_or_init(|| vec![("driver", json!("sql")), ("list_limit", Value::Null)])
        }
        "ldap" => LDAP.get_or_init(|| {
            let n = Value::Null;
            vec![
                ("url", json!("ldap://localhost")),
                ("user", n.clone()),
                ("suffix", json!("cn=example,cn=com")),
                ("query_scope", json!("one")),
                ("page_size", json!(0)),
                ("alias_dereferencing", json!("default")),
                ("debug_level", n.clone()),
                ("chase_referrals", n.clone()),
                ("user_tree_dn", n.clone()),
                ("user_filter", n.clone()),
                ("user_objectclass", json!("inetOrgPerson")),
                ("user_id_attribute", json!("cn")),
                ("user_name_attribute", json!("sn")),
                ("user_mail_attribute", json!("mail")),
                ("user_description_attribute", json!("description")),
                ("user_pass_attribute", json!("userPassword")),
                ("user_enabled_attribute", json!("enabled")),
                ("user_enabled_invert", json!(false)),
                ("user_enabled_mask", json!(0)),
                ("user_enabled_default", json!("True")),
                ("user_attribute_ignore", json!(["default_project_id"])),
                ("user_default_project_id_attribute", n.clone()),
                ("user_enabled_emulation", json!(false)),
                ("user_enabled_emulation_dn", n.clone()),
                ("user_enabled_emulation_use_group_config", json!(false)),
                ("user_additional_attribute_mapping", json!([])),
                ("group_tree_dn", n.clone()),
                ("group_filter", n.clone()),
                ("group_objectclass", json!("groupOfNames")),
                ("group_id_attribute", json!("cn")),
                ("group_name_attribute", json!("ou")),
                ("group_members_are_ids", json!(false)),
                ("group_member_attribute", json!("member")),
                ("group_desc_attribute", json!("description")),
                ("group_attribute_ignore", json!([])),
                ("group_additional_attribute_mapping", json!([])),
                ("tls_cacertfile", n.clone()),
                ("tls_cacertdir", n.clone()),
                ("use_tls", json!(false)),
                ("tls_req_cert", json!("demand")),
                ("use_pool", json!(true)),
                ("pool_size", json!(10)),
                ("pool_retry_max", json!(3)),
                ("pool_retry_delay", json!(0.1)),
                ("pool_connection_timeout", json!(-1)),
                ("pool_connection_lifetime", json!(600)),
                ("use_auth_pool", json!(true)),
                ("auth_pool_size", json!(100)),
                ("auth_pool_connection_lifetime", json!(60)),
            ]
        }),
        _ => &[],
    }
}

const GROUPS: [&str; 2] = ["identity", "ldap"];

fn sensitive(group: &str, option: &str) -> bool {
    group == "ldap" && option == "password"
}

fn invalid(reason: String) -> IdentityError {
    IdentityError::Forbidden(format!("Invalid domain specific configuration: {reason}."))
}

/// Keystone's `_assert_valid_group_and_option`.
fn check_group_option(group: Option<&str>, option: Option<&str>) -> Result<()> {
    let Some(g) = group else { return Ok(()) };
    if !GROUPS.contains(&g) {
        return Err(invalid(format!(
            "Group {g} is not supported for domain specific configurations"
        )));
    }
    if let Some(o) = option {
        if !whitelisted(g).iter().any(|(k, _)| *k == o) && !sensitive(g, o) {
            return Err(invalid(format!(
                "Option {o} in group {g} is not supported for domain specific configurations"
            )));
        }
    }
    Ok(())
}

/// Keystone's `_assert_valid_config`: groups of non-empty option objects.
fn check_config(config: &Map<String, Value>) -> Result<()> {
    if config.is_empty() {
        return Err(invalid("No options specified".into()));
    }
    for (g, opts) in config {
        match opts {
            Value::Object(o) if !o.is_empty() => {
                for k in o.keys() {
                    check_group_option(Some(g), Some(k))?;
                }
            }
            _ => {
                return Err(invalid(format!(
                "The value of group {g} specified in the config should be a dictionary of options"
            )))
            }
        }
    }
    Ok(())
}

fn to_options(config: &Map<String, Value>) -> Vec<ConfigOption> {
    let mut out = Vec::new();
    for (g, opts) in config {
        if let Value::Object(o) = opts {
            for (k, v) in o {
                out.push(ConfigOption {
                    group: g.clone(),
                    option: k.clone(),
                    value: v.clone(),
                    sensitive: sensitive(g, k),
                });
            }
        }
    }
    out
}

/// `{group: {option: value}}`, or `{option: value}` when one option was asked.
fn to_config(opts: &[ConfigOption], one_option: bool) -> Value {
    if one_option {
        if let Some(o) = opts.first() {
            return json!({ o.option.clone(): o.value });
        }
    }
    let mut config = Map::new();
    for o in opts {
        let g = config
            .entry(o.group.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        g[o.option.as_str()] = o.value.clone();
    }
    Value::Object(config)
}

fn not_found(domain_id: &str, group: Option<&str>, option: Option<&str>) -> IdentityError {
    let what = match (group, option) {
        (Some(g), Some(o)) => format!("option {o} in group {g}"),
        (Some(g), None) => format!("group {g}"),
        _ => "any options".to_owned(),
    };
    IdentityError::NotFoundMessage(format!(
        "Could not find {what} in domain configuration for domain {domain_id}."
    ))
}

/// The config body's object (`{"config": {...}}`; missing is empty).
fn body_config(body: &Value) -> Result<Map<String, Value>> {
    match body.get("config") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(invalid("No options specified".into())),
    }
}

async fn visible(inner: &Inner, domain_id: &str) -> Result<Vec<ConfigOption>> {
    let mut conn = inner.db.conn().await?;
    Ok(domain_config_list(&mut conn, domain_id, None, None)
        .await?
        .into_iter()
        .filter(|o| !o.sensitive)
        .collect())
}

async fn get_config(
    inner: &Inner,
    caller: &Caller,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Json<Value>> {
    check_id("domain", domain_id)?;
    let ctx = caller.ctx();
    let mut conn = inner.db.conn().await?;
    if group == Some("security_compliance") {
        // Anyone may read the default domain's password rules.
        domain_get(&mut conn, domain_id).await?;
        if domain_id != "default" {
            return Err(invalid("Reading security compliance information for any domain other than the default domain is not allowed or supported".into()));
        }
        return match option {
            Some(o @ ("password_regex" | "password_regex_description")) => {
                Ok(Json(json!({"config": { o: null }})))
            }
            Some(_) => Err(invalid("Reading security compliance values other than password_regex and password_regex_description is not allowed".into())),
            None => Ok(Json(json!({"config": {"security_compliance":
                {"password_regex": null, "password_regex_description": null}}}))),
        };
    }
    enforce(&ctx, Action::AdminOnly("identity:get_domain_config"))?;
    domain_get(&mut conn, domain_id).await?;
    check_group_option(group, option)?;
    let opts: Vec<ConfigOption> = domain_config_list(&mut conn, domain_id, group, option)
        .await?
        .into_iter()
        .filter(|o| !o.sensitive)
        .collect();
    if opts.is_empty() {
        return Err(not_found(domain_id, group, option));
    }
    Ok(Json(json!({"config": to_config(&opts, option.is_some())})))
}

async fn update_config(
    inner: &Inner,
    caller: &Caller,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
    body: &Value,
) -> Result<Json<Value>> {
    check_id("domain", domain_id)?;
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:update_domain_config"),
    )?;
    let given = body_config(body)?;
    // For one option the body is `{option: value}`: make it `{group: {...}}`.
    let config = match (group, option) {
        (Some(g), Some(_)) => {
            let mut m = Map::new();
            m.insert(g.to_owned(), Value::Object(given));
            m
        }
        _ => given,
    };
    let mut tx = crate::db::begin(&inner.db).await?;
    domain_get(&mut tx, domain_id).await?;
    check_config(&config)?;
    check_group_option(group, option)?;
    if let Some(g) = group {
        let only_that = config.len() == 1
            && config.contains_key(g)
            && option.is_none_or(|o| {
                config[g]
                    .as_object()
                    .is_some_and(|m| m.len() == 1 && m.contains_key(o))
            });
        if !only_that {
            return Err(invalid(match option {
                Some(o) => format!("Trying to update option {o} in group {g}, so that, and only that, option must be specified  in the config"),
                None => format!("Trying to update group {g}, so that, and only that, group must be specified in the config"),
            }));
        }
        if domain_config_list(&mut tx, domain_id, Some(g), option)
            .await?
            .is_empty()
        {
            return Err(not_found(domain_id, Some(g), option));
        }
    }
    for o in to_options(&config) {
        domain_config_set(&mut tx, domain_id, &o).await?;
    }
    tx.commit().await?;
    let opts = visible(inner, domain_id).await?;
    if opts.is_empty() {
        return Err(not_found(domain_id, None, None));
    }
    Ok(Json(json!({"config": to_config(&opts, false)})))
}

async fn delete_config(
    inner: &Inner,
    caller: &Caller,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<StatusCode> {
    check_id("domain", domain_id)?;
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:delete_domain_config"),
    )?;
    let mut tx = crate::db::begin(&inner.db).await?;
    domain_get(&mut tx, domain_id).await?;
    check_group_option(group, option)?;
    if let Some(g) = group {
        if domain_config_list(&mut tx, domain_id, Some(g), None)
            .await?
            .is_empty()
        {
            return Err(not_found(domain_id, Some(g), None));
        }
        if option.is_some()
            && domain_config_list(&mut tx, domain_id, Some(g), option)
                .await?
                .is_empty()
        {
            return Err(not_found(domain_id, Some(g), option));
        }
    }
    domain_config_delete(&mut tx, domain_id, group, option).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v3/domains/{id}/config`: replaces the whole configuration; 201
/// when the domain had none, 200 otherwise.
pub async fn create(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(domain_id): Path<String>,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    check_id("domain", &domain_id)?;
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:create_domain_config"),
    )?;
    let config = body_config(&body)?;
    let mut tx = crate::db::begin(&inner.db).await?;
    domain_get(&mut tx, &domain_id).await?;
    check_config(&config)?;
    let had = domain_config_delete(&mut tx, &domain_id, None, None).await? > 0;
    for o in to_options(&config) {
        domain_config_set(&mut tx, &domain_id, &o).await?;
    }
    tx.commit().await?;
    let opts = visible(&inner, &domain_id).await?;
    let status = if had {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(json!({"config": to_config(&opts, false)}))))
}

pub async fn show(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(domain_id): Path<String>,
) -> Result<Json<Value>> {
    get_config(&inner, &caller, &domain_id, None, None).await
}

pub async fn show_group(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((domain_id, group)): Path<(String, String)>,
) -> Result<Json<Value>> {
    get_config(&inner, &caller, &domain_id, Some(&group), None).await
}

pub async fn show_option(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((domain_id, group, option)): Path<(String, String, String)>,
) -> Result<Json<Value>> {
    get_config(&inner, &caller, &domain_id, Some(&group), Some(&option)).await
}

pub async fn update(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(domain_id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<Value>> {
    update_config(&inner, &caller, &domain_id, None, None, &body).await
}

pub async fn update_group(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((domain_id, group)): Path<(String, String)>,
    Body(body): Body<Value>,
) -> Result<Json<Value>> {
    update_config(&inner, &caller, &domain_id, Some(&group), None, &body).await
}

pub async fn update_option(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((domain_id, group, option)): Path<(String, String, String)>,
    Body(body): Body<Value>,
) -> Result<Json<Value>> {
    update_config(
        &inner,
        &caller,
        &domain_id,
        Some(&group),
        Some(&option),
        &body,
    )
    .await
}

pub async fn remove(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(domain_id): Path<String>,
) -> Result<StatusCode> {
    delete_config(&inner, &caller, &domain_id, None, None).await
}

pub async fn remove_group(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((domain_id, group)): Path<(String, String)>,
) -> Result<StatusCode> {
    delete_config(&inner, &caller, &domain_id, Some(&group), None).await
}

pub async fn remove_option(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path((domain_id, group, option)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    delete_config(&inner, &caller, &domain_id, Some(&group), Some(&option)).await
}

/// Keystone's `get_config_default`: the whitelisted options' defaults.
fn defaults(group: Option<&str>, option: Option<&str>) -> Result<Value> {
    check_group_option(group, option)?;
    let groups: Vec<&str> = match group {
        Some(g) => vec![g],
        None => GROUPS.to_vec(),
    };
    if let (Some(g), Some(o)) = (group, option) {
        let Some((_, v)) = whitelisted(g).iter().find(|(k, _)| *k == o) else {
            return Err(invalid(format!(
                "Reading the default for option {o} in group {g} is not supported"
            )));
        };
        return Ok(json!({ o: v }));
    }
    let mut config = Map::new();
    for g in groups {
        let opts: Map<String, Value> = whitelisted(g)
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        config.insert(g.to_owned(), Value::Object(opts));
    }
    Ok(Value::Object(config))
}

pub async fn default_config(caller: Caller) -> Result<Json<Value>> {
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:get_domain_config_default"),
    )?;
    Ok(Json(json!({"config": defaults(None, None)?})))
}

pub async fn default_group(caller: Caller, Path(group): Path<String>) -> Result<Json<Value>> {
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:get_domain_config_default"),
    )?;
    Ok(Json(json!({"config": defaults(Some(&group), None)?})))
}

pub async fn default_option(
    caller: Caller,
    Path((group, option)): Path<(String, String)>,
) -> Result<Json<Value>> {
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:get_domain_config_default"),
    )?;
    Ok(Json(
        json!({"config": defaults(Some(&group), Some(&option))?}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_keystones_groups_and_options() {
        assert!(check_group_option(Some("ldap"), Some("url")).is_ok());
        assert!(check_group_option(Some("ldap"), Some("password")).is_ok());
        assert!(check_group_option(Some("identity"), Some("driver")).is_ok());
        let e = check_group_option(Some("cache"), None).expect_err("403");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(check_group_option(Some("ldap"), Some("nope")).is_err());
        assert!(defaults(Some("ldap"), Some("password")).is_err());
        assert_eq!(
            defaults(Some("identity"), Some("driver")).expect("default"),
            json!({"driver": "sql"})
        );
    }
}
