//! `os-volume_upload_image`: a new image in the image service holding the
//! volume's data (`openstack image create --volume V NAME`). As Cinder
//! does: the image record is made here with the caller's token (so it is
//! the caller's project's), the volume goes `uploading`, and the manager
//! copies the data into the image and returns the volume to its status.

use serde_json::{json, Map, Value};
use stratus_common::ids::ImageId;
use stratus_common::{time, RequestContext};

use super::{cast, AppState, Microversion};
use crate::db;
use crate::domain::list::parse_bool;
use crate::domain::{Volume, VolumeStatus};
use crate::error::VolumeError;
use crate::manager::{self, UploadImageArgs};

/// The image formats a volume can be written in (qemu-img's names are
/// derived from these by the backends).
const DISK_FORMATS: &[&str] = &["raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx"];
const CONTAINER_FORMATS: &[&str] = &["bare", "ovf", "ova", "docker"];

/// What the request asks for, checked.
#[derive(Debug, PartialEq)]
pub struct UploadRequest {
    pub image_name: String,
    pub force: bool,
    pub disk_format: String,
    pub container_format: String,
    pub visibility: String,
    pub protected: bool,
}

fn flag(arg: &Map<String, Value>, key: &str) -> Result<bool, VolumeError> {
    match arg.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => parse_bool(s),
        Some(other) => Err(VolumeError::bad(format!(
            "Invalid input received: '{key}' must be a boolean, not {other}."
        ))),
    }
}

fn text<'a>(
    arg: &'a Map<String, Value>,
    key: &str,
    default: &'a str,
) -> Result<&'a str, VolumeError> {
    match arg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(VolumeError::bad(format!(
            "Invalid input received: '{key}' must be a string, not {other}."
        ))),
    }
}

/// Parses the action's body; `visibility` and `protected` came with 3.1.
pub fn parse(
    arg: &Map<String, Value>,
    version: Microversion,
) -> Result<UploadRequest, VolumeError> {
    let image_name = match arg.get("image_name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(VolumeError::bad("No image_name was specified in request.")),
    };
    if image_name.chars().count() > 255 {
        return Err(VolumeError::bad(
            "Invalid input received: image_name has more than 255 characters.",
        ));
    }
    let disk_format = text(arg, "disk_format", "raw")?.to_lowercase();
    if !DISK_FORMATS.contains(&disk_format.as_str()) {
        return Err(VolumeError::bad(format!(
            "Invalid disk-format '{disk_format}' is specified. Allowed disk-formats are {}.",
            DISK_FORMATS.join(", ")
        )));
    }
    let container_format = text(arg, "container_format", "bare")?.to_lowercase();
    if !CONTAINER_FORMATS.contains(&container_format.as_str()) {
        return Err(VolumeError::bad(format!(
            "Invalid container-format '{container_format}' is specified. Allowed container-formats are {}.",
            CONTAINER_FORMATS.join(", ")
        )));
    }
    let (visibility, protected) = if version.at_least(1) {
        let v = text(arg, "visibility", "private")?.to_owned();
        if !["public", "private", "shared", "community"].contains(&v.as_str()) {
            return Err(VolumeError::bad(format!(
                "Invalid input received: visibility {v} is not one of public, private, shared, community."
            )));
        }
        (v, flag(arg, "protected")?)
    } else {
        ("private".to_owned(), false)
    };
    Ok(UploadRequest {
        image_name,
        force: flag(arg, "force")?,
        disk_format,
        container_format,
        visibility,
        protected,
    })
}

