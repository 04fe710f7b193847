//! The HTTP side (Nova's `MetadataRequestHandler` with
//! `service_metadata_proxy = true`): every path but `/` must come from the
//! Neutron metadata proxy, which names the instance and project in headers
//! and signs the instance id with the shared secret.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Response, StatusCode};
use axum::response::IntoResponse;
use stratus_common::ids::InstanceId;

use crate::cache::{Cache, Prepared};
use crate::config::MetadataConfig;
use crate::content::vendor;
use crate::error::{MetadataError, Result};
use crate::lookup::{self, Ask, Served};
use crate::model::InstanceSource;
use crate::password::{self, PasswordAction};
use crate::signature::verify_instance_id;

pub(crate) struct AppState {
    pub cfg: MetadataConfig,
    pub source: Arc<dyn InstanceSource>,
    pub cache: Cache,
    /// For DynamicJSON vendordata targets.
    pub http: reqwest::Client,
}

impl AppState {
    pub fn new(cfg: MetadataConfig, source: Arc<dyn InstanceSource>) -> Self {
        if cfg.shared_secret.is_empty() {
            tracing::warn!(
                "metadata shared secret is not configured: the proxy's requests cannot be trusted"
            );
        }
        let cache = Cache::new(Duration::from_secs(cfg.cache_ttl_secs));
        let http = vendor::http_client(&cfg);
        Self {
            cfg,
            source,
            cache,
            http,
        }
    }
}

/// The proxy's headers, checked for presence and uniqueness.
struct ProxyHeaders {
    instance_id: String,
    tenant_id: String,
    signature: String,
    forwarded_for: Option<String>,
}

/// One header's value: `Ok(None)` if absent; 400 if repeated or not text.
fn single(headers: &HeaderMap, name: &str) -> Result<Option<String>> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(MetadataError::BadRequest(format!(
            "Multiple {name} headers found within request."
        )));
    }
    first
        .to_str()
        .map(|s| Some(s.to_owned()))
        .map_err(|_| MetadataError::BadRequest(format!("{name} header is not valid text.")))
}

fn proxy_headers(headers: &HeaderMap) -> Result<ProxyHeaders> {
    let instance_id = single(headers, "X-Instance-ID")?;
    let tenant_id = single(headers, "X-Tenant-ID")?;
    let signature = single(headers, "X-Instance-ID-Signature")?;
    // Nova's order of complaints.
    let missing =
        |h: &str| MetadataError::BadRequest(format!("{h} header is missing from request."));
    let instance_id = instance_id.ok_or_else(|| missing("X-Instance-ID"))?;
    let signature = signature.ok_or_else(|| missing("X-Instance-ID-Signature"))?;
    let tenant_id = tenant_id.ok_or_else(|| missing("X-Tenant-ID"))?;
    // The proxy appends to an existing list; the guest is the first entry.
    let forwarded_for = headers
        .get("X-Forwarded-For")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    Ok(ProxyHeaders {
        instance_id,
        tenant_id,
        signature,
        forwarded_for,
    })
}

impl AppState {
    /// The instance's metadata, from the cache or the source; 404 when it
    /// does not exist or the project does not match.
    async fn instance(&self, h: &ProxyHeaders) -> Result<(InstanceId, Arc<Prepared>)> {
        let id: InstanceId = h.instance_id.parse().map_err(|_| MetadataError::NotFound)?;
        let prepared = match self.cache.get(&id) {
            Some(p) => p,
            None => {
                let instance = self
                    .source
                    .instance(id)
                    .await?
                    .ok_or(MetadataError::NotFound)?;
                let vendor_static = if self.cfg.static_json_enabled() {
                    vendor::load_static(self.cfg.vendordata_jsonfile_path.as_deref()).await?
                } else {
                    serde_json::Value::Object(Default::default())
                };
                let p = Arc::new(Prepared {
                    instance,
                    vendor_static,
                });
                self.cache.put(id, p.clone());
                p
            }
        };
        if prepared.instance.project_id.as_str() != h.tenant_id {
            tracing::warn!(instance = %id, tenant = %h.tenant_id, "X-Tenant-ID does not match the instance's project");
            return Err(MetadataError::NotFound);
        }
        Ok((id, prepared))
    }
}

fn body_response(content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `/` (the version listing) and every path below it, every method: the
/// trees are resolved by [`lookup`], not by the router.
pub(crate) fn routes() -> stratus_auth::Routes<Arc<AppState>> {
    use stratus_auth::routes::any;
    stratus_auth::Routes::new()
        .route("/", any(serve))
        .route("/{*path}", any(serve))
}

/// Every request lands here.
pub(crate) async fn serve(State(st): State<Arc<AppState>>, req: Request) -> Result<Response<Body>> {
    let tokens = lookup::normalize(req.uri().path());
    if tokens.is_empty() {
        return Ok(body_response(lookup::TEXT_PLAIN, lookup::root_listing()));
    }
    let h = proxy_headers(req.headers())?;
    if !verify_instance_id(&st.cfg.shared_secret, &h.instance_id, &h.signature) {
        tracing::warn!(instance = %h.instance_id, from = ?h.forwarded_for, "metadata request with a bad signature");
        return Err(MetadataError::Forbidden);
    }
    let (id, prepared) = st.instance(&h).await?;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let ask = Ask {
        tokens: &tokens,
        today: &today,
        remote_address: h.forwarded_for.as_deref(),
    };
    match lookup::lookup(&prepared, &st.cfg, &ask)? {
        Served::Body { content_type, body } => Ok(body_response(content_type, body)),
        Served::Password => password_request(&st, id, &prepared, req).await,
        Served::VendorData2 => {
            let doc = vendor::vendor_data2(
                &st.cfg,
                &st.http,
                &prepared.instance,
                &prepared.vendor_static,
            )
            .await?;
            Ok(body_response(
                lookup::APPLICATION_JSON,
                lookup::json_body(&doc)?,
            ))
        }
    }
}

/// `openstack/<ver>/password`: GET shows, POST stores once.
async fn password_request(
    st: &AppState,
    id: InstanceId,
    prepared: &Prepared,
    req: Request,
) -> Result<Response<Body>> {
    let method = req.method().as_str().to_owned();
    let current = prepared.instance.password.as_deref();
    // Only a POST that could succeed reads its body.
    let body = if method == "POST" && !password::is_set(current) {
        axum::body::to_bytes(req.into_body(), password::MAX_SIZE)
            .await
            .ok()
    } else {
        None
    };
    match password::decide(&method, current, body.as_deref())? {
        PasswordAction::Show(pw) => Ok(body_response(lookup::TEXT_PLAIN, pw.into_bytes())),
        PasswordAction::Store(pw) => {
            let stored = st.source.set_password(id, pw).await?;
            // The cached copy no longer tells the truth either way.
            st.cache.invalidate(&id);
            if !stored {
                return Err(MetadataError::Conflict);
            }
            Ok(body_response(lookup::TEXT_PLAIN, Vec::new()))
        }
    }
}
