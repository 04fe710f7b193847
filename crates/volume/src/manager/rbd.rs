//! The `rbd` backend: each volume an RBD image `volume-<id>` in one Ceph
//! pool, each snapshot an RBD snapshot `snapshot-<id>` of its volume's
//! image (Cinder's names), made with Ceph's `rbd` tool. A hypervisor
//! reaches the image through QEMU's own RBD driver: the connection info is
//! Cinder's `rbd` type (pool/image, monitors, cephx user and libvirt
//! secret), which compute's libvirt driver renders as a network disk.
//!
//! Why the tool and not librbd: the `rbd` CLI is what Ceph ships for this,
//! it needs no C headers at build time (the default build must work on a
//! machine without Ceph), and every call here moves whole images, where a
//! process start is noise. The Rust librbd bindings on crates.io are thin
//! and little kept.
//!
//! Copies are written under `volume-<id>.part` and renamed when complete,
//! so that a crash mid-copy leaves no image that looks like a volume.

use std::path::{Path, PathBuf};

use serde_json::json;
use stratus_bus::async_trait;
use stratus_common::ids::{SnapshotId, VolumeId};
use tokio::process::Command;

use stratus_volume_client::rbd::{keyring_key, RbdConnection};

use super::file::{convert, qemu_format, virtual_size};
use super::Backend;
use crate::config::RbdConfig;
use crate::error::VolumeError;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// `rbd`'s exit status for a missing image or snapshot (ENOENT).
const ENOENT: i32 = 2;
/// For a name that exists already (EEXIST).
const EEXIST: i32 = 17;

/// What the monitors told us at start: where they are, and the key of our
/// user when they would give it.
#[derive(Clone, Debug)]
struct Cluster {
    /// `(host, port)` of each monitor's v1 address, which every librbd
    /// (QEMU's included) speaks.
    monitors: Vec<(String, String)>,
    fsid: String,
    key: Option<String>,
}

pub struct RbdBackend {
    config: RbdConfig,
    /// Where `.part` files of images being converted go.
    scratch: PathBuf,
    cluster: Cluster,
    secret_uuid: String,
}

impl RbdBackend {
    /// Checks that the cluster answers and that the pool exists, and learns
    /// the monitors' addresses and the user's key for connection infos.
    pub async fn new(config: RbdConfig, scratch: PathBuf) -> Result<Self, VolumeError> {
        let b = Self {
            config,
            scratch,
            cluster: Cluster {
                monitors: Vec::new(),
                fsid: String::new(),
                key: None,
            },
            secret_uuid: String::new(),
        };
        let dump = b.ceph(&["mon", "dump", "--format", "json"]).await?;
        let (monitors, fsid) = parse_mon_dump(&dump)?;
        b.rbd(&["ls", &b.config.rbd_pool])
            .await
            .map_err(|e| VolumeError::Internal(format!("pool {}: {e}", b.config.rbd_pool)))?;
        let key = b.user_key().await;
        if key.is_none() {
            tracing::warn!(
                user = %b.config.rbd_user,
                "no key for the rbd user to give compute hosts; they need the libvirt secret rbd_secret_uuid defined already"
            );
        }
        let secret_uuid = if b.config.rbd_secret_uuid.is_empty() {
            derived_secret_uuid(&fsid, &b.config.rbd_user)
        } else {
            b.config.rbd_secret_uuid.clone()
        };
        Ok(Self {
            cluster: Cluster {
                monitors,
                fsid,
                key,
            },
            secret_uuid,
            ..b
        })
    }

    pub fn pool(&self) -> &str {
        &self.config.rbd_pool
    }

    pub fn fsid(&self) -> &str {
        &self.cluster.fsid
    }

    /// `pool/volume-<id>`.
    pub fn volume_spec(&self, id: &VolumeId) -> String {
        format!("{}/volume-{id}", self.config.rbd_pool)
    }

    fn part_spec(&self, id: &VolumeId) -> String {
        format!("{}.part", self.volume_spec(id))
    }

    /// `pool/volume-<vol>@snapshot-<snap>`.
    pub fn snapshot_spec(&self, vol: &VolumeId, snap: &SnapshotId) -> String {
        format!("{}@snapshot-{snap}", self.volume_spec(vol))
    }

    /// The arguments every Ceph tool gets: the cluster's config and user.
    fn common_args(&self) -> Vec<String> {
        let mut a = vec![
            "--id".to_owned(),
            self.config.rbd_user.clone(),
            "--cluster".to_owned(),
            self.config.rbd_cluster_name.clone(),
        ];
        if !self.config.rbd_ceph_conf.is_empty() {
            a.push("--conf".to_owned());
            a.push(self.config.rbd_ceph_conf.clone());
        }
        if !self.config.rbd_keyring_conf.is_empty() {
            a.push("--keyring".to_owned());
            a.push(self.config.rbd_keyring_conf.clone());
        }
        a
    }

