//! `/servers`: create (steps 4–7: validate, check quota, write the instance
//! as building/scheduling, record the `create` action, recheck the quota,
//! cast to the scheduler, answer 202), list and detail with filters and
//! paging, show, update and delete.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};
use stratus_auth::{Ctx, ProjectScope};
use stratus_common::ids::InstanceId;
use stratus_common::RequestContext;

use super::params::{self, first};
use super::{project_scope, require_member, servers_query, views, ApiVersion, AppState};
use crate::db::instances::{Instance, InstanceUpdate, ListFilter};
use crate::error::{ComputeError, NovaJson, Result};
use crate::model::state::{self, PowerState, TaskState, VmState};
use crate::model::{bdm, RequestedNetworks};
use crate::saga;

/// A validated create request.
#[derive(Clone, Debug)]
pub struct CreateRequest {
    pub name: String,
    pub flavor_ref: String,
    pub image_ref: String,
    pub networks: Value,
    pub network_ids: Vec<String>,
    pub bdm: Value,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    pub min_count: i64,
    pub max_count: i64,
    pub security_groups: Vec<String>,
    pub group: Option<String>,
    pub description: Option<String>,
    pub access_ip_v4: Option<String>,
    pub access_ip_v6: Option<String>,
    pub config_drive: bool,
    pub return_reservation_id: bool,
    pub scheduler_hints: Value,
}

