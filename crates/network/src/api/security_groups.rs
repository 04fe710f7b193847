//! `/v2.0/security-groups` and `/v2.0/security-group-rules`, with each
//! project's `default` group made on first use, holding Neutron's default
//! rules (ingress from the same group, egress anywhere; IPv4 and IPv6).

use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::{ProjectId, SecurityGroupId};
use stratus_common::time::now;
use stratus_common::RequestContext;
use uuid::Uuid;

use super::networks::select_fields;
use super::query::{respond, ListQuery};
use super::{
    owner_for_create, parse_path_id, require_read, require_write, resource_body, ts, State,
};
use crate::db::security_groups::{self as dbsg, Rule, SecurityGroup};
use crate::domain::security_group_rule::{port_value, validate_port_range};
use crate::domain::tags::Tagged;
use crate::error::{Json, NetworkError, Result};

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/security-groups", get(list).post(create))
        .route(
            "/v2.0/security-groups/{id}",
            get(show).put(update).delete(delete),
        )
        .route(
            "/v2.0/security-group-rules",
            get(rule_list).post(rule_create),
        )
        .route(
            "/v2.0/security-group-rules/{id}",
            get(rule_show).delete(rule_delete),
        )
}

pub fn rule_view(r: &Rule) -> Value {
    json!({
        "id": r.id,
        "security_group_id": r.security_group_id,
        "project_id": r.project_id,
        "tenant_id": r.project_id,
        "direction": r.direction,
        "ethertype": r.ethertype,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix.map(|p| p.to_string()),
        "remote_group_id": r.remote_group_id,
        "description": r.description,
        "created_at": ts(r.created_at),
        "updated_at": ts(r.updated_at),
        "revision_number": r.revision_number,
    })
}

pub fn view(g: &SecurityGroup) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "project_id": g.project_id,
        "tenant_id": g.project_id,
        "security_group_rules": g.rules.iter().map(rule_view).collect::<Vec<_>>(),
        "created_at": ts(g.created_at),
        "updated_at": ts(g.updated_at),
        "revision_number": g.revision_number,
        "tags": [],
    })
}

fn new_rule(
    group: &SecurityGroup,
    direction: &str,
    ethertype: &str,
    remote_group: Option<SecurityGroupId>,
) -> Rule {
    Rule {
        id: Uuid::new_v4(),
        security_group_id: group.id,
        project_id: group.project_id.clone(),
        direction: direction.to_owned(),
        ethertype: ethertype.to_owned(),
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: remote_group,
        description: String::new(),
        revision_number: 0,
        created_at: group.created_at,
        updated_at: group.created_at,
    }
}

fn new_group(project: &ProjectId, name: &str, description: &str) -> SecurityGroup {
    let t = now();
    SecurityGroup {
        id: SecurityGroupId::new(),
        project_id: project.clone(),
        name: name.to_owned(),
        description: description.to_owned(),
        stateful: true,
        rules: Vec::new(),
        revision_number: 1,
        created_at: t,
        updated_at: t,
    }
}

/// The project's default group, made (once, whatever the concurrency) if missing.
pub async fn ensure_default(state: &State, project: &ProjectId) -> Result<SecurityGroupId> {
    let mut c = state.db.conn().await?;
    if let Some(id) = dbsg::default_sg_get(&mut c, project).await? {
        return Ok(id);
    }
    drop(c);
    let mut g = new_group(project, "default", "Default security group");
    for eth in ["IPv4", "IPv6"] {
        g.rules.push(new_rule(&g, "ingress", eth, Some(g.id)));
        g.rules.push(new_rule(&g, "egress", eth, None));
    }
    let mut tx = crate::db::begin_write(&state.db).await?;
    dbsg::sg_insert(&mut tx, &g).await?;
    if !dbsg::default_sg_claim(&mut tx, project, &g.id).await? {
        // Another request made it first; ours is rolled back.
        drop(tx);
        let mut c = state.db.conn().await?;
        return dbsg::default_sg_get(&mut c, project)
            .await?
            .ok_or_else(|| NetworkError::internal("default security group vanished"));
    }
    for r in &g.rules {
        dbsg::rule_insert(&mut tx, r).await?;
    }
    tx.commit().await?;
    Ok(g.id)
}

