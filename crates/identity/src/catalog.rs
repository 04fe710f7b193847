//! The service catalog as a token shows it: every enabled service with its
//! enabled endpoints, `$(project_id)s` filled in for a project scope (and the
//! endpoint left out when there is no project to fill in), narrowed by the
//! project's endpoint filter when it has one.

use serde_json::{json, Value};

use crate::db::endpoint_filter::project_filtered_endpoints;
use crate::db::endpoints::{endpoint_list, EndpointFilter};
use crate::db::services::service_list;
use crate::db::Conn;
use crate::error::Result;

const PLACEHOLDERS: [&str; 4] = [
    "$(project_id)s",
    "%(project_id)s",
    "$(tenant_id)s",
    "%(tenant_id)s",
];

/// Fills in the project id; `None` when the URL needs one and there is none.
pub fn format_url(url: &str, project_id: Option<&str>) -> Option<String> {
    let mut out = url.to_owned();
    for p in PLACEHOLDERS {
        if out.contains(p) {
            out = out.replace(p, project_id?);
        }
    }
    Some(out)
}

pub async fn build(conn: &mut Conn, project_id: Option<&str>) -> Result<Vec<Value>> {
    let services = service_list(conn, None, None).await?;
    let endpoints = endpoint_list(
        conn,
        &EndpointFilter {
            enabled: Some(true),
            ..Default::default()
        },
    )
    .await?;
    // OS-EP-FILTER: a project with associated endpoints sees only those,
    // and no service left without one (Keystone's sql catalog driver).
    let filtered = match project_id {
        Some(p) => Some(project_filtered_endpoints(conn, p).await?).filter(|f| !f.is_empty()),
        None => None,
    };
    let mut catalog = Vec::new();
    for s in services.into_iter().filter(|s| s.enabled) {
        let eps: Vec<Value> = endpoints
            .iter()
            .filter(|e| e.service_id == s.id.0)
            .filter(|e| {
                filtered
                    .as_ref()
                    .is_none_or(|f| f.iter().any(|x| x.id == e.id))
            })
            .filter_map(|e| {
                let url = format_url(&e.url, project_id)?;
                Some(json!({
                    "id": e.id,
                    "interface": e.interface,
                    "region_id": e.region_id,
                    "region": e.region_id,
                    "url": url,
                }))
            })
            .collect();
        if filtered.is_some() && eps.is_empty() {
            continue;
        }
        catalog.push(json!({"id": s.id, "type": s.service_type, "name": s.name, "endpoints": eps}));
    }
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_the_project() {
        assert_eq!(
            format_url("http://h:8776/v3/$(project_id)s", Some("abc")).as_deref(),
            Some("http://h:8776/v3/abc")
        );
        assert_eq!(format_url("http://h:8776/v3/$(project_id)s", None), None);
        assert_eq!(
            format_url("http://h:9292", None).as_deref(),
            Some("http://h:9292")
        );
    }
}