/// The last path segment of an id-or-URL reference (`imageRef`, `flavorRef`).
fn ref_id(s: &str) -> String {
    s.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(s)
        .to_owned()
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// Nova's create schema, as plain validation.
pub fn parse_create(body: &Value, v: ApiVersion) -> Result<CreateRequest> {
    let s = params::wrapped(body, "server")?;
    let name = params::string(s.get("name"), "name", 255)?;
    if name.trim().is_empty() {
        return Err(ComputeError::bad(
            "Invalid input for field/attribute name. Value must not be only whitespace.",
        ));
    }
    let flavor_ref =
        match s.get("flavorRef") {
            Some(Value::String(f)) if !f.is_empty() => ref_id(f),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(ComputeError::bad(
                "Invalid input for field/attribute flavorRef. 'flavorRef' is a required property",
            )),
        };
    let bdm = s
        .get("block_device_mapping_v2")
        .cloned()
        .unwrap_or(Value::Null);
    let mut boot_image = None;
    let mut boot_from_volume = false;
    if !bdm.is_null() {
        let list = bdm.as_array().ok_or_else(|| {
            ComputeError::bad("Invalid input for field/attribute block_device_mapping_v2.")
        })?;
        for d in list {
            let d = d.as_object().ok_or_else(|| {
                ComputeError::bad("Invalid input for field/attribute block_device_mapping_v2.")
            })?;
            let source = d.get("source_type").and_then(Value::as_str).unwrap_or("");
            let dest = d
                .get("destination_type")
                .and_then(Value::as_str)
                .unwrap_or("local");
            let boot_index = d.get("boot_index").and_then(|b| {
                b.as_i64()
                    .or_else(|| b.as_str().and_then(|s| s.parse().ok()))
            });
            match (source, dest) {
                ("image", "local") if boot_index == Some(0) => {
                    boot_image = d.get("uuid").and_then(Value::as_str).map(str::to_owned);
                }
                ("volume" | "snapshot" | "image", "volume") if boot_index == Some(0) => boot_from_volume = true,
                ("blank", "local") | ("blank", "volume") | ("volume", "volume") => {}
                _ => {
                    return Err(ComputeError::bad(
                        "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.",
                    ))
                }
            }
        }
    }
    let image_ref = match s.get("imageRef") {
        Some(Value::String(i)) if !i.is_empty() => {
            let id = ref_id(i);
            if !is_uuid(&id) {
                return Err(ComputeError::bad("Invalid imageRef provided."));
            }
            id
        }
        None | Some(Value::Null) | Some(Value::String(_)) => match (boot_image, boot_from_volume) {
            (Some(b), _) if is_uuid(&b) => b,
            (_, true) => String::new(),
            _ => return Err(ComputeError::bad("Invalid imageRef provided.")),
        },
        Some(_) => return Err(ComputeError::bad("Invalid imageRef provided.")),
    };
    let (networks, network_ids) = match s.get("networks") {
        // From 2.37 on Nova's schema requires `networks` (OSC sends `auto`
        // when no `--nic` was given, so its users never see this).
        None if v.at_least(37) => {
            return Err(ComputeError::BadRequest(format!(
                "Invalid input for field/attribute server. Value: {}. 'networks' is a required property",
                params::py_repr(&Value::Object(s.clone()))
            )))
        }
        Some(Value::Null) if v.at_least(37) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute networks. Value: None. None is not valid under any of the given schemas",
            ))
        }
        None | Some(Value::Null) => (json!("auto"), Vec::new()),
        Some(Value::String(a)) if (a == "auto" || a == "none") && v.at_least(37) => {
            (json!(a), Vec::new())
        }
        Some(Value::String(a)) if a == "auto" || a == "none" => (json!(a), Vec::new()),
        Some(Value::Array(list)) => {
            let mut ids = Vec::new();
            for n in list {
                let n = n
                    .as_object()
                    .ok_or_else(|| ComputeError::bad("Bad networks format"))?;
                if let Some(u) = n.get("uuid") {
                    let u = u.as_str().unwrap_or("");
                    if !is_uuid(u) {
                        return Err(ComputeError::BadRequest(format!(
                            "Bad networks format: network uuid is not in proper format ({u})"
                        )));
                    }
                    ids.push(u.to_owned());
                } else if let Some(p) = n.get("port") {
                    if !p.as_str().is_some_and(is_uuid) {
                        return Err(ComputeError::bad(
                            "Bad networks format: port uuid is not in proper format",
                        ));
                    }
                } else {
                    return Err(ComputeError::bad(
                        "Bad networks format: network uuid is not in proper format",
                    ));
                }
            }
            (json!(list), ids)
        }
        Some(_) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute networks.",
            ))
        }
    };
    let user_data = match s.get("user_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => {
            if u.len() > 65535 {
                return Err(ComputeError::bad("User data too large."));
            }
            base64::engine::general_purpose::STANDARD
                .decode(u.trim())
                .map_err(|_| ComputeError::bad("User data needs to be valid base 64."))?;
            Some(u.clone())
        }
        Some(_) => return Err(ComputeError::bad("User data needs to be valid base 64.")),
    };
    let metadata = match s.get("metadata") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(m) => metadata_map(m)?,
    };
    let count = |k: &str| params::int(s.get(k), k, 1, 1000);
    let min_count = count("min_count")?.unwrap_or(1);
    let max_count = count("max_count")?.unwrap_or(min_count);
    if min_count > max_count {
        return Err(ComputeError::bad("min_count must be <= max_count"));
    }
    let key_name = match s.get("key_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if !k.is_empty() => Some(k.clone()),
        _ => return Err(ComputeError::bad("Invalid key_name provided.")),
    };
    let availability_zone = match s.get("availability_zone") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) if !a.is_empty() => Some(a.clone()),
        _ => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute availability_zone.",
            ))
        }
    };
    let security_groups = match s.get("security_groups") {
        None | Some(Value::Null) => vec!["default".to_owned()],
        Some(Value::Array(l)) => l
            .iter()
            .map(|g| {
                g.get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ComputeError::bad("Invalid input for field/attribute security_groups.")
                    })
            })
            .collect::<Result<_>>()?,
        Some(_) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute security_groups.",
            ))
        }
    };
    let hints = body
        .get("os:scheduler_hints")
        .or_else(|| body.get("OS-SCH-HNT:scheduler_hints"))
        .cloned()
        .unwrap_or(json!({}));
    let group = match hints.get("group") {
        None | Some(Value::Null) => None,
        Some(Value::String(g)) if is_uuid(g) => Some(g.clone()),
        Some(_) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute group.",
            ))
        }
    };
    let opt_str = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(CreateRequest {
        name,
        flavor_ref,
        image_ref,
        networks,
        network_ids,
        bdm,
        key_name,
        user_data,
        metadata,
        availability_zone,
        min_count,
        max_count,
        security_groups,
        group,
        description: if v.at_least(19) {
            opt_str("description")
        } else {
            None
        },
        access_ip_v4: opt_str("accessIPv4"),
        access_ip_v6: opt_str("accessIPv6"),
        config_drive: params::boolean(s.get("config_drive"), "config_drive")?.unwrap_or(false),
        return_reservation_id: params::boolean(
            s.get("return_reservation_id"),
            "return_reservation_id",
        )?
        .unwrap_or(false),
        scheduler_hints: hints,
    })
}