pub async fn upload_image(
    s: &AppState,
    ctx: &RequestContext,
    version: Microversion,
    vol: &Volume,
    arg: &Map<String, Value>,
) -> Result<Value, VolumeError> {
    let req = parse(arg, version)?;
    // Cinder's default (`enable_force_upload = False`): only an available
    // volume, whatever `force` says.
    if vol.status != VolumeStatus::Available {
        let why = if req.force && vol.status == VolumeStatus::InUse {
            "Unable to upload an in-use volume: force upload is not enabled.".to_owned()
        } else {
            format!(
                "Invalid volume: Volume {} status must be available, but current status is: {}.",
                vol.id, vol.status
            )
        };
        return Err(VolumeError::bad(why));
    }
    let Some(images) = &s.images else {
        return Err(VolumeError::Unavailable(
            "There is no image service to upload to.".to_owned(),
        ));
    };
    let token = ctx.auth_token.clone().unwrap_or_default();
    let mut body = json!({
        "name": req.image_name,
        "disk_format": req.disk_format,
        "container_format": req.container_format,
        "visibility": req.visibility,
        "protected": req.protected,
        // Cinder keeps the volume's size as the smallest disk to boot it.
        "min_disk": vol.size,
    });
    if vol.bootable {
        body["volume_bootable"] = json!("True");
    }
    let image = images.create(&body, &token).await.map_err(|e| match e {
        stratus_image_client::ClientError::Api { status, message } if status < 500 => {
            VolumeError::bad(format!("The image service refused the image: {message}"))
        }
        other => VolumeError::Unavailable(format!("The image service cannot be reached: {other}")),
    })?;
    let undo_image = || async {
        if let Err(e) = images.delete(&image.id, &token).await {
            tracing::warn!(image = %image.id, error = %e, "removing the image of a failed upload");
        }
    };
    let moved = db::volume_set_status(
        &mut *s.db.conn().await?,
        &vol.id,
        &[VolumeStatus::Available],
        VolumeStatus::Uploading,
    )
    .await;
    match moved {
        Ok(true) => {}
        Ok(false) => {
            undo_image().await;
            return Err(VolumeError::bad(format!(
                "Invalid volume: Volume {} status must be available.",
                vol.id
            )));
        }
        Err(e) => {
            undo_image().await;
            return Err(e);
        }
    }
    let args = UploadImageArgs {
        volume_id: vol.id,
        image_id: image.id,
        disk_format: req.disk_format.clone(),
    };
    if let Err(e) = cast(s, ctx, &vol.backend, manager::UPLOAD_IMAGE, &args).await {
        let _ = db::volume_set_status(
            &mut *s.db.conn().await?,
            &vol.id,
            &[VolumeStatus::Uploading],
            VolumeStatus::Available,
        )
        .await;
        undo_image().await;
        return Err(e);
    }
    Ok(response(vol, &image.id, &req))
}

fn response(vol: &Volume, image: &ImageId, req: &UploadRequest) -> Value {
    json!({"os-volume_upload_image": {
        "id": vol.id,
        "updated_at": super::view::ts(time::now()),
        "status": "uploading",
        "display_description": vol.description,
        "size": vol.size,
        "volume_type": Value::Null,
        "image_id": image,
        "container_format": req.container_format,
        "disk_format": req.disk_format,
        "image_name": req.image_name,
        "protected": req.protected,
        "visibility": req.visibility,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn defaults_and_checks() {
        let v = Microversion(0);
        let r = parse(&m(json!({"image_name": "img"})), v).expect("ok");
        assert_eq!(r.disk_format, "raw");
        assert_eq!(r.container_format, "bare");
        assert_eq!(r.visibility, "private");
        assert!(!r.force && !r.protected);
        // visibility and protected only count from 3.1.
        let r = parse(
            &m(json!({"image_name": "img", "visibility": "public", "protected": true})),
            v,
        )
        .expect("ok");
        assert_eq!(r.visibility, "private");
        let v1 = Microversion(1);
        let r = parse(
            &m(
                json!({"image_name": "img", "visibility": "public", "protected": "true",
            "disk_format": "QCOW2", "force": "True"}),
            ),
            v1,
        )
        .expect("ok");
        assert_eq!(
            (
                r.visibility.as_str(),
                r.protected,
                r.disk_format.as_str(),
                r.force
            ),
            ("public", true, "qcow2", true)
        );
        for bad in [
            json!({}),
            json!({"image_name": ""}),
            json!({"image_name": 3}),
            json!({"image_name": "i", "disk_format": "iso"}),
            json!({"image_name": "i", "container_format": "zip"}),
            json!({"image_name": "i", "force": "maybe"}),
            json!({"image_name": "x".repeat(256)}),
        ] {
            assert!(parse(&m(bad.clone()), v1).is_err(), "{bad}");
        }
        assert!(parse(&m(json!({"image_name": "i", "visibility": "everyone"})), v1).is_err());
    }
}
