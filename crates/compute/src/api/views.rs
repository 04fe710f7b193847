//! Response shapes, per microversion (nova `doc/api_samples`).

use serde_json::{json, Map, Value};
use stratus_common::RequestContext;

use super::{ApiVersion, AppState};
use crate::db::flavors::Flavor;
use crate::db::instances::Instance;
use crate::model::state;

fn links(s: &AppState, kind: &str, id: &str) -> Value {
    json!([
        {"rel": "self", "href": s.link(&format!("/{kind}/{id}"))},
        {"rel": "bookmark", "href": s.bookmark(&format!("/{kind}/{id}"))}
    ])
}

pub fn flavor_brief(s: &AppState, v: ApiVersion, f: &Flavor) -> Value {
    let mut m = json!({"id": f.id, "name": f.name, "links": links(s, "flavors", &f.id)});
    if v.at_least(55) {
        m["description"] = json!(f.description);
    }
    m
}

pub fn flavor(s: &AppState, v: ApiVersion, f: &Flavor) -> Value {
    let mut m = json!({
        "id": f.id, "name": f.name, "ram": f.ram, "disk": f.disk, "vcpus": f.vcpus,
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral, "OS-FLV-DISABLED:disabled": f.disabled,
        "swap": if f.swap == 0 && !v.at_least(75) { json!("") } else { json!(f.swap) },
        "rxtx_factor": f.rxtx_factor, "os-flavor-access:is_public": f.is_public,
        "links": links(s, "flavors", &f.id),
    });
    if v.at_least(55) {
        m["description"] = json!(f.description);
    }
    if v.at_least(61) {
        m["extra_specs"] = json!(f.extra_specs);
    }
    m
}

pub fn server_brief(s: &AppState, i: &Instance) -> Value {
    let id = i.id.to_string();
    json!({"id": id, "name": i.name, "links": links(s, "servers", &id)})
}

/// Nova's `hostId`: sha224 of project and host, so tenants can see
/// co-location without learning host names.
fn host_id(i: &Instance) -> String {
    use sha2::{Digest, Sha224};
    match &i.host {
        Some(h) => hex::encode(Sha224::digest(format!("{}{}", i.project_id, h).as_bytes())),
        None => String::new(),
    }
}

/// `addresses`: each network's fixed IPs by network name, from the saved
/// network info (Nova's `addresses` view of the info cache).
pub fn addresses(i: &Instance) -> Value {
    let mut m = Map::new();
    for vif in &i.network_info {
        let list = m
            .entry(vif.network_name.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        for ip in &vif.fixed_ips {
            let version = match ip.address.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(_)) => 6,
                _ => 4,
            };
            if let Value::Array(l) = list {
                l.push(json!({"version": version, "addr": ip.address,
                    "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": vif.mac_address}));
            }
        }
    }
    Value::Object(m)
}

