//! The cloud's APIs as `stratus trace` and `stratus demo` speak them: a
//! password token from identity with its catalog, the compute API's
//! servers and instance actions, and each service's events
//! (`GET /stratus/events` at the root of its API port).

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use stratus_telemetry::Event;

use super::clouds::CloudAuth;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One endpoint of the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub service_type: String,
    pub url: String,
}

impl Endpoint {
    /// `scheme://host:port` of the endpoint: where the service answers
    /// `/stratus/events`.
    pub fn origin(&self) -> String {
        origin(&self.url)
    }
}

fn origin(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => url[..after_scheme + slash].to_owned(),
        None => url.trim_end_matches('/').to_owned(),
    }
}

/// A token and what came with it.
pub struct Session {
    http: reqwest::Client,
    token: String,
    pub catalog: Vec<Endpoint>,
}

/// A server's instance action.
#[derive(Clone, Debug)]
pub struct Action {
    pub action: String,
    pub request_id: String,
    pub user_id: String,
    pub start_time: String,
}

/// What one service answered for events.
pub enum Answer {
    Events(Vec<Event>),
    /// Not instrumented (404), down, or refusing: the note to show.
    Note(String),
}

impl Session {
    /// A project-scoped password token, as the `openstack` CLI gets one.
    pub async fn login(auth: &CloudAuth) -> anyhow::Result<Session> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("making the HTTP client")?;
        let base = auth.auth_url.trim_end_matches('/');
        let url = if base.ends_with("/v3") {
            format!("{base}/auth/tokens")
        } else {
            format!("{base}/v3/auth/tokens")
        };
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": auth.username,
                "domain": {"name": auth.user_domain_name},
                "password": auth.password}}},
            "scope": {"project": {
                "name": auth.project_name,
                "domain": {"name": auth.project_domain_name}}}
        }});
        let resp = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("reaching identity at {url}"))?;
        let status = resp.status();
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let token = match (status, token) {
            (StatusCode::CREATED, Some(t)) => t,
            _ => bail!(
                "identity refused the credentials ({status}): {}",
                message(&body)
            ),
        };
        let catalog = catalog(&body["token"], auth);
        Ok(Session {
            http,
            token,
            catalog,
        })
    }

    /// The URL of service `service_type` in the catalog.
    pub fn endpoint(&self, service_type: &str) -> anyhow::Result<String> {
        self.catalog
            .iter()
            .find(|e| e.service_type == service_type)
            .map(|e| e.url.trim_end_matches('/').to_owned())
            .ok_or_else(|| anyhow!("the catalog has no {service_type} endpoint"))
    }

    /// A request with the token; the status and the JSON body (`Null` when
    /// there is none).
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = self
            .http
            .request(method.clone(), url)
            .header("X-Auth-Token", &self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("{method} {url}"))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// Like [`Session::call`], but any status other than 2xx is an error
    /// carrying the service's message.
    pub async fn ok(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(method.clone(), url, body).await?;
        if !status.is_success() {
            bail!("{method} {url}: {status}: {}", message(&v));
        }
        Ok(v)
    }

    /// Uploads `bytes` as the data of image `id`.
    pub async fn upload(&self, url: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let resp = self
            .http
            .put(url)
            .header("X-Auth-Token", &self.token)
            .header("Content-Type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            bail!("PUT {url}: {status}: {}", message(&v));
        }
        Ok(())
    }

    /// The id of the server named or numbered `server` (any project: the
    /// trace is an admin's tool).
    pub async fn find_server(&self, server: &str) -> anyhow::Result<String> {
        let compute = self.endpoint("compute")?;
        let (status, v) = self
            .call(Method::GET, &format!("{compute}/servers/{server}"), None)
            .await?;
        if status.is_success() {
            if let Some(id) = v["server"]["id"].as_str() {
                return Ok(id.to_owned());
            }
        }
        let url = format!(
            "{compute}/servers?all_tenants=1&name={}",
            regex_exact(server)
        );
        let list = self.ok(Method::GET, &url, None).await?;
        let ids: Vec<&str> = list["servers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|s| s["name"] == server)
            .filter_map(|s| s["id"].as_str())
            .collect();
        match ids.as_slice() {
            [id] => Ok((*id).to_owned()),
            [] => bail!("no server {server:?}"),
            _ => bail!("{} servers are named {server:?}: give an id", ids.len()),
        }
    }

    /// The server's instance actions, as the compute API lists them.
    pub async fn actions(&self, server_id: &str) -> anyhow::Result<Vec<Action>> {
        let compute = self.endpoint("compute")?;
        let url = format!("{compute}/servers/{server_id}/os-instance-actions");
        let v = self.ok(Method::GET, &url, None).await?;
        let s = |a: &Value, k: &str| a[k].as_str().unwrap_or_default().to_owned();
        Ok(v["instanceActions"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|a| Action {
                action: s(a, "action"),
                request_id: s(a, "request_id"),
                user_id: s(a, "user_id"),
                start_time: s(a, "start_time"),
            })
            .collect())
    }

    /// `GET {origin}/stratus/events?{query}` of one service.
    pub async fn events(&self, origin: &str, query: &[(&str, &str)]) -> Answer {
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let url = format!("{origin}/stratus/events?{}", query.join("&"));
        let resp = self
            .http
            .get(&url)
            .header("X-Auth-Token", &self.token)
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Answer::Note(format!("{origin} did not answer ({e})")),
        };
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return Answer::Note(format!("{origin} keeps no events (404)"));
        }
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Answer::Note(format!("{origin} refused: {status}: {}", message(&body)));
        }
        match serde_json::from_value::<Vec<Event>>(body["events"].clone()) {
            Ok(events) => Answer::Events(events),
            Err(e) => Answer::Note(format!("{origin} answered events that do not read: {e}")),
        }
    }
}