/// A group the caller may see, else its 404.
pub async fn visible(
    state: &State,
    ctx: &RequestContext,
    id: &SecurityGroupId,
) -> Result<SecurityGroup> {
    let mut c = state.db.conn().await?;
    match dbsg::sg_get(&mut c, id).await? {
        Some(g) if ctx.owns(&g.project_id) => Ok(g),
        _ => Err(NetworkError::SecurityGroupNotFound(id.to_string())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateGroup {
    name: Option<String>,
    description: Option<String>,
}

async fn create(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    require_write(&ctx, "create_security_group")?;
    let b: CreateGroup = resource_body(body, "security_group")?;
    let project = owner_for_create(&ctx, b.project_id, b.tenant_id)?;
    let name = b.name.unwrap_or_default();
    if name == "default" {
        return Err(NetworkError::SecurityGroupDefaultAlreadyExists);
    }
    ensure_default(&state, &project).await?;
    let mut c = state.db.conn().await?;
    super::quotas::check(&state, &mut c, &project, "security_group").await?;
    drop(c);
    let mut g = new_group(&project, &name, &b.description.unwrap_or_default());
    for eth in ["IPv4", "IPv6"] {
        g.rules.push(new_rule(&g, "egress", eth, None));
    }
    let mut tx = crate::db::begin_write(&state.db).await?;
    dbsg::sg_insert(&mut tx, &g).await?;
    for r in &g.rules {
        dbsg::rule_insert(&mut tx, r).await?;
    }
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"security_group": view(&g)})),
    ))
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_security_group")?;
    let q = ListQuery::parse(raw.as_deref())?;
    if let Some(p) = &ctx.project_id {
        ensure_default(&state, p).await?;
    }
    let scope = super::visible_scope(&ctx, "get_security_group")?;
    let mut c = state.db.conn().await?;
    let groups = dbsg::sg_list(&mut c, scope.as_ref()).await?;
    let mut views: Vec<Value> = groups.iter().map(view).collect();
    super::tags::attach_all(&mut c, Tagged::SecurityGroup, &mut views).await?;
    Ok(axum::Json(respond(
        views,
        &q,
        "security_groups",
        uri.path(),
        &headers,
    )?))
}

async fn show(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_security_group")?;
    let id: SecurityGroupId = parse_path_id(&id, NetworkError::SecurityGroupNotFound)?;
    let g = visible(&state, &ctx, &id).await?;
    let mut v = view(&g);
    super::tags::attach_one(&mut *state.db.conn().await?, Tagged::SecurityGroup, &mut v).await?;
    Ok(axum::Json(
        json!({"security_group": select_fields(v, raw.as_deref())?}),
    ))
}

async fn update(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_write(&ctx, "update_security_group")?;
    let id: SecurityGroupId = parse_path_id(&id, NetworkError::SecurityGroupNotFound)?;
    let b: UpdateGroup = resource_body(body, "security_group")?;
    let mut g = visible(&state, &ctx, &id).await?;
    let mut c = state.db.conn().await?;
    if dbsg::sg_is_default(&mut c, &id).await? && b.name.as_deref().is_some_and(|n| n != "default")
    {
        return Err(NetworkError::SecurityGroupCannotUpdateDefault);
    }
    if b.name.as_deref() == Some("default") && g.name != "default" {
        return Err(NetworkError::SecurityGroupDefaultAlreadyExists);
    }
    if let Some(v) = b.name {
        g.name = v;
    }
    if let Some(v) = b.description {
        g.description = v;
    }
    g.updated_at = now();
    dbsg::sg_update(&mut c, &g).await?;
    let g = dbsg::sg_get(&mut c, &id)
        .await?
        .ok_or_else(|| NetworkError::SecurityGroupNotFound(id.to_string()))?;
    let mut v = view(&g);
    super::tags::attach_one(&mut c, Tagged::SecurityGroup, &mut v).await?;
    Ok(axum::Json(json!({ "security_group": v })))
}