/// A metadata object: string keys 1..255, string values up to 255.
pub fn metadata_map(m: &Value) -> Result<BTreeMap<String, String>> {
    let m = m
        .as_object()
        .ok_or_else(|| ComputeError::bad("Invalid input for field/attribute metadata."))?;
    m.iter()
        .map(|(k, v)| {
            if k.is_empty() || k.chars().count() > 255 {
                return Err(ComputeError::bad("Invalid input for field/attribute metadata. Key length must be 1 to 255."));
            }
            match v {
                Value::String(s) if s.chars().count() <= 255 => Ok((k.clone(), s.clone())),
                _ => Err(ComputeError::bad("Invalid input for field/attribute metadata. Values must be strings of at most 255 characters.")),
            }
        })
        .collect()
}

/// A DNS-safe hostname from a display name, as Nova's `sanitize_hostname`.
pub fn hostname(name: &str) -> String {
    let mut h: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    h = h.trim_matches('-').chars().take(63).collect();
    if h.is_empty() {
        "server".to_owned()
    } else {
        h
    }
}

/// The networks the agent will give the server ports on (steps 26–28):
/// requested networks must exist and be usable, requested ports must be
/// free, `auto` becomes the project's only network (or the only shared
/// one), `none` stays `none`.
async fn resolve_networks(
    s: &AppState,
    ctx: &RequestContext,
    req: &CreateRequest,
) -> Result<Value> {
    match &req.networks {
        Value::String(a) if a == "none" => Ok(json!("none")),
        Value::String(_) => match s.networks.network_auto(ctx).await? {
            Some(net) => Ok(json!([{ "uuid": net }])),
            // No network service to ask (test stand-in): leave it to the agent.
            None => Ok(json!("auto")),
        },
        Value::Array(list) => {
            s.networks.networks_validate(ctx, &req.network_ids).await?;
            let mut out = Vec::new();
            for n in list {
                match n.get("port").and_then(Value::as_str) {
                    Some(port) => {
                        if req.max_count > 1 {
                            return Err(ComputeError::bad(
                                "Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.",
                            ));
                        }
                        let net = s.networks.port_check(ctx, port).await?;
                        out.push(json!({"port": port, "uuid": net}));
                    }
                    None => out.push(n.clone()),
                }
            }
            Ok(Value::Array(out))
        }
        other => Ok(other.clone()),
    }
}

/// How many of `wanted` instances the project's quota allows.
async fn check_quota(
    s: &AppState,
    project: &str,
    req: &CreateRequest,
    vcpus: i64,
    ram: i64,
) -> Result<i64> {
    let limits = s.store.quota_get(project, &s.cfg.quota).await?;
    let (n, cores, mem) = s.store.instance_usage(project).await?;
    let lim = |k: &str| limits.get(k).copied().unwrap_or(-1);
    let md = lim("metadata_items");
    if md >= 0 && req.metadata.len() as i64 > md {
        return Err(ComputeError::OverQuota(format!(
            "Quota exceeded for metadata_items: Requested {}, but the maximum is {md}",
            req.metadata.len()
        )));
    }
    let fits = |count: i64| -> Option<(&'static str, i64, i64, i64)> {
        for (res, used, each, limit) in [
            ("instances", n, 1, lim("instances")),
            ("cores", cores, vcpus, lim("cores")),
            ("ram", mem, ram, lim("ram")),
        ] {
            if limit >= 0 && used + each * count > limit {
                return Some((res, each * count, used, limit));
            }
        }
        None
    };
    let mut count = req.max_count;
    while count >= req.min_count {
        if fits(count).is_none() {
            return Ok(count);
        }
        count -= 1;
    }
    match fits(req.min_count) {
        Some((res, want, used, limit)) => Err(ComputeError::OverQuota(format!(
            "Quota exceeded for {res}: Requested {want}, but already used {used} of {limit} {res}"
        ))),
        None => Ok(req.min_count),
    }
}

