//! `/v3/regions`, `/v3/services`, `/v3/endpoints`: the catalog's pieces.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::crud::{self, Resource};
use super::extract::{BaseUrl, Body, Caller, Filters};
use super::{check_id, new_id, with_extra};
use crate::db::endpoints::{
    endpoint_create, endpoint_delete, endpoint_get, endpoint_list, endpoint_update, Endpoint,
    EndpointFilter,
};
use crate::db::regions::{
    region_create, region_delete, region_get, region_in_use, region_list, region_update, Region,
};
use crate::db::services::{
    service_create, service_delete, service_get, service_list, service_update, Service,
};
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::ids::{EndpointId, ServiceId};
use crate::policy::{enforce, Action};
use crate::Inner;

fn clean(mut extra: Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    extra.remove("links");
    for k in known {
        extra.remove(*k);
    }
    extra
}

// ---- regions ----

impl Resource for Region {
    const KIND: &'static str = "region";
    const COLLECTION: &'static str = "regions";

    async fn get(conn: &mut Conn, id: &str) -> Result<Self> {
        region_get(conn, id).await
    }

    async fn save(&self, conn: &mut Conn) -> Result<()> {
        region_update(conn, self).await
    }

    fn view(&self, base: &BaseUrl) -> Value {
        region_view(self, base)
    }
}

pub fn region_view(r: &Region, base: &BaseUrl) -> Value {
    with_extra(
        &r.extra,
        json!({"id": r.id, "description": r.description, "parent_region_id": r.parent_region_id,
               "links": {"self": base.v3(&format!("regions/{}", r.id))}}),
    )
}

#[derive(Deserialize)]
pub struct RegionBody {
    region: RegionFields,
}

#[derive(Deserialize)]
struct RegionFields {
    id: Option<String>,
    description: Option<String>,
    parent_region_id: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

async fn make_region(
    inner: &Inner,
    id: String,
    f: RegionFields,
    base: &BaseUrl,
) -> Result<(StatusCode, Json<Value>)> {
    check_id("region", &id)?;
    let mut tx = crate::db::begin(&inner.db).await?;
    if let Some(p) = &f.parent_region_id {
        region_get(&mut tx, p).await?;
    }
    let r = Region {
        id,
        description: f.description.unwrap_or_default(),
        parent_region_id: f.parent_region_id,
        extra: clean(f.extra, &["id", "parent_region_id", "description"]),
    };
    region_create(&mut tx, &r).await?;
    tx.commit().await?;
    Ok(crud::created(&r, base))
}

pub async fn create_region(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(b): Body<RegionBody>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:create_region"))?;
    let id = b.region.id.clone().unwrap_or_else(new_id);
    make_region(&inner, id, b.region, &base).await
}

pub async fn create_region_with_id(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(b): Body<RegionBody>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:create_region"))?;
    if b.region.id.as_ref().is_some_and(|i| *i != id) {
        return Err(IdentityError::validation(
            "The region id in the body does not match the URL.",
        ));
    }
    make_region(&inner, id, b.region, &base).await
}

pub async fn list_regions(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    enforce(&caller.ctx(), Action::ListRegions)?;
    let mut conn = inner.db.conn().await?;
    let rows = region_list(&mut conn, f.get("parent_region_id")).await?;
    Ok(crud::many(&rows, &base))
}

pub async fn show_region(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    crud::show::<Region>(&inner, &caller, Action::GetRegion, &id, &base).await
}

pub async fn update_region(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(b): Body<RegionBody>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:update_region");
    let f = b.region;
    let (mut tx, mut r) = crud::load_for_change::<Region>(&inner, &caller, action, &id).await?;
    if let Some(d) = f.description {
        r.description = d;
    }
    if let Some(p) = f.parent_region_id {
        if p == id {
            return Err(IdentityError::validation(
                "A region cannot be its own parent.",
            ));
        }
        region_get(&mut tx, &p).await?;
        r.parent_region_id = Some(p);
    }
    r.extra
        .extend(clean(f.extra, &["id", "parent_region_id", "description"]));
    crud::save(tx, &r, &base).await
}

pub async fn delete_region(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let action = Action::AdminOnly("identity:delete_region");
    let (mut tx, _) = crud::load_for_change::<Region>(&inner, &caller, action, &id).await?;
    if region_in_use(&mut tx, &id).await? {
        return Err(IdentityError::Conflict(format!(
            "Region {id} has child regions or endpoints."
        )));
    }
    region_delete(&mut tx, &id).await?;
    crud::no_content(tx).await
}

// ---- services ----

impl Resource for Service {
    const KIND: &'static str = "service";
    const COLLECTION: &'static str = "services";

