//! [`VolumeClient`]: the Cinder v3 calls compute makes, each with the
//! caller's token, [`MICROVERSION`] and the request id
//! (`X-OpenStack-Request-ID`, from `stratus_common::current_request_id`).
//! Paths are project-less (`/v3/volumes`): the token says whose project it
//! is, which matters because the agent calls with the service user's token
//! on attachments of the user's project (a `/v3/{project}` URL must name
//! the token's own project). Cinder's error
//! answers become a [`ClientError`] with Cinder's own message.

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use stratus_common::ids::{AttachmentId, InstanceId, VolumeId};

use crate::model::{Attachment, Connector, NewVolume, Volume};

/// The microversion every request asks for: 3.27 brought the attachments
/// API and 3.44 `os-complete`, but the project-less URLs came only with
/// 3.67, so 3.67 it is (Cinder answers a project-less URL at an older
/// version with 404).
pub const MICROVERSION: &str = "volume 3.67";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// 404: no such volume or attachment, or the caller may not see it.
    #[error("{0} not found")]
    NotFound(String),
    /// 400: Cinder refused the request (a volume not available, ...), with
    /// its message, which callers may show to their users.
    #[error("{0}")]
    BadRequest(String),
    /// Any other error answer, with Cinder's message.
    #[error("the volume API answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("the volume API is unreachable: {0}")]
    Transport(String),
    #[error("the volume API answered something unreadable: {0}")]
    Decode(String),
}

#[derive(Clone, Debug)]
pub struct VolumeClient {
    http: reqwest::Client,
    /// Without a trailing slash or `/v3...`.
    base: String,
}

/// Accepts `http://host:8776`, `.../v3` and `.../v3/<project>` (the
/// catalog's forms).
fn normalise_base(url: &str) -> String {
    let t = url.trim_end_matches('/');
    match t.rfind("/v3") {
        Some(i) if t[i + 3..].is_empty() || t[i + 3..].starts_with('/') => t[..i].to_owned(),
        _ => t.to_owned(),
    }
}