pub async fn create(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    NovaJson(body): NovaJson<Value>,
) -> Result<Response> {
    require_member(&ctx, "os_compute_api:servers:create")?;
    let req = parse_create(&body, v)?;
    let project = ctx
        .project_id
        .as_ref()
        .map(|p| p.as_str().to_owned())
        .ok_or_else(|| ComputeError::Forbidden("A project-scoped token is required.".into()))?;
    let user = ctx
        .user_id
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .unwrap_or_default();
    let flavor = s
        .store
        .flavor_get(&req.flavor_ref)
        .await
        .map_err(|_| ComputeError::bad("Invalid flavorRef provided."))?;
    if flavor.disabled {
        return Err(ComputeError::bad("Invalid flavorRef provided."));
    }
    if !flavor.is_public
        && !ctx.is_admin()
        && !s
            .store
            .flavor_access_list(&flavor.id)
            .await?
            .contains(&project)
    {
        return Err(ComputeError::bad("Invalid flavorRef provided."));
    }
    let token = ctx.auth_token.clone().unwrap_or_default();
    let mut image_properties = BTreeMap::new();
    if !req.image_ref.is_empty() {
        let image = s.images.image_get(&token, &req.image_ref).await?;
        image.require_active()?;
        image_properties = image.properties.clone();
        if image.min_ram > flavor.ram {
            return Err(ComputeError::bad(
                "Flavor's memory is too small for requested image.",
            ));
        }
        if image.min_disk > flavor.disk && flavor.disk > 0 {
            return Err(ComputeError::bad(
                "Flavor's disk is too small for requested image.",
            ));
        }
    }
    let networks = resolve_networks(&s, &ctx, &req).await?;
    let key_data = match &req.key_name {
        Some(k) => Some(
            s.store
                .keypair_get(&user, k)
                .await
                .map_err(|_| ComputeError::bad("Invalid key_name provided."))?
                .public_key,
        ),
        None => None,
    };
    if let Some(az) = &req.availability_zone {
        let zone = az.split(':').next().unwrap_or(az);
        let mut zones: Vec<String> = s
            .store
            .node_list()
            .await?
            .into_iter()
            .map(|n| n.availability_zone)
            .collect();
        zones.push(s.cfg.default_availability_zone.clone());
        if !zones.iter().any(|z| z == zone) {
            return Err(ComputeError::bad(
                "The requested availability zone is not available",
            ));
        }
    }
    if let Some(g) = &req.group {
        let group = s
            .store
            .server_group_get(g)
            .await
            .map_err(|_| ComputeError::BadRequest(format!("Invalid server group {g}")))?;
        if !ctx.owns(&group.project_id.as_str().into()) {
            return Err(ComputeError::BadRequest(format!(
                "Invalid server group {g}"
            )));
        }
    }
    let networks = RequestedNetworks::try_from(networks).map_err(ComputeError::BadRequest)?;
    let bdm = bdm::parse_list(&req.bdm).map_err(|e| {
        ComputeError::BadRequest(format!(
            "Invalid input for field/attribute block_device_mapping_v2. {e}"
        ))
    })?;
    let count = check_quota(&s, &project, &req, flavor.vcpus, flavor.ram).await?;
    let reservation_id = format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let now = stratus_common::time::to_db(stratus_common::time::now());
    let mut insts = Vec::new();
    for index in 0..count {
        let name = if count > 1 {
            format!("{}-{}", req.name, index + 1)
        } else {
            req.name.clone()
        };
        let inst = Instance {
            id: InstanceId::new(),
            project_id: project.clone(),
            user_id: user.clone(),
            hostname: hostname(&name),
            name,
            description: req.description.clone(),
            vm_state: VmState::Building,
            task_state: Some(TaskState::Scheduling),
            power_state: PowerState::NoState,
            host: None,
            node: None,
            availability_zone: req
                .availability_zone
                .clone()
                .map(|a| a.split(':').next().unwrap_or(&a).to_owned()),
            flavor: flavor.clone(),
            image_ref: req.image_ref.clone(),
            image_properties: image_properties.clone(),
            networks: networks.clone(),
            bdm: bdm.clone(),
            security_groups: req.security_groups.clone(),
            scheduler_hints: req.scheduler_hints.clone(),
            key_name: req.key_name.clone(),
            key_data: key_data.clone(),
            user_data: req.user_data.clone(),
            config_drive: if req.config_drive {
                "True".into()
            } else {
                String::new()
            },
            access_ip_v4: req.access_ip_v4.clone(),
            access_ip_v6: req.access_ip_v6.clone(),
            reservation_id: reservation_id.clone(),
            launch_index: index,
            server_group_id: req.group.clone(),
            locked: false,
            attempts: 0,
            tried_hosts: Vec::new(),
            fault: None,
            console_log: String::new(),
            launched_at: None,
            terminated_at: None,
            created_at: now.clone(),
            updated_at: now.clone(),
            deleted: false,
            metadata: req.metadata.clone(),
            network_info: Vec::new(),
        };
        insts.push(inst);
    }
    // All or nothing: a concurrent request that took the quota meanwhile
    // makes the recheck fail, and none of these is left.
    saga::launch::run_all(&s.store, &s.bus, &s.cfg.quota, &ctx, &insts).await?;
    let first_id = insts.first().map(|i| i.id);
    if req.return_reservation_id {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"reservation_id": reservation_id})),
        )
            .into_response());
    }
    let id = first_id
        .ok_or_else(|| ComputeError::Internal("no instance created".into()))?
        .to_string();
    let admin_pass: String = {
        use rand::Rng;
        const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        let mut rng = rand::thread_rng();
        (0..12)
            .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
            .collect()
    };
    let body = json!({"server": {
        "id": id,
        "links": [{"rel": "self", "href": s.link(&format!("/servers/{id}"))},
                  {"rel": "bookmark", "href": s.bookmark(&format!("/servers/{id}"))}],
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": req.security_groups.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "adminPass": admin_pass,
    }});
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(h) = header::HeaderValue::from_str(&s.link(&format!("/servers/{id}"))) {
        resp.headers_mut().insert(header::LOCATION, h);
    }
    Ok(resp)
}