    async fn get(conn: &mut Conn, id: &str) -> Result<Self> {
        service_get(conn, id).await
    }

    async fn save(&self, conn: &mut Conn) -> Result<()> {
        service_update(conn, self).await
    }

    fn view(&self, base: &BaseUrl) -> Value {
        service_view(self, base)
    }
}

pub fn service_view(s: &Service, base: &BaseUrl) -> Value {
    with_extra(
        &s.extra,
        json!({"id": s.id, "type": s.service_type, "name": s.name, "description": s.description,
               "enabled": s.enabled, "links": {"self": base.v3(&format!("services/{}", s.id))}}),
    )
}

#[derive(Deserialize)]
pub struct ServiceBody {
    service: ServiceFields,
}

#[derive(Deserialize)]
struct ServiceFields {
    #[serde(rename = "type")]
    service_type: Option<String>,
    name: Option<String>,
    description: Option<String>,
    enabled: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

const SERVICE_KNOWN: &[&str] = &["id", "type", "name", "description", "enabled"];

pub async fn create_service(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(b): Body<ServiceBody>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:create_service"))?;
    let f = b.service;
    let service_type = f
        .service_type
        .filter(|t| !t.trim().is_empty() && t.len() <= 255)
        .ok_or_else(|| {
            IdentityError::validation("Invalid input for field 'type': a service type is required.")
        })?;
    let s = Service {
        id: ServiceId(new_id()),
        service_type,
        name: f.name.unwrap_or_default(),
        description: f.description.unwrap_or_default(),
        enabled: f.enabled.unwrap_or(true),
        extra: clean(f.extra, SERVICE_KNOWN),
    };
    let mut conn = inner.db.conn().await?;
    service_create(&mut conn, &s).await?;
    Ok(crud::created(&s, &base))
}

pub async fn list_services(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:list_services"))?;
    let mut conn = inner.db.conn().await?;
    let rows = service_list(&mut conn, f.get("type"), f.get("name")).await?;
    Ok(crud::many(&rows, &base))
}

pub async fn show_service(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:get_service");
    crud::show::<Service>(&inner, &caller, action, &id, &base).await
}

pub async fn update_service(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(b): Body<ServiceBody>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:update_service");
    crud::update(&inner, &caller, action, &id, &base, |s: &mut Service| {
        let f = b.service;
        if let Some(t) = f.service_type {
            if t.trim().is_empty() {
                return Err(IdentityError::validation(
                    "Invalid input for field 'type': it must not be empty.",
                ));
            }
            s.service_type = t;
        }
        if let Some(n) = f.name {
            s.name = n;
        }
        if let Some(d) = f.description {
            s.description = d;
        }
        if let Some(e) = f.enabled {
            s.enabled = e;
        }
        s.extra.extend(clean(f.extra, SERVICE_KNOWN));
        Ok(())
    })
    .await
}

pub async fn delete_service(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    check_id("service", &id)?;
    enforce(&caller.ctx(), Action::AdminOnly("identity:delete_service"))?;
    let mut tx = crate::db::begin(&inner.db).await?;
    service_delete(&mut tx, &id).await?;
    crud::no_content(tx).await
}

// ---- endpoints ----

impl Resource for Endpoint {
    const KIND: &'static str = "endpoint";
    const COLLECTION: &'static str = "endpoints";

    async fn get(conn: &mut Conn, id: &str) -> Result<Self> {
        endpoint_get(conn, id).await
    }

    async fn save(&self, conn: &mut Conn) -> Result<()> {
        endpoint_update(conn, self).await
    }