pub fn server(s: &AppState, v: ApiVersion, ctx: &RequestContext, i: &Instance) -> Value {
    let id = i.id.to_string();
    let status = state::status(i.vm_state, i.task_state);
    let image = if i.image_ref.is_empty() {
        json!("")
    } else {
        json!({"id": i.image_ref, "links": [{"rel": "bookmark", "href": s.bookmark(&format!("/images/{}", i.image_ref))}]})
    };
    let flavor = if v.at_least(47) {
        let mut f = json!({
            "vcpus": i.flavor.vcpus, "ram": i.flavor.ram, "disk": i.flavor.disk,
            "ephemeral": i.flavor.ephemeral, "swap": i.flavor.swap, "original_name": i.flavor.name,
        });
        f["extra_specs"] = json!(i.flavor.extra_specs);
        f
    } else {
        json!({"id": i.flavor.id, "links": [{"rel": "bookmark", "href": s.bookmark(&format!("/flavors/{}", i.flavor.id))}]})
    };
    let ts = |t: &str| {
        stratus_common::time::from_db(t)
            .map(stratus_common::time::iso_seconds)
            .unwrap_or_default()
    };
    let usage_ts = |t: &Option<String>| -> Value {
        match t.as_deref().and_then(stratus_common::time::from_db) {
            Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()),
            None => Value::Null,
        }
    };
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    put("id", json!(id));
    put("name", json!(i.name));
    put("status", json!(status));
    put("tenant_id", json!(i.project_id));
    put("user_id", json!(i.user_id));
    put("metadata", json!(i.metadata));
    put("hostId", json!(host_id(i)));
    put("image", image);
    put("flavor", flavor);
    put("created", json!(ts(&i.created_at)));
    put("updated", json!(ts(&i.updated_at)));
    put("addresses", addresses(i));
    put(
        "accessIPv4",
        json!(i.access_ip_v4.clone().unwrap_or_default()),
    );
    put(
        "accessIPv6",
        json!(i.access_ip_v6.clone().unwrap_or_default()),
    );
    put("links", links(s, "servers", &id));
    put("OS-DCF:diskConfig", json!("MANUAL"));
    if matches!(
        status,
        "ACTIVE" | "BUILD" | "REBUILD" | "REBOOT" | "HARD_REBOOT"
    ) {
        let starting = matches!(status, "BUILD" | "REBUILD");
        put("progress", json!(if starting { 0 } else { 100 }));
    }
    put("key_name", json!(i.key_name));
    put("config_drive", json!(i.config_drive));
    let sgs: Vec<Value> = i
        .security_groups
        .iter()
        .map(|n| json!({"name": n}))
        .collect();
    if !sgs.is_empty() {
        put("security_groups", json!(sgs));
    }
    put(
        "OS-EXT-AZ:availability_zone",
        json!(i.availability_zone.clone().unwrap_or_default()),
    );
    put("OS-EXT-STS:power_state", json!(i.power_state));
    put("OS-EXT-STS:task_state", json!(i.task_state));
    put("OS-EXT-STS:vm_state", json!(i.vm_state));
    put("OS-SRV-USG:launched_at", usage_ts(&i.launched_at));
    put("OS-SRV-USG:terminated_at", usage_ts(&i.terminated_at));
    put("os-extended-volumes:volumes_attached", json!([]));
    if ctx.is_admin() {
        put("OS-EXT-SRV-ATTR:host", json!(i.host));
        put("OS-EXT-SRV-ATTR:hypervisor_hostname", json!(i.node));
        put(
            "OS-EXT-SRV-ATTR:instance_name",
            json!(format!("instance-{}", &id[..8])),
        );
        if v.at_least(3) {
            put("OS-EXT-SRV-ATTR:reservation_id", json!(i.reservation_id));
            put("OS-EXT-SRV-ATTR:launch_index", json!(i.launch_index));
            put("OS-EXT-SRV-ATTR:hostname", json!(i.hostname));
            put("OS-EXT-SRV-ATTR:kernel_id", json!(""));
            put("OS-EXT-SRV-ATTR:ramdisk_id", json!(""));
            put("OS-EXT-SRV-ATTR:root_device_name", json!("/dev/vda"));
            put("OS-EXT-SRV-ATTR:user_data", json!(i.user_data));
        }
    }
    if v.at_least(9) {
        put("locked", json!(i.locked));
    }
    if v.at_least(16) && ctx.is_admin() {
        put(
            "host_status",
            json!(if i.host.is_some() { "UP" } else { "" }),
        );
    }
    if v.at_least(19) {
        put("description", json!(i.description));
    }
    if v.at_least(26) {
        put("tags", json!([]));
    }
    if v.at_least(63) {
        put("trusted_image_certificates", Value::Null);
    }
    if v.at_least(71) {
        put(
            "server_groups",
            json!(i.server_group_id.iter().collect::<Vec<_>>()),
        );
    }
    if v.at_least(73) {
        put("locked_reason", Value::Null);
    }
    if v.at_least(96) {
        put("pinned_availability_zone", json!(i.availability_zone));
    }
    if matches!(status, "ERROR" | "DELETED") {
        if let Some(f) = &i.fault {
            let mut fault = json!({"code": f.code, "message": f.message, "created": f.created});
            if ctx.is_admin() {
                fault["details"] = json!(f.details);
            }
            put("fault", fault);
        }
    }
    Value::Object(m)
}

/// Nova's `os-extended-volumes:volumes_attached`: the volumes attached to
/// the server (with `delete_on_termination` from 2.3).
pub fn volumes_attached(v: ApiVersion, bdms: &[crate::db::bdms::VolumeBdm]) -> Value {
    Value::Array(
        bdms.iter()
            .filter(|b| b.status != crate::db::bdms::BdmStatus::Attaching)
            .map(|b| {
                if v.at_least(3) {
                    json!({"id": b.volume_id.to_string(), "delete_on_termination": b.delete_on_termination})
                } else {
                    json!({"id": b.volume_id.to_string()})
                }
            })
            .collect(),
    )
}