    async fn rbd(&self, args: &[&str]) -> Result<String, ToolError> {
        run("rbd", &self.common_args(), args).await
    }

    async fn ceph(&self, args: &[&str]) -> Result<String, VolumeError> {
        run("ceph", &self.common_args(), args)
            .await
            .map_err(VolumeError::from)
    }

    /// The user's secret: from `rbd_keyring_conf` when set, else from the
    /// monitors (which refuse users without `auth` read capability).
    async fn user_key(&self) -> Option<String> {
        let entity = format!("client.{}", self.config.rbd_user);
        if !self.config.rbd_keyring_conf.is_empty() {
            let text = tokio::fs::read_to_string(&self.config.rbd_keyring_conf)
                .await
                .ok()?;
            return keyring_key(&text, &entity);
        }
        let out = self.ceph(&["auth", "get-key", &entity]).await.ok()?;
        Some(out.trim().to_owned()).filter(|k| !k.is_empty())
    }

    /// The size of image `spec` in bytes, or `None` when it does not exist.
    async fn image_size(&self, spec: &str) -> Result<Option<u64>, VolumeError> {
        match self.rbd(&["info", "--format", "json", spec]).await {
            Ok(out) => {
                let v: serde_json::Value = serde_json::from_str(&out)
                    .map_err(|e| VolumeError::Internal(format!("rbd info {spec}: {e}")))?;
                Ok(v["size"].as_u64())
            }
            Err(e) if e.code == Some(ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove(&self, spec: &str) -> Result<(), VolumeError> {
        // Snapshots would keep the image; the manager deletes a volume's
        // snapshots before the volume, so these are leftovers.
        match self.rbd(&["snap", "purge", "--no-progress", spec]).await {
            Ok(_) => {}
            Err(e) if e.code == Some(ENOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        match self.rbd(&["rm", "--no-progress", spec]).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == Some(ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Grows image `spec` to `size` GiB when it is smaller.
    async fn grow(&self, spec: &str, size: i64) -> Result<(), VolumeError> {
        let want = gib(size);
        let have = self
            .image_size(spec)
            .await?
            .ok_or_else(|| VolumeError::Internal(format!("rbd image {spec} is missing")))?;
        if have < want {
            self.rbd(&[
                "resize",
                "--no-progress",
                "--size",
                &(want / MIB).to_string(),
                spec,
            ])
            .await?;
        }
        Ok(())
    }

    /// Renames the finished `.part` copy to the volume's name.
    async fn finish(&self, id: &VolumeId, size: i64) -> Result<(), VolumeError> {
        let part = self.part_spec(id);
        self.grow(&part, size).await?;
        // A redelivered create finds an old copy under the final name.
        self.remove(&self.volume_spec(id)).await?;
        self.rbd(&["rename", &part, &self.volume_spec(id)]).await?;
        Ok(())
    }

    /// Runs `copy` (which writes the `.part` image) and [`Self::finish`];
    /// whatever fails leaves no `.part` behind.
    async fn write_part<F>(&self, id: &VolumeId, size: i64, copy: F) -> Result<(), VolumeError>
    where
        F: std::future::Future<Output = Result<(), VolumeError>>,
    {
        self.remove(&self.part_spec(id)).await?;
        let res = match copy.await {
            Ok(()) => self.finish(id, size).await,
            Err(e) => Err(e),
        };
        if res.is_err() {
            let _ = self.remove(&self.part_spec(id)).await;
        }
        res
    }

    /// Copies image or snapshot `src` into the `.part` of `id`, refusing
    /// when it is larger than `size` GiB.
    async fn copy_part(&self, src: &str, id: &VolumeId, size: i64) -> Result<(), VolumeError> {
        let have = self
            .image_size(src)
            .await?
            .ok_or_else(|| VolumeError::Internal(format!("rbd source {src} is missing")))?;
        if have > gib(size) {
            return Err(VolumeError::bad(format!(
                "The source is {}GB and doesn't fit in a volume of size {size}GB.",
                have.div_ceil(GIB)
            )));
        }
        self.rbd(&["cp", "--no-progress", src, &self.part_spec(id)])
            .await?;
        Ok(())
    }

    /// Imports the image file at `image` (in qemu-img's `fmt`) into the
    /// `.part` of `id`; other formats than raw are converted to a raw
    /// scratch file first, as Cinder's RBD driver does.
    async fn import_part(
        &self,
        image: &Path,
        fmt: &str,
        id: &VolumeId,
        size: i64,
    ) -> Result<(), VolumeError> {
        let have = virtual_size(image, fmt).await?;
        if have > gib(size) {
            return Err(VolumeError::bad(format!(
                "Image virtual size is {}GB and doesn't fit in a volume of size {size}GB.",
                have.div_ceil(GIB)
            )));
        }
        let converted;
        let raw = if fmt == "raw" {
            image
        } else {
            tokio::fs::create_dir_all(&self.scratch)
                .await
                .map_err(|e| VolumeError::Internal(format!("{}: {e}", self.scratch.display())))?;
            converted = tempfile::Builder::new()
                .prefix("raw-")
                .tempfile_in(&self.scratch)
                .map_err(|e| VolumeError::Internal(format!("scratch file: {e}")))?;
            convert(image, fmt, converted.path(), "raw").await?;
            converted.path()
        };
        self.rbd(&[
            "import",
            "--no-progress",
            "--image-format",
            "2",
            &raw.to_string_lossy(),
            &self.part_spec(id),
        ])
        .await?;
        Ok(())
    }
}

/// A failed run of a Ceph tool: its exit status (errno) and stderr.
#[derive(Debug)]
pub struct ToolError {
    code: Option<i32>,
    message: String,
}

impl From<ToolError> for VolumeError {
    fn from(e: ToolError) -> Self {
        VolumeError::Internal(e.message)
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

async fn run(tool: &str, common: &[String], args: &[&str]) -> Result<String, ToolError> {
    let out = Command::new(tool)
        .args(common)
        .args(args)
        .output()
        .await
        .map_err(|e| ToolError {
            code: None,
            message: format!("running {tool} (install ceph-common): {e}"),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ToolError {
            code: out.status.code(),
            message: format!(
                "{tool} {}: {}",
                args.iter()
                    .take_while(|a| !a.starts_with('-'))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

fn gib(size: i64) -> u64 {
    u64::try_from(size).unwrap_or(0) * GIB
}

/// The monitors' v1 addresses and the fsid from `ceph mon dump -f json`.
fn parse_mon_dump(out: &str) -> Result<(Vec<(String, String)>, String), VolumeError> {
    let v: serde_json::Value = serde_json::from_str(out)
        .map_err(|e| VolumeError::Internal(format!("ceph mon dump: {e}")))?;
    let mut monitors = Vec::new();
    for m in v["mons"].as_array().into_iter().flatten() {
        let v1 = m["public_addrs"]["addrvec"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "v1")
            .and_then(|a| a["addr"].as_str());
        // "127.0.0.1:6789"; an IPv6 address comes as "[::1]:6789".
        if let Some((host, port)) = v1.and_then(|a| a.rsplit_once(':')) {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            monitors.push((host.to_owned(), port.to_owned()));
        }
    }
    if monitors.is_empty() {
        return Err(VolumeError::Internal(
            "ceph mon dump lists no monitor with a v1 address".to_owned(),
        ));
    }
    let fsid = v["fsid"].as_str().unwrap_or_default().to_owned();
    Ok((monitors, fsid))
}

/// A stable libvirt secret UUID for this cluster and user, so that every
/// compute host defines the same one.
fn derived_secret_uuid(fsid: &str, user: &str) -> String {
    let ns = uuid::Uuid::parse_str(fsid).unwrap_or(uuid::Uuid::NAMESPACE_OID);
    uuid::Uuid::new_v5(&ns, format!("client.{user}").as_bytes()).to_string()
}

#[async_trait]
impl Backend for RbdBackend {
    fn name(&self) -> &'static str {
        "rbd"
    }

    async fn create(&self, id: &VolumeId, size: i64) -> Result<(), VolumeError> {
        let part = self.part_spec(id);
        self.write_part(id, size, async {
            self.rbd(&[
                "create",
                "--image-format",
                "2",
                "--size",
                &(gib(size) / MIB).to_string(),
                &part,
            ])
            .await?;
            Ok(())
        })
        .await
    }

    async fn create_from_image(
        &self,
        id: &VolumeId,
        size: i64,
        image: &Path,
        format: &str,
    ) -> Result<(), VolumeError> {
        let fmt = qemu_format(format)?;
        self.write_part(id, size, self.import_part(image, fmt, id, size))
            .await
    }

    async fn clone_volume(
        &self,
        src: &VolumeId,
        id: &VolumeId,
        size: i64,
    ) -> Result<(), VolumeError> {
        let src = self.volume_spec(src);
        self.write_part(id, size, self.copy_part(&src, id, size))
            .await
    }

    async fn create_snapshot(&self, vol: &VolumeId, snap: &SnapshotId) -> Result<(), VolumeError> {
        match self
            .rbd(&[
                "snap",
                "create",
                "--no-progress",
                &self.snapshot_spec(vol, snap),
            ])
            .await
        {
            Ok(_) => Ok(()),
            // A redelivered create: the snapshot was taken.
            Err(e) if e.code == Some(EEXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn create_from_snapshot(
        &self,
        vol: &VolumeId,
        snap: &SnapshotId,
        id: &VolumeId,
        size: i64,
    ) -> Result<(), VolumeError> {
        let src = self.snapshot_spec(vol, snap);
        self.write_part(id, size, self.copy_part(&src, id, size))
            .await
    }

    async fn delete_snapshot(&self, vol: &VolumeId, snap: &SnapshotId) -> Result<(), VolumeError> {
        match self
            .rbd(&[
                "snap",
                "rm",
                "--no-progress",
                &self.snapshot_spec(vol, snap),
            ])
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == Some(ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn extend(&self, id: &VolumeId, size: i64) -> Result<(), VolumeError> {
        self.grow(&self.volume_spec(id), size).await
    }

    async fn delete(&self, id: &VolumeId) -> Result<(), VolumeError> {
        self.remove(&self.part_spec(id)).await?;
        self.remove(&self.volume_spec(id)).await
    }

    async fn export(&self, id: &VolumeId, dest: &Path, format: &str) -> Result<(), VolumeError> {
        let spec = self.volume_spec(id);
        let dest_s = dest.to_string_lossy();
        if format == "raw" {
            self.rbd(&["export", "--no-progress", &spec, &dest_s])
                .await?;
            return Ok(());
        }
        // Other formats from a raw export beside `dest`.
        let mut raw = dest.as_os_str().to_owned();
        raw.push(".raw");
        let raw = PathBuf::from(raw);
        let raw_s = raw.to_string_lossy();
        let res = async {
            self.rbd(&["export", "--no-progress", &spec, &raw_s])
                .await?;
            convert(&raw, "raw", dest, format).await
        }
        .await;
        let _ = tokio::fs::remove_file(&raw).await;
        res
    }

    async fn connection_info(
        &self,
        id: &VolumeId,
        _connector: &serde_json::Value,
    ) -> Result<serde_json::Value, VolumeError> {
        let (hosts, ports): (Vec<_>, Vec<_>) = self.cluster.monitors.iter().cloned().unzip();
        let data = RbdConnection {
            name: self.volume_spec(id),
            hosts,
            ports,
            cluster_name: Some(self.config.rbd_cluster_name.clone()),
            auth_enabled: true,
            auth_username: Some(self.config.rbd_user.clone()),
            secret_type: Some("ceph".to_owned()),
            secret_uuid: Some(self.secret_uuid.clone()),
            // Cinder sends the keyring when it has one (`rbd_keyring_conf`),
            // so that a compute host needs no secret set up beforehand.
            keyring: self
                .cluster
                .key
                .as_ref()
                .map(|key| format!("[client.{}]\n\tkey = {key}\n", self.config.rbd_user)),
            discard: true,
        };
        Ok(json!({"driver_volume_type": "rbd", "data": data}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitors_v1_addresses_come_from_the_mon_dump() {
        let dump = r#"{"epoch":1,"fsid":"5d2f6a3c-1111-2222-3333-444455556666","mons":[
            {"rank":0,"name":"a","public_addrs":{"addrvec":[
                {"type":"v2","addr":"127.0.0.1:3300","nonce":0},
                {"type":"v1","addr":"127.0.0.1:6789","nonce":0}]}},
            {"rank":1,"name":"b","public_addrs":{"addrvec":[
                {"type":"v1","addr":"[::1]:6790","nonce":0}]}}]}"#;
        let (mons, fsid) = parse_mon_dump(dump).expect("parsed");
        assert_eq!(
            mons,
            vec![
                ("127.0.0.1".to_owned(), "6789".to_owned()),
                ("::1".to_owned(), "6790".to_owned())
            ]
        );
        assert_eq!(fsid, "5d2f6a3c-1111-2222-3333-444455556666");
        assert!(parse_mon_dump(r#"{"mons":[]}"#).is_err());
        assert!(parse_mon_dump("not json").is_err());
    }

    #[test]
    fn the_derived_secret_is_stable_per_cluster_and_user() {
        let fsid = "5d2f6a3c-1111-2222-3333-444455556666";
        let a = derived_secret_uuid(fsid, "admin");
        assert_eq!(a, derived_secret_uuid(fsid, "admin"));
        assert_ne!(a, derived_secret_uuid(fsid, "cinder"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