/// The instance if the caller may see it (its project's readers, admins);
/// 404 for another project's (never 403), 403 for a caller with no project.
pub async fn visible(s: &AppState, ctx: &RequestContext, id: &str) -> Result<Instance> {
    let scope = project_scope(ctx, ctx.is_admin(), "os_compute_api:servers:show")?;
    if !is_uuid(id) {
        return Err(crate::db::instances::not_found(id));
    }
    let i = s.store.instance_get(id).await?;
    if !scope.permits(&i.project_id) {
        return Err(crate::db::instances::not_found(id));
    }
    Ok(i)
}

fn filters(
    ctx: &RequestContext,
    raw: Option<&str>,
    v: ApiVersion,
    detail: bool,
) -> Result<ListFilter> {
    let q = params::query(raw);
    let admin = ctx.is_admin();
    let checked = servers_query::check(&q, v, admin)?;
    let all_tenants = servers_query::all_tenants(&q)?;
    let rule = if detail {
        "os_compute_api:servers:detail"
    } else {
        "os_compute_api:servers:index"
    };
    let scope = project_scope(ctx, all_tenants, rule)?;
    // The first sort key Nova keeps (the ignored ones are dropped).
    let sort_key = params::all(&q, "sort_key").find(|k| !servers_query::is_ignored_sort_key(v, k));
    if let Some(k @ ("host" | "node")) = sort_key {
        if !admin {
            return Err(ComputeError::Forbidden(format!(
                "Only administrators can sort servers by {k}"
            )));
        }
    }
    let mut f = ListFilter {
        sort_key: sort_key.unwrap_or("created_at").to_owned(),
        sort_desc: !matches!(first(&q, "sort_dir"), Some("asc")),
        // Nova lists recently deleted servers too when asked for changes.
        include_deleted: checked.changes_since.is_some() || checked.changes_before.is_some(),
        changes_since: checked.changes_since,
        changes_before: checked.changes_before,
        ..ListFilter::default()
    };
    // Any string passes the schema; Nova's database layer refuses the rest.
    if params::all(&q, "sort_dir").any(|d| d != "asc" && d != "desc") {
        return Err(ComputeError::bad(
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'",
        ));
    }
    // Without all_tenants Nova drops `tenant_id` and filters by the
    // caller's project, whatever `project_id` says.
    f.project_id = match &scope {
        ProjectScope::All => first(&q, "project_id")
            .or(first(&q, "tenant_id"))
            .map(str::to_owned),
        ProjectScope::Project(p) => Some(p.as_str().to_owned()),
    };
    if admin {
        f.host = first(&q, "host").map(str::to_owned);
    }
    f.name = first(&q, "name").map(str::to_owned);
    if let Some(st) = first(&q, "status") {
        // Nova: an unknown status is a 400 from 2.38 on, before that it
        // matches nothing (an empty list).
        if v.at_least(38) && !state::is_known_status(st) {
            return Err(ComputeError::bad("Invalid status value"));
        }
        f.vm_states = Some(state::vm_states_for_status(st).unwrap_or_default());
    }
    f.reservation_id = first(&q, "reservation_id").map(str::to_owned);
    if first(&q, "deleted").is_some_and(|d| d.eq_ignore_ascii_case("true")) && !admin {
        f.vm_states = Some(Vec::new());
    }
    let (limit, marker) = params::paging(&q)?;
    f.limit = limit;
    f.marker = marker;
    Ok(f)
}