/// Cinder's fault body `{"badRequest": {"message": ..., "code": 400}}`
/// (any fault name), or the text itself.
fn fault_message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|b| {
            b.as_object()?
                .values()
                .find_map(|f| f.get("message")?.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| truncate(text, 200).to_owned())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl VolumeClient {
    /// `base_url` is the volume endpoint, e.g. `http://127.0.0.1:8776/v3`.
    pub fn new(base_url: &str) -> Self {
        Self::with_http(reqwest::Client::new(), base_url)
    }

    /// With an HTTP client of the caller's (timeouts, pools).
    pub fn with_http(http: reqwest::Client, base_url: &str) -> Self {
        Self {
            http,
            base: normalise_base(base_url),
        }
    }

    /// Sends one request and returns the body of a success (`Null` when
    /// empty); `what` names the thing for a 404.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, ClientError> {
        let url = format!("{}/v3{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .header("X-Auth-Token", token)
            .header("OpenStack-API-Version", MICROVERSION);
        if let Some((name, value)) = stratus_common::request_id_header() {
            req = req.header(name, value);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("{url}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Transport(format!("{url}: {e}")))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|e| ClientError::Decode(format!("{what}: {e}")));
        }
        let message = fault_message(&text);
        Err(match status.as_u16() {
            404 => ClientError::NotFound(what.to_owned()),
            400 => ClientError::BadRequest(message),
            s => ClientError::Api { status: s, message },
        })
    }

    fn field<T: DeserializeOwned>(mut v: Value, key: &str, what: &str) -> Result<T, ClientError> {
        serde_json::from_value(v[key].take())
            .map_err(|e| ClientError::Decode(format!("{what}: {e}")))
    }

    /// `GET /v3/volumes/{id}`.
    pub async fn volume(&self, id: &VolumeId, token: &str) -> Result<Volume, ClientError> {
        let what = format!("volume {id}");
        let v = self
            .send(
                reqwest::Method::GET,
                &format!("/volumes/{id}"),
                token,
                None,
                &what,
            )
            .await?;
        Self::field(v, "volume", &what)
    }

    /// `POST /v3/volumes`: a blank volume, or one made from an image.
    pub async fn volume_create(&self, new: &NewVolume, token: &str) -> Result<Volume, ClientError> {
        let body = json!({ "volume": new });
        let v = self
            .send(
                reqwest::Method::POST,
                "/volumes",
                token,
                Some(&body),
                "volume",
            )
            .await?;
        Self::field(v, "volume", "new volume")
    }

    /// `GET /v3/volumes?name=...`: the ids of the volumes named `name`
    /// that the token's project has, or with `project` those of that
    /// project (`all_tenants=1&project_id=...`: an admin's token).
    pub async fn volumes_named(
        &self,
        name: &str,
        project: Option<&str>,
        token: &str,
    ) -> Result<Vec<VolumeId>, ClientError> {
        #[derive(serde::Deserialize)]
        struct Item {
            id: VolumeId,
            #[serde(default)]
            name: Option<String>,
        }
        let enc = |s: &str| -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        let mut query = format!("name={}", enc(name));
        if let Some(p) = project {
            query.push_str(&format!("&all_tenants=1&project_id={}", enc(p)));
        }
        let v = self
            .send(
                reqwest::Method::GET,
                &format!("/volumes?{query}"),
                token,
                None,
                "volumes",
            )
            .await?;
        let items: Vec<Item> = Self::field(v, "volumes", "volumes")?;
        Ok(items
            .into_iter()
            .filter(|i| i.name.as_deref() == Some(name))
            .map(|i| i.id)
            .collect())
    }

    /// `DELETE /v3/volumes/{id}`; an absent volume is fine (idempotent).
    pub async fn volume_delete(&self, id: &VolumeId, token: &str) -> Result<(), ClientError> {
        let r = self
            .send(
                reqwest::Method::DELETE,
                &format!("/volumes/{id}"),
                token,
                None,
                &format!("volume {id}"),
            )
            .await;
        match r {
            Ok(_) | Err(ClientError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `POST /v3/attachments` with no connector: reserves the volume for
    /// the server (3.27).
    pub async fn attachment_create(
        &self,
        volume: &VolumeId,
        instance: &InstanceId,
        token: &str,
    ) -> Result<Attachment, ClientError> {
        let body = json!({"attachment": {
            "volume_uuid": volume.to_string(),
            "instance_uuid": instance.to_string(),
        }});
        let what = format!("volume {volume}");
        let v = self
            .send(
                reqwest::Method::POST,
                "/attachments",
                token,
                Some(&body),
                &what,
            )
            .await?;
        Self::field(v, "attachment", &what)
    }

    /// `GET /v3/attachments/{id}`.
    pub async fn attachment(
        &self,
        id: &AttachmentId,
        token: &str,
    ) -> Result<Attachment, ClientError> {
        let what = format!("attachment {id}");
        let v = self
            .send(
                reqwest::Method::GET,
                &format!("/attachments/{id}"),
                token,
                None,
                &what,
            )
            .await?;
        Self::field(v, "attachment", &what)
    }

    /// `PUT /v3/attachments/{id}` with the host's connector: the
    /// attachment with its connection info.
    pub async fn attachment_update(
        &self,
        id: &AttachmentId,
        connector: &Connector,
        token: &str,
    ) -> Result<Attachment, ClientError> {
        let body = json!({"attachment": {"connector": connector}});
        let what = format!("attachment {id}");
        let v = self
            .send(
                reqwest::Method::PUT,
                &format!("/attachments/{id}"),
                token,
                Some(&body),
                &what,
            )
            .await?;
        Self::field(v, "attachment", &what)
    }

    /// `POST /v3/attachments/{id}/action` `{"os-complete": null}` (3.44):
    /// the volume is `in-use`.
    pub async fn attachment_complete(
        &self,
        id: &AttachmentId,
        token: &str,
    ) -> Result<(), ClientError> {
        let body = json!({"os-complete": null});
        self.send(
            reqwest::Method::POST,
            &format!("/attachments/{id}/action"),
            token,
            Some(&body),
            &format!("attachment {id}"),
        )
        .await?;
        Ok(())
    }

    /// `GET /v3/attachments?volume_id=..&instance_id=..`: the attachments
    /// of `volume` to `instance` in any state (a reservation whose reply
    /// was lost is found again by what it joins); `all_projects` for an
    /// admin's token, such as the service user's.
    pub async fn attachments_of(
        &self,
        volume: &VolumeId,
        instance: &InstanceId,
        all_projects: bool,
        token: &str,
    ) -> Result<Vec<Attachment>, ClientError> {
        let what = format!("attachments of volume {volume}");
        let all = if all_projects { "&all_tenants=1" } else { "" };
        let v = self
            .send(
                reqwest::Method::GET,
                &format!("/attachments?volume_id={volume}&instance_id={instance}{all}"),
                token,
                None,
                &what,
            )
            .await?;
        Self::field(v, "attachments", &what)
    }

    /// `DELETE /v3/attachments/{id}`: the volume is `available` again; an
    /// absent attachment is fine (idempotent).
    pub async fn attachment_delete(
        &self,
        id: &AttachmentId,
        token: &str,
    ) -> Result<(), ClientError> {
        let r = self
            .send(
                reqwest::Method::DELETE,
                &format!("/attachments/{id}"),
                token,
                None,
                &format!("attachment {id}"),
            )
            .await;
        match r {
            Ok(_) | Err(ClientError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_forms() {
        for u in [
            "http://h:8776",
            "http://h:8776/",
            "http://h:8776/v3",
            "http://h:8776/v3/",
            "http://h:8776/v3/0123abcd",
        ] {
            assert_eq!(normalise_base(u), "http://h:8776", "{u}");
        }
        assert_eq!(normalise_base("http://h/volume/v3/p"), "http://h/volume");
    }

    #[test]
    fn cinder_fault_messages() {
        assert_eq!(
            fault_message(r#"{"badRequest": {"message": "Invalid volume", "code": 400}}"#),
            "Invalid volume"
        );
        assert_eq!(fault_message("plain"), "plain");
    }
}
