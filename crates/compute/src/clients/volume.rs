//! What compute asks of the volume service (Cinder's attachments API), the
//! real client over HTTP ([`CinderVolumes`]) with Cinder's answers turned
//! into Nova's errors, and [`FakeVolumes`], an in-memory volume service for
//! tests that checks the same state machine (a volume is `available`,
//! `reserved`, `attaching` or `in-use`; one attachment at a time).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value};
use stratus_common::ids::{AttachmentId, InstanceId, VolumeId};
use stratus_volume_client::{ClientError, Connector, VolumeClient};

use crate::error::{ComputeError, Result};

/// A volume as compute needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeInfo {
    pub id: VolumeId,
    pub status: String,
    pub size: i64,
    /// Its attachments: (attachment, server) pairs.
    pub attachments: Vec<(AttachmentId, Option<String>)>,
}

#[async_trait]
pub trait VolumeApi: Send + Sync + 'static {
    /// The volume as `token` may see it; Nova's 404 otherwise.
    async fn volume_get(&self, token: &str, id: &VolumeId) -> Result<VolumeInfo>;
    /// Reserves the volume for the instance (an attachment with no
    /// connector); Cinder's 400 (not available) stays a 400.
    async fn attachment_reserve(
        &self,
        token: &str,
        volume: &VolumeId,
        instance: &InstanceId,
    ) -> Result<AttachmentId>;
    /// Gives the host's connector; returns the connection info.
    async fn attachment_connect(
        &self,
        token: &str,
        attachment: &AttachmentId,
        connector: &Connector,
    ) -> Result<Value>;
    /// The volume is `in-use`.
    async fn attachment_complete(&self, token: &str, attachment: &AttachmentId) -> Result<()>;
    /// The volume is `available` again; an absent attachment is fine.
    async fn attachment_delete(&self, token: &str, attachment: &AttachmentId) -> Result<()>;
    /// The attachments of `volume` to `instance`, in any state: in the
    /// token's project, or with `all_projects` in any (an admin's token).
    async fn attachments_of(
        &self,
        token: &str,
        volume: &VolumeId,
        instance: &InstanceId,
        all_projects: bool,
    ) -> Result<Vec<AttachmentId>>;
    /// Deletes a volume (delete_on_termination); an absent one is fine.
    async fn volume_delete(&self, token: &str, id: &VolumeId) -> Result<()>;
    /// A new volume named `name` made from `source` (boot from volume), of
    /// `size` GiB (`None`: the snapshot's size); it is `creating` until
    /// the data is copied.
    async fn volume_create_from(
        &self,
        token: &str,
        source: &NewVolumeSource,
        size: Option<i64>,
        name: &str,
    ) -> Result<VolumeId>;
    /// The volumes named `name` (to find one a step made before): the
    /// token's project's, or with `project` that project's (an admin's
    /// token, such as the service user's).
    async fn volumes_named(
        &self,
        token: &str,
        name: &str,
        project: Option<&str>,
    ) -> Result<Vec<VolumeId>>;
}

/// What a volume made at boot is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewVolumeSource {
    Image(String),
    Snapshot(String),
}