async fn listing(
    s: &AppState,
    ctx: &RequestContext,
    raw: Option<&str>,
    detail: bool,
    v: ApiVersion,
) -> Result<Value> {
    let f = filters(ctx, raw, v, detail)?;
    let list = s.store.instance_list(&f).await?;
    let servers: Vec<Value> = list
        .iter()
        .map(|i| {
            if detail {
                views::server(s, v, ctx, i)
            } else {
                views::server_brief(s, i)
            }
        })
        .collect();
    let mut body = json!({ "servers": servers });
    if let (Some(l), Some(last)) = (f.limit, list.last()) {
        if list.len() == l {
            let path = if detail {
                "/servers/detail"
            } else {
                "/servers"
            };
            let mut q: Vec<(String, String)> = params::query(raw)
                .into_iter()
                .filter(|(k, _)| k != "marker")
                .collect();
            q.push(("marker".into(), last.id.to_string()));
            let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            body["servers_links"] =
                json!([{"rel": "next", "href": s.link(&format!("{path}?{}", qs.join("&")))}]);
        }
    }
    Ok(body)
}

pub async fn list(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    Ok(Json(listing(&s, &ctx, raw.as_deref(), false, v).await?))
}

pub async fn list_detail(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    Ok(Json(listing(&s, &ctx, raw.as_deref(), true, v).await?))
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let i = visible(&s, &ctx, &id).await?;
    Ok(Json(json!({"server": views::server(&s, v, &ctx, &i)})))
}

pub async fn update(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    require_member(&ctx, "os_compute_api:servers:update")?;
    let i = visible(&s, &ctx, &id).await?;
    let b = params::wrapped(&body, "server")?;
    let mut u = InstanceUpdate::default();
    if b.contains_key("name") {
        u.name = Some(params::string(b.get("name"), "name", 255)?);
    }
    if b.contains_key("description") {
        if !v.at_least(19) {
            return Err(ComputeError::bad("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)"));
        }
        u.description = Some(match b.get("description") {
            Some(Value::String(d)) if d.chars().count() <= 255 => Some(d.clone()),
            Some(Value::Null) => None,
            _ => {
                return Err(ComputeError::bad(
                    "Invalid input for field/attribute description.",
                ))
            }
        });
    }
    let i = s
        .store
        .instance_update(&i.id.to_string(), &None, &u)
        .await?;
    Ok(Json(json!({"server": views::server(&s, v, &ctx, &i)})))
}