/// The endpoints of the token's catalog for the cloud's interface and
/// region.
fn catalog(token: &Value, auth: &CloudAuth) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for service in token["catalog"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let service_type = service["type"].as_str().unwrap_or_default();
        let endpoints = service["endpoints"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let chosen = endpoints.iter().find(|e| {
            e["interface"] == auth.interface.as_str()
                && auth
                    .region_name
                    .as_deref()
                    .is_none_or(|r| e["region_id"] == r || e["region"] == r)
        });
        if let Some(url) = chosen.and_then(|e| e["url"].as_str()) {
            out.push(Endpoint {
                service_type: service_type.to_owned(),
                url: url.to_owned(),
            });
        }
    }
    out
}

/// Nova's `name` filter is a regular expression: this one matches `name`
/// alone (its metacharacters escaped, the whole percent-encoded).
fn regex_exact(name: &str) -> String {
    let mut re = String::from("^");
    for c in name.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            re.push('\\');
        }
        re.push(c);
    }
    re.push('$');
    encode(&re)
}

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The message of an OpenStack error body (any service's shape).
pub fn message(body: &Value) -> String {
    if let Some(obj) = body.as_object() {
        for v in obj.values() {
            if let Some(m) = v["message"].as_str() {
                return m.to_owned();
            }
        }
        if let Some(m) = obj.get("NeutronError").and_then(|e| e["message"].as_str()) {
            return m.to_owned();
        }
    }
    if body.is_null() {
        "no body".to_owned()
    } else {
        body.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_drop_the_path() {
        assert_eq!(
            origin("http://127.0.0.1:8774/v2.1"),
            "http://127.0.0.1:8774"
        );
        assert_eq!(origin("https://h:9696/"), "https://h:9696");
        assert_eq!(origin("http://h:5000"), "http://h:5000");
    }

    #[test]
    fn names_become_exact_regexes() {
        assert_eq!(regex_exact("vm-1"), "%5Evm-1%24");
        assert_eq!(regex_exact("a.b"), "%5Ea%5C.b%24");
    }

    #[test]
    fn the_catalog_is_read_for_the_interface_and_region() {
        let auth = CloudAuth {
            auth_url: String::new(),
            username: String::new(),
            password: String::new(),
            project_name: String::new(),
            user_domain_name: String::new(),
            project_domain_name: String::new(),
            region_name: Some("RegionOne".into()),
            interface: "public".into(),
        };
        let token = json!({"catalog": [
            {"type": "compute", "endpoints": [
                {"interface": "admin", "region_id": "RegionOne", "url": "http://a:1/v2.1"},
                {"interface": "public", "region_id": "RegionTwo", "url": "http://b:1/v2.1"},
                {"interface": "public", "region_id": "RegionOne", "url": "http://c:1/v2.1"}]},
            {"type": "image", "endpoints": []}
        ]});
        let c = catalog(&token, &auth);
        assert_eq!(
            c,
            [Endpoint {
                service_type: "compute".into(),
                url: "http://c:1/v2.1".into()
            }]
        );
    }
}