/// How long a volume made from an image may take to be ready.
pub const VOLUME_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Waits while the volume is being made (`creating`, `downloading`: it can
/// be neither attached nor deleted yet), at most `wait`; its state once it
/// is not, or when the wait is over.
pub async fn volume_settled(
    api: &dyn VolumeApi,
    token: &str,
    id: &VolumeId,
    wait: std::time::Duration,
) -> Result<VolumeInfo> {
    let started = std::time::Instant::now();
    loop {
        let v = api.volume_get(token, id).await?;
        let busy = matches!(v.status.as_str(), "creating" | "downloading");
        if !busy || started.elapsed() > wait {
            return Ok(v);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

pub struct CinderVolumes {
    client: VolumeClient,
}

impl CinderVolumes {
    /// `base_url`: the volume endpoint, e.g. `http://127.0.0.1:8776/v3`.
    pub fn new(base_url: &str) -> Self {
        Self {
            client: VolumeClient::new(base_url),
        }
    }
}

fn volume_not_found(id: &VolumeId) -> ComputeError {
    ComputeError::NotFound(format!("Volume {id} could not be found."))
}

/// Cinder's answers as Nova gives them back: its 400s (a volume not
/// available) with Cinder's message, an unreachable service as 503.
fn nova_error(e: ClientError) -> ComputeError {
    match e {
        ClientError::NotFound(what) => {
            ComputeError::NotFound(format!("{what} could not be found."))
        }
        ClientError::BadRequest(m) => ComputeError::BadRequest(m),
        // The API makes boot volumes with the user's token: the user's
        // volume quota is the user's to hear about.
        ClientError::Api {
            status: 413,
            message,
        } => ComputeError::OverQuota(message),
        ClientError::Transport(e) => {
            ComputeError::Unavailable(format!("The volume service is unavailable: {e}"))
        }
        other => ComputeError::Internal(format!("volume service: {other}")),
    }
}

#[async_trait]
impl VolumeApi for CinderVolumes {
    async fn volume_get(&self, token: &str, id: &VolumeId) -> Result<VolumeInfo> {
        match self.client.volume(id, token).await {
            Ok(v) => Ok(VolumeInfo {
                id: v.id,
                status: v.status,
                size: v.size,
                attachments: v
                    .attachments
                    .into_iter()
                    .map(|a| (a.attachment_id, a.server_id))
                    .collect(),
            }),
            Err(ClientError::NotFound(_)) => Err(volume_not_found(id)),
            Err(e) => Err(nova_error(e)),
        }
    }
    async fn attachment_reserve(
        &self,
        token: &str,
        volume: &VolumeId,
        instance: &InstanceId,
    ) -> Result<AttachmentId> {
        match self.client.attachment_create(volume, instance, token).await {
            Ok(a) => Ok(a.id),
            Err(ClientError::NotFound(_)) => Err(volume_not_found(volume)),
            Err(e) => Err(nova_error(e)),
        }
    }
    async fn attachment_connect(
        &self,
        token: &str,
        attachment: &AttachmentId,
        connector: &Connector,
    ) -> Result<Value> {
        let a = self
            .client
            .attachment_update(attachment, connector, token)
            .await
            .map_err(nova_error)?;
        a.connection_info.ok_or_else(|| {
            ComputeError::Internal(format!("attachment {attachment} has no connection info"))
        })
    }
    async fn attachment_complete(&self, token: &str, attachment: &AttachmentId) -> Result<()> {
        self.client
            .attachment_complete(attachment, token)
            .await
            .map_err(nova_error)
    }
    async fn attachment_delete(&self, token: &str, attachment: &AttachmentId) -> Result<()> {
        self.client
            .attachment_delete(attachment, token)
            .await
            .map_err(nova_error)
    }
    async fn attachments_of(
        &self,
        token: &str,
        volume: &VolumeId,
        instance: &InstanceId,
        all_projects: bool,
    ) -> Result<Vec<AttachmentId>> {
        Ok(self
            .client
            .attachments_of(volume, instance, all_projects, token)
            .await
            .map_err(nova_error)?
            .into_iter()
            .map(|a| a.id)
            .collect())
    }
    async fn volume_delete(&self, token: &str, id: &VolumeId) -> Result<()> {
        self.client
            .volume_delete(id, token)
            .await
            .map_err(nova_error)
    }
    async fn volume_create_from(
        &self,
        token: &str,
        source: &NewVolumeSource,
        size: Option<i64>,
        name: &str,
    ) -> Result<VolumeId> {
        let (image_ref, snapshot_id) = match source {
            NewVolumeSource::Image(i) => (Some(i.clone()), None),
            NewVolumeSource::Snapshot(s) => (None, Some(s.clone())),
        };
        let new = stratus_volume_client::NewVolume {
            size,
            name: Some(name.to_owned()),
            image_ref,
            snapshot_id,
            ..Default::default()
        };
        Ok(self
            .client
            .volume_create(&new, token)
            .await
            .map_err(nova_error)?
            .id)
    }
    async fn volumes_named(
        &self,
        token: &str,
        name: &str,
        project: Option<&str>,
    ) -> Result<Vec<VolumeId>> {
        self.client
            .volumes_named(name, project, token)
            .await
            .map_err(nova_error)
    }
}

#[derive(Clone, Debug)]
struct FakeAttachment {
    volume: VolumeId,
    instance: InstanceId,
    connected: bool,
}

#[derive(Default)]
struct FakeState {
    /// Volume id → status.
    volumes: BTreeMap<VolumeId, String>,
    attachments: BTreeMap<AttachmentId, FakeAttachment>,
    /// Volume id → name, for those made with one.
    names: BTreeMap<VolumeId, String>,
    /// Volume id → the token that made it (whose project owns it).
    creators: BTreeMap<VolumeId, String>,
    /// The next reservation is made but its reply lost (a transport error).
    lose_reserve_reply: bool,
}

/// An in-memory volume service with Cinder's status rules, for tests.
#[derive(Default)]
pub struct FakeVolumes(Mutex<FakeState>);

impl FakeVolumes {
    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new `available` volume.
    pub fn create(&self) -> VolumeId {
        let id = VolumeId::new();
        self.state().volumes.insert(id, "available".to_owned());
        id
    }

    /// The volume's status, `None` once deleted.
    pub fn status(&self, id: &VolumeId) -> Option<String> {
        self.state().volumes.get(id).cloned()
    }

    /// How many volumes exist.
    pub fn volume_count(&self) -> usize {
        self.state().volumes.len()
    }

    /// How many attachments exist (reserved or attached).
    pub fn attachment_count(&self) -> usize {
        self.state().attachments.len()
    }

    /// The next reservation is made, but its caller sees the service as
    /// unreachable (the reply lost on the way back).
    pub fn lose_next_reserve_reply(&self) {
        self.state().lose_reserve_reply = true;
    }

    /// The token a volume made through the API was made with: the volume
    /// belongs to that token's project.
    pub fn creator(&self, id: &VolumeId) -> Option<String> {
        self.state().creators.get(id).cloned()
    }
}

#[async_trait]
impl VolumeApi for FakeVolumes {
    async fn volume_get(&self, _token: &str, id: &VolumeId) -> Result<VolumeInfo> {
        let s = self.state();
        let status = s
            .volumes
            .get(id)
            .cloned()
            .ok_or_else(|| volume_not_found(id))?;
        Ok(VolumeInfo {
            id: *id,
            status,
            size: 1,
            attachments: s
                .attachments
                .iter()
                .filter(|(_, a)| a.volume == *id)
                .map(|(k, a)| (*k, Some(a.instance.to_string())))
                .collect(),
        })
    }
    async fn attachment_reserve(
        &self,
        _token: &str,
        volume: &VolumeId,
        instance: &InstanceId,
    ) -> Result<AttachmentId> {
        let mut s = self.state();
        let status = s
            .volumes
            .get_mut(volume)
            .ok_or_else(|| volume_not_found(volume))?;
        if status != "available" {
            return Err(ComputeError::BadRequest(format!(
                "Invalid volume: Volume {volume} status must be available to reserve, but the current status is: {status}."
            )));
        }
        *status = "reserved".to_owned();
        let id = AttachmentId::new();
        s.attachments.insert(
            id,
            FakeAttachment {
                volume: *volume,
                instance: *instance,
                connected: false,
            },
        );
        if std::mem::take(&mut s.lose_reserve_reply) {
            return Err(ComputeError::Unavailable(
                "The volume service is unavailable: reply lost".into(),
            ));
        }
        Ok(id)
    }
    async fn attachment_connect(
        &self,
        _token: &str,
        attachment: &AttachmentId,
        connector: &Connector,
    ) -> Result<Value> {
        let mut s = self.state();
        let a = s.attachments.get_mut(attachment).ok_or_else(|| {
            ComputeError::NotFound(format!("attachment {attachment} could not be found."))
        })?;
        a.connected = true;
        let volume = a.volume;
        if let Some(st) = s.volumes.get_mut(&volume) {
            if st == "reserved" {
                *st = "attaching".to_owned();
            }
        }
        Ok(json!({
            "driver_volume_type": "file",
            "data": {"device_path": format!("/fake/{volume}"), "format": "raw", "host": connector.host},
        }))
    }
    async fn attachment_complete(&self, _token: &str, attachment: &AttachmentId) -> Result<()> {
        let mut s = self.state();
        let a = s.attachments.get(attachment).cloned().ok_or_else(|| {
            ComputeError::NotFound(format!("attachment {attachment} could not be found."))
        })?;
        if !a.connected {
            return Err(ComputeError::BadRequest(
                "The attachment has no connector yet; update it first.".into(),
            ));
        }
        s.volumes.insert(a.volume, "in-use".to_owned());
        Ok(())
    }
    async fn attachment_delete(&self, _token: &str, attachment: &AttachmentId) -> Result<()> {
        let mut s = self.state();
        if let Some(a) = s.attachments.remove(attachment) {
            if let Some(st) = s.volumes.get_mut(&a.volume) {
                *st = "available".to_owned();
            }
        }
        Ok(())
    }
    async fn attachments_of(
        &self,
        _token: &str,
        volume: &VolumeId,
        instance: &InstanceId,
        _all_projects: bool,
    ) -> Result<Vec<AttachmentId>> {
        Ok(self
            .state()
            .attachments
            .iter()
            .filter(|(_, a)| a.volume == *volume && a.instance == *instance)
            .map(|(id, _)| *id)
            .collect())
    }
    async fn volume_delete(&self, _token: &str, id: &VolumeId) -> Result<()> {
        let mut s = self.state();
        if s.attachments.values().any(|a| a.volume == *id) {
            return Err(ComputeError::BadRequest(format!(
                "Invalid volume: Volume {id} is attached."
            )));
        }
        s.volumes.remove(id);
        s.names.remove(id);
        s.creators.remove(id);
        Ok(())
    }
    async fn volume_create_from(
        &self,
        token: &str,
        _source: &NewVolumeSource,
        _size: Option<i64>,
        name: &str,
    ) -> Result<VolumeId> {
        let id = VolumeId::new();
        let mut s = self.state();
        s.volumes.insert(id, "available".to_owned());
        s.names.insert(id, name.to_owned());
        s.creators.insert(id, token.to_owned());
        Ok(id)
    }
    async fn volumes_named(
        &self,
        _token: &str,
        name: &str,
        _project: Option<&str>,
    ) -> Result<Vec<VolumeId>> {
        Ok(self
            .state()
            .names
            .iter()
            .filter(|(_, n)| n.as_str() == name)
            .map(|(id, _)| *id)
            .collect())
    }
}

/// The volume service as the API's sagas reach it: with the user's token
/// while the request runs, with the service user's when a saga resumes
/// after a restart (no user token is ever kept).
#[derive(Clone)]
pub struct Volumes {
    pub api: std::sync::Arc<dyn VolumeApi>,
    pub tokens: std::sync::Arc<dyn super::TokenSource>,
}

impl Volumes {
    pub async fn token(&self, ctx: &stratus_common::RequestContext) -> Result<String> {
        match &ctx.auth_token {
            Some(t) => Ok(t.clone()),
            None => self.tokens.token().await,
        }
    }
}