pub async fn delete(
    State(s): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_member(&ctx, "os_compute_api:servers:delete")?;
    let i = visible(&s, &ctx, &id).await?;
    if i.locked && !ctx.is_admin() {
        return Err(ComputeError::Conflict(format!("Instance {id} is locked")));
    }
    let local = saga::delete::destroy_host(&s.store, &s.cfg, &i)
        .await?
        .is_none();
    saga::delete::run(&s.store, &s.bus, &s.cfg, &ctx, &i).await?;
    if local {
        // No agent will terminate it (never scheduled, or its host is
        // down): remove its ports here, as Nova's local delete does.
        if let Err(e) = local_deallocate(&s, &ctx, &i).await {
            tracing::warn!(instance = %id, error = %e, "cannot remove the ports of a locally deleted server");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Best effort, with the caller's token: delete the ports compute made,
/// unbind those the user brought.
async fn local_deallocate(s: &AppState, ctx: &RequestContext, i: &Instance) -> Result<()> {
    let token = ctx.auth_token.clone().unwrap_or_default();
    let id = i.id.to_string();
    let brought: Vec<String> = i
        .network_info
        .iter()
        .filter(|v| v.preexisting)
        .map(|v| v.port_id.clone())
        .collect();
    for p in &brought {
        s.networks.port_unbind(&token, p).await?;
    }
    for p in s.networks.ports_of(&token, &id).await? {
        if !brought.contains(&p) {
            s.networks.port_delete(&token, &p).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::microversion::MAX;

    fn body(extra: Value) -> Value {
        let mut s = json!({"name": "vm", "flavorRef": "1", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"});
        if let (Some(o), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        json!({ "server": s })
    }

    #[test]
    fn accepts_what_osc_sends() {
        let b = body(
            json!({"min_count": 1, "max_count": 1, "networks": [{"uuid": "70a599e0-31e7-49b7-b260-868f441e862c"}],
            "block_device_mapping_v2": [{"uuid": "70a599e0-31e7-49b7-b260-868f441e862b", "boot_index": 0,
            "source_type": "image", "destination_type": "local", "delete_on_termination": true}]}),
        );
        let r = parse_create(&b, MAX).expect("valid");
        assert_eq!(r.network_ids.len(), 1);
        assert_eq!(r.security_groups, vec!["default"]);
        assert!(parse_create(&body(json!({"networks": "none"})), MAX).is_ok());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse_create(&json!({"server": {"name": "x"}}), MAX).is_err());
        assert!(parse_create(&body(json!({"imageRef": "nope"})), MAX).is_err());
        assert!(parse_create(&body(json!({"networks": [{"uuid": "bad"}]})), MAX).is_err());
        assert!(parse_create(&body(json!({"user_data": "%%%"})), MAX).is_err());
        assert!(parse_create(&body(json!({"min_count": 3, "max_count": 2})), MAX).is_err());
        assert!(parse_create(&body(json!({"metadata": {"a": 1}})), MAX).is_err());
        assert!(parse_create(&json!({"server": "x"}), MAX).is_err());
    }

    #[test]
    fn networks_is_required_from_2_37() {
        use crate::api::microversion::ApiVersion;
        let without = json!({"server": {"name": "vm", "flavorRef": "1",
            "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}});
        for v in [ApiVersion(2, 37), ApiVersion(2, 42), MAX] {
            match parse_create(&without, v) {
                Err(ComputeError::BadRequest(m)) => assert_eq!(
                    m,
                    "Invalid input for field/attribute server. Value: {'flavorRef': '1', \
                     'imageRef': '70a599e0-31e7-49b7-b260-868f441e862b', 'name': 'vm'}. \
                     'networks' is a required property"
                ),
                other => panic!("{v}: {other:?}"),
            }
            assert!(matches!(
                parse_create(&body(json!({"networks": null})), v),
                Err(ComputeError::BadRequest(m)) if m.contains("None is not valid under any of the given schemas")
            ));
            for ok in [json!("auto"), json!("none"), json!([])] {
                assert!(parse_create(&body(json!({ "networks": ok })), v).is_ok());
            }
        }
        // Before 2.37 a missing (or null) `networks` still means `auto`.
        for v in [ApiVersion(2, 1), ApiVersion(2, 36)] {
            let r = parse_create(&without, v).expect("valid before 2.37");
            assert_eq!(r.networks, json!("auto"));
            let r = parse_create(&body(json!({"networks": null})), v).expect("null");
            assert_eq!(r.networks, json!("auto"));
        }
    }

    #[test]
    fn hostnames_are_dns_safe() {
        assert_eq!(hostname("My VM_1"), "my-vm-1");
        assert_eq!(hostname("***"), "server");
    }
}