async fn delete(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_write(&ctx, "delete_security_group")?;
    let id: SecurityGroupId = parse_path_id(&id, NetworkError::SecurityGroupNotFound)?;
    visible(&state, &ctx, &id).await?;
    let mut tx = crate::db::begin_write(&state.db).await?;
    if dbsg::sg_is_default(&mut tx, &id).await? && !ctx.is_admin() {
        return Err(NetworkError::SecurityGroupCannotRemoveDefault);
    }
    if dbsg::sg_in_use(&mut tx, &id).await? {
        return Err(NetworkError::SecurityGroupInUse(id.to_string()));
    }
    dbsg::sg_delete(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRule {
    security_group_id: Option<String>,
    direction: Option<String>,
    ethertype: Option<String>,
    protocol: Option<Value>,
    // Neutron takes integers or strings of them.
    port_range_min: Option<Value>,
    port_range_max: Option<Value>,
    remote_ip_prefix: Option<String>,
    remote_group_id: Option<String>,
    description: Option<String>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

/// Protocol names Neutron accepts, and numbers 0-255 (kept as given).
fn parse_protocol(v: Option<&Value>) -> Result<Option<String>> {
    let s = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.to_ascii_lowercase(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(NetworkError::BadRequest(format!(
                "Security group rule protocol {other} not supported."
            )))
        }
    };
    const NAMES: [&str; 23] = [
        "ah",
        "dccp",
        "egp",
        "esp",
        "gre",
        "hopopt",
        "icmp",
        "igmp",
        "ip",
        "ipip",
        "ipv6-encap",
        "ipv6-frag",
        "ipv6-icmp",
        "icmpv6",
        "ipv6-nonxt",
        "ipv6-opts",
        "ipv6-route",
        "ospf",
        "pgm",
        "rsvp",
        "sctp",
        "tcp",
        "udplite",
    ];
    if s == "any" {
        return Ok(None);
    }
    if NAMES.contains(&s.as_str()) || s == "udp" || s.parse::<u8>().is_ok() {
        Ok(Some(s))
    } else {
        Err(NetworkError::BadRequest(format!(
            "Security group rule protocol {s} not supported. Only protocol values [None, ah, dccp, egp, esp, gre, icmp, igmp, ipv6-encap, ipv6-frag, ipv6-icmp, ipv6-nonxt, ipv6-opts, ipv6-route, ospf, pgm, rsvp, sctp, tcp, udp] and integer representations [0 to 255] are supported."
        )))
    }
}

/// Neutron's checks on a rule's protocol, ports and remote.
fn build_rule(b: CreateRule, group: &SecurityGroup, project: ProjectId) -> Result<Rule> {
    let direction = b.direction.ok_or_else(|| {
        NetworkError::BadRequest(
            "Failed to parse request. Required attribute 'direction' not specified".to_owned(),
        )
    })?;
    if direction != "ingress" && direction != "egress" {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for direction. Reason: {direction} is not in [ingress, egress]."
        )));
    }
    let ethertype = b.ethertype.unwrap_or_else(|| "IPv4".to_owned());
    if ethertype != "IPv4" && ethertype != "IPv6" {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for ethertype. Reason: {ethertype} is not in [IPv4, IPv6]."
        )));
    }
    // Port values are checked as the attributes are read, before the
    // protocol, as Neutron's API layer does.
    let min = port_value(b.port_range_min.as_ref())?;
    let max = port_value(b.port_range_max.as_ref())?;
    let protocol = parse_protocol(b.protocol.as_ref())?;
    validate_port_range(protocol.as_deref(), min, max)?;
    if b.remote_ip_prefix.is_some() && b.remote_group_id.is_some() {
        return Err(NetworkError::BadRequest(
            "Only remote_ip_prefix or remote_group_id may be provided.".to_owned(),
        ));
    }
    let remote_ip_prefix = match &b.remote_ip_prefix {
        None => None,
        Some(s) => {
            let net: IpNet = s
                .parse()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    NetworkError::BadRequest(format!(
                    "Invalid input for remote_ip_prefix. Reason: '{s}' is not a valid IP prefix."
                ))
                })?;
            let v4 = net.addr().is_ipv4();
            if v4 != (ethertype == "IPv4") {
                return Err(NetworkError::BadRequest(format!(
                    "Conflicting value ethertype {ethertype} for CIDR {s}"
                )));
            }
            Some(net.trunc())
        }
    };
    let remote_group_id = match &b.remote_group_id {
        None => None,
        Some(s) => Some(
            s.parse::<SecurityGroupId>()
                .map_err(|_| NetworkError::SecurityGroupNotFound(s.clone()))?,
        ),
    };
    let t = now();
    Ok(Rule {
        id: Uuid::new_v4(),
        security_group_id: group.id,
        project_id: project,
        direction,
        ethertype,
        protocol,
        port_range_min: min,
        port_range_max: max,
        remote_ip_prefix,
        remote_group_id,
        description: b.description.unwrap_or_default(),
        revision_number: 0,
        created_at: t,
        updated_at: t,
    })
}

