//! Creating servers (seed steps 4–7), apart from HTTP: check the flavor,
//! the image (image API), the networks (network API), the key pair, the
//! zone, the server group and the quota, then run the launch saga for every
//! instance of the request, all or nothing.

use std::collections::BTreeMap;

use stratus_common::ids::InstanceId;
use stratus_common::RequestContext;

use crate::api::server_create::CreateRequest;
use crate::api::AppState;
use crate::db;
use crate::db::instances::Instance;
use crate::error::{ComputeError, Result};
use crate::model::state::{PowerState, TaskState, VmState};
use crate::model::{bdm, RequestedNetworks};
use crate::saga;
use serde_json::{json, Value};

/// What a create made.
#[derive(Clone, Debug)]
pub struct Launched {
    pub ids: Vec<InstanceId>,
    pub reservation_id: String,
}

/// Validates the request against the cloud's state and launches its
/// instances (the launch saga: written, quota rechecked, cast to the
/// scheduler).
pub async fn launch(s: &AppState, ctx: &RequestContext, req: &CreateRequest) -> Result<Launched> {
    // Seed step 4: from the request's arrival to a validated request.
    let received = crate::trace::began();
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
    let flavor = db::flavors::flavor_get(&mut *s.db.conn().await?, &req.flavor_ref)
        .await
        .map_err(|_| ComputeError::bad("Invalid flavorRef provided."))?;
    if flavor.disabled {
        return Err(ComputeError::bad("Invalid flavorRef provided."));
    }
    if !flavor.is_public
        && !ctx.is_admin()
        && !db::flavors::flavor_access_list(&mut *s.db.conn().await?, &flavor.id)
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
    let networks = resolve_networks(s, ctx, req).await?;
    let security_groups =
        crate::app::security_groups::resolve_for_create(s, ctx, &req.security_groups).await?;
    let key_data = match &req.key_name {
        Some(k) => Some(
            db::keypairs::keypair_get(&mut *s.db.conn().await?, &user, k)
                .await
                .map_err(|_| ComputeError::bad("Invalid key_name provided."))?
                .public_key,
        ),
        None => None,
    };
    if let Some(az) = &req.availability_zone {
        let zone = az.split(':').next().unwrap_or(az);
        let mut zones: Vec<String> = db::hosts::node_list(&mut *s.db.conn().await?)
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
        let group = db::server_groups::server_group_get(&mut *s.db.conn().await?, g)
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
    let bdm = check_boot_volume(s, &token, req, bdm).await?;
    let count = check_quota(s, &project, req, flavor.vcpus, flavor.ram).await?;
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
            security_groups: security_groups.clone(),
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
    let deps = saga::launch::Deps {
        db: &s.db,
        bus: &s.bus,
        quota: &s.cfg.quota,
        volumes: &s.volumes,
    };
    let ids: Vec<String> = insts.iter().map(|i| i.id.to_string()).collect();
    for id in &ids {
        crate::trace::start(4, "POST /servers validated", Some(id))
            .started(received)
            .ok();
    }
    crate::app::server_tags::write_for_create(s, &ids, &req.tags).await?;
    if let Err(e) = saga::launch::run_all(deps, ctx, &insts).await {
        crate::app::server_tags::forget(s, &ids).await;
        return Err(e);
    }
    Ok(Launched {
        ids: insts.iter().map(|i| i.id).collect(),
        reservation_id,
    })
}

fn invalid_bdm(details: &str) -> ComputeError {
    ComputeError::BadRequest(format!("Block Device Mapping is Invalid: {details}"))
}

/// Boot from volume (seed step 39): the user's volume must exist, be the
/// project's (the user's token finds it) and be `available`; a volume to
/// make from an image needs its size and the image (the launch saga makes
/// it). Nova's default `delete_on_termination` for a volume made at boot
/// (none given) is true.
async fn check_boot_volume(
    s: &AppState,
    token: &str,
    req: &CreateRequest,
    mut bdm: Vec<bdm::BlockDeviceMapping>,
) -> Result<Vec<bdm::BlockDeviceMapping>> {
    let raw = req.bdm.as_array().cloned().unwrap_or_default();
    for (i, m) in bdm.iter_mut().enumerate() {
        // Only the launch records a volume it made; a request naming one
        // there would have the agent attach a volume nobody checked.
        m.volume_id = None;
        if !m.boots_from_volume() {
            continue;
        }
        match m.source_type {
            bdm::BdmSource::Volume => {
                let id = m.uuid.clone().unwrap_or_default();
                let fail = || invalid_bdm(&format!("failed to get volume {id}."));
                let vid: stratus_common::ids::VolumeId = id.parse().map_err(|_| fail())?;
                let v = match s.volumes.api.volume_get(token, &vid).await {
                    Ok(v) => v,
                    Err(ComputeError::NotFound(_)) => return Err(fail()),
                    Err(e) => return Err(e),
                };
                if v.status != "available" {
                    return Err(ComputeError::BadRequest(format!(
                        "Invalid volume: volume '{id}' status must be 'available'. Currently in '{}'",
                        v.status
                    )));
                }
                if req.max_count > 1 {
                    return Err(ComputeError::bad(
                        "Unable to launch multiple instances with a single configured volume.",
                    ));
                }
            }
            bdm::BdmSource::Image => {
                if m.volume_size.unwrap_or(0) <= 0 {
                    return Err(invalid_bdm(
                        "Images with destination_type 'volume' need to have a non-zero size specified",
                    ));
                }
                let image = m.uuid.clone().unwrap_or_default();
                if image.is_empty() {
                    return Err(invalid_bdm("Missing image uuid."));
                }
                let info = s.images.image_get(token, &image).await?;
                info.require_active()?;
                if raw
                    .get(i)
                    .and_then(|r| r.get("delete_on_termination"))
                    .is_none()
                {
                    m.delete_on_termination = true;
                }
            }
            bdm::BdmSource::Snapshot => {
                if m.uuid.as_deref().unwrap_or("").is_empty() {
                    return Err(invalid_bdm("Missing snapshot uuid."));
                }
                if m.volume_size.is_some_and(|n| n <= 0) {
                    return Err(invalid_bdm(
                        "volume_size of a snapshot mapping must be a positive number of GiB",
                    ));
                }
            }
            _ => return Err(invalid_bdm("Booting from a blank volume is not supported.")),
        }
    }
    Ok(bdm)
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
    let limits = db::quotas::quota_get(&mut *s.db.conn().await?, project, &s.cfg.quota).await?;
    let (n, cores, mem) = db::instances::instance_usage(&mut *s.db.conn().await?, project).await?;
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