    fn view(&self, base: &BaseUrl) -> Value {
        endpoint_view(self, base)
    }
}

pub fn endpoint_view(e: &Endpoint, base: &BaseUrl) -> Value {
    with_extra(
        &e.extra,
        json!({"id": e.id, "service_id": e.service_id, "interface": e.interface,
               "region_id": e.region_id, "region": e.region_id, "url": e.url, "enabled": e.enabled,
               "links": {"self": base.v3(&format!("endpoints/{}", e.id))}}),
    )
}

#[derive(Deserialize)]
pub struct EndpointBody {
    endpoint: EndpointFields,
}

#[derive(Deserialize)]
struct EndpointFields {
    service_id: Option<String>,
    interface: Option<String>,
    region_id: Option<String>,
    /// The old name of `region_id`.
    region: Option<String>,
    url: Option<String>,
    enabled: Option<bool>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

const ENDPOINT_KNOWN: &[&str] = &[
    "id",
    "service_id",
    "interface",
    "region_id",
    "region",
    "url",
    "enabled",
];

fn check_interface(i: &str) -> Result<()> {
    if matches!(i, "public" | "internal" | "admin") {
        Ok(())
    } else {
        Err(IdentityError::validation(format!(
            "Invalid input for field 'interface': '{i}' is not one of public, internal, admin."
        )))
    }
}

fn check_url(u: &str) -> Result<()> {
    if u.starts_with("http://") || u.starts_with("https://") {
        Ok(())
    } else {
        Err(IdentityError::validation(format!(
            "Invalid input for field 'url': '{u}' is not an http(s) URL."
        )))
    }
}

pub async fn create_endpoint(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(b): Body<EndpointBody>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:create_endpoint"))?;
    let f = b.endpoint;
    let (Some(service_id), Some(interface), Some(url)) = (f.service_id, f.interface, f.url) else {
        return Err(IdentityError::validation(
            "Invalid input: service_id, interface and url are required.",
        ));
    };
    check_interface(&interface)?;
    check_url(&url)?;
    let region_id = f.region_id.or(f.region);
    let mut tx = crate::db::begin(&inner.db).await?;
    service_get(&mut tx, &service_id).await?;
    if let Some(r) = &region_id {
        region_get(&mut tx, r).await?;
    }
    let e = Endpoint {
        id: EndpointId(new_id()),
        service_id,
        interface,
        region_id,
        url,
        enabled: f.enabled.unwrap_or(true),
        extra: clean(f.extra, ENDPOINT_KNOWN),
    };
    endpoint_create(&mut tx, &e).await?;
    tx.commit().await?;
    Ok(crud::created(&e, &base))
}

pub async fn list_endpoints(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:list_endpoints"))?;
    let mut conn = inner.db.conn().await?;
    let filter = EndpointFilter {
        service_id: f.get("service_id"),
        interface: f.get("interface"),
        region_id: f.get("region_id").or(f.get("region")),
        enabled: f.bool("enabled")?,
    };
    let rows = endpoint_list(&mut conn, &filter).await?;
    Ok(crud::many(&rows, &base))
}

pub async fn show_endpoint(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:get_endpoint");
    crud::show::<Endpoint>(&inner, &caller, action, &id, &base).await
}

pub async fn update_endpoint(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(b): Body<EndpointBody>,
) -> Result<Json<Value>> {
    let action = Action::AdminOnly("identity:update_endpoint");
    let f = b.endpoint;
    let (mut tx, mut e) = crud::load_for_change::<Endpoint>(&inner, &caller, action, &id).await?;
    if let Some(s) = f.service_id {
        service_get(&mut tx, &s).await?;
        e.service_id = s;
    }
    if let Some(i) = f.interface {
        check_interface(&i)?;
        e.interface = i;
    }
    if let Some(r) = f.region_id.or(f.region) {
        region_get(&mut tx, &r).await?;
        e.region_id = Some(r);
    }
    if let Some(u) = f.url {
        check_url(&u)?;
        e.url = u;
    }
    if let Some(en) = f.enabled {
        e.enabled = en;
    }
    e.extra.extend(clean(f.extra, ENDPOINT_KNOWN));
    crud::save(tx, &e, &base).await
}

pub async fn delete_endpoint(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    check_id("endpoint", &id)?;
    enforce(&caller.ctx(), Action::AdminOnly("identity:delete_endpoint"))?;
    let mut tx = crate::db::begin(&inner.db).await?;
    endpoint_delete(&mut tx, &id).await?;
    crate::db::endpoint_filter::endpoint_filter_forget_endpoint(&mut tx, &id).await?;
    crud::no_content(tx).await
}