fn same_rule(a: &Rule, b: &Rule) -> bool {
    a.direction == b.direction
        && a.ethertype == b.ethertype
        && a.protocol == b.protocol
        && a.port_range_min == b.port_range_min
        && a.port_range_max == b.port_range_max
        && a.remote_ip_prefix == b.remote_ip_prefix
        && a.remote_group_id == b.remote_group_id
}

async fn rule_create(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    require_write(&ctx, "create_security_group_rule")?;
    let b: CreateRule = resource_body(body, "security_group_rule")?;
    let gid_raw = b.security_group_id.clone().ok_or_else(|| {
        NetworkError::BadRequest(
            "Failed to parse request. Required attribute 'security_group_id' not specified"
                .to_owned(),
        )
    })?;
    let gid: SecurityGroupId = gid_raw
        .parse()
        .map_err(|_| NetworkError::SecurityGroupNotFound(gid_raw.clone()))?;
    let group = visible(&state, &ctx, &gid).await?;
    let project = match (b.project_id.clone(), b.tenant_id.clone()) {
        (None, None) => group.project_id.clone(),
        (p, t) => owner_for_create(&ctx, p, t)?,
    };
    let rule = build_rule(b, &group, project)?;
    if let Some(rg) = &rule.remote_group_id {
        visible(&state, &ctx, rg).await?;
    }
    if let Some(dup) = group.rules.iter().find(|r| same_rule(r, &rule)) {
        return Err(NetworkError::SecurityGroupRuleExists(dup.id.to_string()));
    }
    let mut c = state.db.conn().await?;
    super::quotas::check(&state, &mut c, &rule.project_id, "security_group_rule").await?;
    dbsg::rule_insert(&mut c, &rule).await?;
    drop(c);
    state.agents.security_group_changed(&gid).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"security_group_rule": rule_view(&rule)})),
    ))
}

async fn rule_list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_security_group_rule")?;
    let q = ListQuery::parse(raw.as_deref())?;
    if let Some(p) = &ctx.project_id {
        ensure_default(&state, p).await?;
    }
    let scope = super::visible_scope(&ctx, "get_security_group_rule")?;
    let mut c = state.db.conn().await?;
    let rules = dbsg::rule_list(&mut c, scope.as_ref()).await?;
    let views = rules.iter().map(rule_view).collect();
    Ok(axum::Json(respond(
        views,
        &q,
        "security_group_rules",
        uri.path(),
        &headers,
    )?))
}

async fn visible_rule(state: &State, ctx: &RequestContext, raw: &str) -> Result<Rule> {
    let id: Uuid = parse_path_id(raw, NetworkError::SecurityGroupRuleNotFound)?;
    let mut c = state.db.conn().await?;
    let Some(r) = dbsg::rule_get(&mut c, &id).await? else {
        return Err(NetworkError::SecurityGroupRuleNotFound(raw.to_owned()));
    };
    if ctx.owns(&r.project_id) {
        return Ok(r);
    }
    match dbsg::sg_get(&mut c, &r.security_group_id).await? {
        Some(g) if ctx.owns(&g.project_id) => Ok(r),
        _ => Err(NetworkError::SecurityGroupRuleNotFound(raw.to_owned())),
    }
}

async fn rule_show(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_security_group_rule")?;
    let r = visible_rule(&state, &ctx, &id).await?;
    Ok(axum::Json(
        json!({"security_group_rule": select_fields(rule_view(&r), raw.as_deref())?}),
    ))
}

async fn rule_delete(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_write(&ctx, "delete_security_group_rule")?;
    let r = visible_rule(&state, &ctx, &id).await?;
    let mut c = state.db.conn().await?;
    dbsg::rule_delete(&mut c, &r.id).await?;
    drop(c);
    state
        .agents
        .security_group_changed(&r.security_group_id)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
