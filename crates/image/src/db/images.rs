//! Images, their properties, tags and locations.

use std::collections::BTreeMap;

use stratus_common::ids::ImageId;
use stratus_common::time;
use stratus_db::sqlx::any::AnyRow;
use stratus_db::sqlx::{self, Connection, Row};
use stratus_db::{b2i, i2b};

use super::Conn;
use crate::domain::{Image, ImageStatus, Location};
use crate::error::ImageError;

pub(crate) const IMAGE_COLUMNS: &str = "id, name, status, visibility, protected, os_hidden, \
    disk_format, container_format, min_disk, min_ram, size, virtual_size, checksum, \
    os_hash_algo, os_hash_value, owner, created_at, updated_at, generation";

fn corrupt(what: &str, v: &str) -> ImageError {
    ImageError::Internal(format!("stored {what} {v:?} is invalid"))
}

/// The image columns of a row (properties, tags and locations empty).
pub(crate) fn image_from_row(r: &AnyRow) -> Result<Image, ImageError> {
    let id: String = r.try_get("id")?;
    let status: String = r.try_get("status")?;
    let visibility: String = r.try_get("visibility")?;
    let created: String = r.try_get("created_at")?;
    let updated: String = r.try_get("updated_at")?;
    Ok(Image {
        id: id.parse().map_err(|_| corrupt("id", &id))?,
        name: r.try_get("name")?,
        status: status.parse().map_err(|_| corrupt("status", &status))?,
        visibility: visibility
            .parse()
            .map_err(|_| corrupt("visibility", &visibility))?,
        protected: i2b(r.try_get("protected")?),
        os_hidden: i2b(r.try_get("os_hidden")?),
        disk_format: r.try_get("disk_format")?,
        container_format: r.try_get("container_format")?,
        min_disk: r.try_get("min_disk")?,
        min_ram: r.try_get("min_ram")?,
        size: r.try_get("size")?,
        virtual_size: r.try_get("virtual_size")?,
        checksum: r.try_get("checksum")?,
        os_hash_algo: r.try_get("os_hash_algo")?,
        os_hash_value: r.try_get("os_hash_value")?,
        owner: r.try_get("owner")?,
        created_at: time::from_db(&created).ok_or_else(|| corrupt("time", &created))?,
        updated_at: time::from_db(&updated).ok_or_else(|| corrupt("time", &updated))?,
        generation: r.try_get("generation")?,
        properties: BTreeMap::new(),
        tags: Vec::new(),
        locations: Vec::new(),
    })
}

async fn write_extras(conn: &mut Conn, image: &Image) -> Result<(), ImageError> {
    let id = image.id.to_string();
    sqlx::query("DELETE FROM image_properties WHERE image_id = $1")
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    for (k, v) in &image.properties {
        sqlx::query("INSERT INTO image_properties (image_id, name, value) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(k)
            .bind(v)
            .execute(&mut *conn)
            .await?;
    }
    for (i, t) in image.tags.iter().enumerate() {
        sqlx::query("INSERT INTO image_tags (image_id, value, position) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(t)
            .bind(i as i64)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Inserts a new image with its properties and tags; an existing id (even
/// of a deleted image, as in Glance) is a conflict.
pub async fn image_insert(conn: &mut Conn, image: &Image) -> Result<(), ImageError> {
    let mut tx = conn.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO images (id, name, status, visibility, protected, os_hidden, disk_format, \
         container_format, min_disk, min_ram, size, virtual_size, checksum, os_hash_algo, \
         os_hash_value, owner, created_at, updated_at, generation) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
         ON CONFLICT DO NOTHING",
    )
    .bind(image.id.to_string())
    .bind(image.name.as_deref())
    .bind(image.status.as_str())
    .bind(image.visibility.as_str())
    .bind(b2i(image.protected))
    .bind(b2i(image.os_hidden))
    .bind(image.disk_format.as_deref())
    .bind(image.container_format.as_deref())
    .bind(image.min_disk)
    .bind(image.min_ram)
    .bind(image.size)
    .bind(image.virtual_size)
    .bind(image.checksum.as_deref())
    .bind(image.os_hash_algo.as_deref())
    .bind(image.os_hash_value.as_deref())
    .bind(image.owner.as_deref())
    .bind(time::to_db(image.created_at))
    .bind(time::to_db(image.updated_at))
    .bind(image.generation)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(ImageError::Conflict(format!(
            "Image with identifier {} already exists!",
            image.id
        )));
    }
    write_extras(&mut tx, image).await?;
    tx.commit().await?;
    Ok(())
}

/// A live (not deleted) image with everything attached, or `None`.
pub async fn image_get(conn: &mut Conn, id: &ImageId) -> Result<Option<Image>, ImageError> {
    let row = sqlx::query(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE id = $1 AND deleted = 0"
    ))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut images = vec![image_from_row(&row)?];
    images_load_extras(conn, &mut images).await?;
    Ok(images.pop())
}

/// Fills in properties, tags and active locations of `images`.
pub async fn images_load_extras(conn: &mut Conn, images: &mut [Image]) -> Result<(), ImageError> {
    if images.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = images.iter().map(|i| i.id.to_string()).collect();
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let inlist = placeholders.join(", ");
    let mut index = BTreeMap::new();
    for (i, img) in images.iter().enumerate() {
        index.insert(img.id.to_string(), i);
    }

    let sql =
        format!("SELECT image_id, name, value FROM image_properties WHERE image_id IN ({inlist})");
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(id);
    }
    for r in q.fetch_all(&mut *conn).await? {
        let id: String = r.try_get("image_id")?;
        if let Some(&i) = index.get(&id) {
            images[i]
                .properties
                .insert(r.try_get("name")?, r.try_get("value")?);
        }
    }

    let sql = format!(
        "SELECT image_id, value FROM image_tags WHERE image_id IN ({inlist}) ORDER BY image_id, position"
    );
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(id);
    }
    for r in q.fetch_all(&mut *conn).await? {
        let id: String = r.try_get("image_id")?;
        if let Some(&i) = index.get(&id) {
            images[i].tags.push(r.try_get("value")?);
        }
    }

    let sql = format!(
        "SELECT image_id, url, metadata FROM image_locations WHERE image_id IN ({inlist}) \
         AND status = 'active' ORDER BY image_id, created_at"
    );
    let mut q = sqlx::query(&sql);
    for id in &ids {
        q = q.bind(id);
    }
    for r in q.fetch_all(&mut *conn).await? {
        let id: String = r.try_get("image_id")?;
        if let Some(&i) = index.get(&id) {
            images[i].locations.push(Location {
                url: r.try_get("url")?,
                metadata: r.try_get("metadata")?,
            });
        }
    }
    Ok(())
}

/// Saves the changeable attributes, properties and tags of `image` if nobody
/// saved it since it was read (`image.generation`); false when someone did.
pub async fn image_save(conn: &mut Conn, image: &Image) -> Result<bool, ImageError> {
    let mut tx = conn.begin().await?;
    let r = sqlx::query(
        "UPDATE images SET name = $1, visibility = $2, protected = $3, os_hidden = $4, \
         disk_format = $5, container_format = $6, min_disk = $7, min_ram = $8, owner = $9, \
         updated_at = $10, generation = generation + 1 \
         WHERE id = $11 AND generation = $12 AND deleted = 0",
    )
    .bind(image.name.as_deref())
    .bind(image.visibility.as_str())
    .bind(b2i(image.protected))
    .bind(b2i(image.os_hidden))
    .bind(image.disk_format.as_deref())
    .bind(image.container_format.as_deref())
    .bind(image.min_disk)
    .bind(image.min_ram)
    .bind(image.owner.as_deref())
    .bind(time::to_db(image.updated_at))
    .bind(image.id.to_string())
    .bind(image.generation)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    write_extras(&mut tx, image).await?;
    tx.commit().await?;
    Ok(true)
}

/// Compare-and-swap of the status: true when the image was in `from`.
pub async fn image_set_status(
    conn: &mut Conn,
    id: &ImageId,
    from: ImageStatus,
    to: ImageStatus,
) -> Result<bool, ImageError> {
    let r = sqlx::query(
        "UPDATE images SET status = $1, updated_at = $2, generation = generation + 1 \
         WHERE id = $3 AND status = $4 AND deleted = 0",
    )
    .bind(to.as_str())
    .bind(time::to_db(time::now()))
    .bind(id.to_string())
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// What an upload measured.
#[derive(Clone, Debug)]
pub struct UploadResult {
    pub size: i64,
    /// From format inspection; `None` when the format gave none.
    pub virtual_size: Option<i64>,
    pub checksum: String,
    pub os_hash_value: String,
    pub location: Location,
}

/// The properties Glance's import flow keeps on the image
/// (glance/async_/flows/api_image_import.py): the task holding the import
/// lock, the stores being written, and the stores that failed.
pub const IMPORT_TASK: &str = "os_glance_import_task";
pub const IMPORTING_TO_STORES: &str = "os_glance_importing_to_stores";
pub const FAILED_IMPORT: &str = "os_glance_failed_import";

/// Sets (`Some`) or removes (`None`) one property, in the caller's transaction.
async fn property_put(
    conn: &mut Conn,
    id: &ImageId,
    name: &str,
    value: Option<&str>,
) -> Result<(), ImageError> {
    sqlx::query("DELETE FROM image_properties WHERE image_id = $1 AND name = $2")
        .bind(id.to_string())
        .bind(name)
        .execute(&mut *conn)
        .await?;
    if let Some(v) = value {
        sqlx::query("INSERT INTO image_properties (image_id, name, value) VALUES ($1, $2, $3)")
            .bind(id.to_string())
            .bind(name)
            .bind(v)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Makes an image in `from` (saving, or importing) `active` with its data,
/// in the caller's transaction; false when the image is no longer in `from`.
async fn finish_data(
    conn: &mut Conn,
    id: &ImageId,
    from: ImageStatus,
    up: &UploadResult,
) -> Result<bool, ImageError> {
    let now = time::to_db(time::now());
    let r = sqlx::query(
        "UPDATE images SET status = 'active', size = $1, virtual_size = $2, checksum = $3, \
         os_hash_algo = 'sha512', os_hash_value = $4, updated_at = $5, \
         generation = generation + 1 \
         WHERE id = $6 AND status = $7 AND deleted = 0",
    )
    .bind(up.size)
    .bind(up.virtual_size)
    .bind(&up.checksum)
    .bind(&up.os_hash_value)
    .bind(&now)
    .bind(id.to_string())
    .bind(from.as_str())
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO image_locations (id, image_id, url, metadata, status, created_at) \
         VALUES ($1, $2, $3, $4, 'active', $5)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(id.to_string())
    .bind(&up.location.url)
    .bind(&up.location.metadata)
    .bind(&now)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Makes a `saving` image `active` with its data; false when the image is no
/// longer saving (deleted meanwhile), in which case nothing changed.
pub async fn image_finish_upload(
    conn: &mut Conn,
    id: &ImageId,
    up: &UploadResult,
) -> Result<bool, ImageError> {
    let mut tx = conn.begin().await?;
    if !finish_data(&mut tx, id, ImageStatus::Saving, up).await? {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Records the size of the data staged for an `uploading` image; false when
/// the image is no longer uploading (deleted meanwhile).
pub async fn image_set_staged_size(
    conn: &mut Conn,
    id: &ImageId,
    size: i64,
) -> Result<bool, ImageError> {
    let r = sqlx::query(
        "UPDATE images SET size = $1, updated_at = $2, generation = generation + 1 \
         WHERE id = $3 AND status = 'uploading' AND deleted = 0",
    )
    .bind(size)
    .bind(time::to_db(time::now()))
    .bind(id.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Takes the import lock: uploading → importing, with Glance's import
/// properties (`task` holds the lock, `store` is being written, no failure
/// recorded for it). False when the image was not uploading.
pub async fn image_begin_import(
    conn: &mut Conn,
    id: &ImageId,
    task: &str,
    store: &str,
) -> Result<bool, ImageError> {
    let mut tx = conn.begin().await?;
    let r = sqlx::query(
        "UPDATE images SET status = 'importing', updated_at = $1, generation = generation + 1 \
         WHERE id = $2 AND status = 'uploading' AND deleted = 0",
    )
    .bind(time::to_db(time::now()))
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    property_put(&mut tx, id, IMPORT_TASK, Some(task)).await?;
    property_put(&mut tx, id, IMPORTING_TO_STORES, Some(store)).await?;
    property_put(&mut tx, id, FAILED_IMPORT, Some("")).await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends an import that stored the data: importing → active, the lock
/// dropped and no store left importing. False when the image is no longer
/// importing (deleted meanwhile).
pub async fn image_finish_import(
    conn: &mut Conn,
    id: &ImageId,
    up: &UploadResult,
) -> Result<bool, ImageError> {
    let mut tx = conn.begin().await?;
    if !finish_data(&mut tx, id, ImageStatus::Importing, up).await? {
        return Ok(false);
    }
    property_put(&mut tx, id, IMPORT_TASK, None).await?;
    property_put(&mut tx, id, IMPORTING_TO_STORES, Some("")).await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends a failed import as Glance does for glance-direct: importing →
/// queued, the lock dropped, `store` recorded as failed. With `stale_before`,
/// only if the image was not marked alive since then. False when the image
/// was not (or no longer) importing.
pub async fn image_fail_import(
    conn: &mut Conn,
    id: &ImageId,
    store: &str,
    stale_before: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<bool, ImageError> {
    let mut tx = conn.begin().await?;
    let now = time::to_db(time::now());
    let base = "UPDATE images SET status = 'queued', updated_at = $1, \
                generation = generation + 1 \
                WHERE id = $2 AND status = 'importing' AND deleted = 0";
    let r = match stale_before {
        None => {
            sqlx::query(base)
                .bind(&now)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?
        }
        Some(cutoff) => {
            sqlx::query(&format!("{base} AND updated_at < $3"))
                .bind(&now)
                .bind(id.to_string())
                .bind(time::to_db(cutoff))
                .execute(&mut *tx)
                .await?
        }
    };
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    property_put(&mut tx, id, IMPORT_TASK, None).await?;
    property_put(&mut tx, id, IMPORTING_TO_STORES, Some("")).await?;
    property_put(&mut tx, id, FAILED_IMPORT, Some(store)).await?;
    tx.commit().await?;
    Ok(true)
}

/// Soft-deletes an image (Glance keeps the row, so the id cannot be reused)
/// and marks its locations deleted; returns the locations that held data.
pub async fn image_mark_deleted(
    conn: &mut Conn,
    id: &ImageId,
) -> Result<Option<Vec<Location>>, ImageError> {
    let now = time::to_db(time::now());
    let mut tx = conn.begin().await?;
    let r = sqlx::query(
        "UPDATE images SET status = 'deleted', deleted = 1, deleted_at = $1, updated_at = $1, \
         generation = generation + 1 WHERE id = $2 AND deleted = 0 AND protected = 0",
    )
    .bind(&now)
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT url, metadata FROM image_locations WHERE image_id = $1 AND status = 'active'",
    )
    .bind(id.to_string())
    .fetch_all(&mut *tx)
    .await?;
    let mut locations = Vec::new();
    for r in rows {
        locations.push(Location {
            url: r.try_get("url")?,
            metadata: r.try_get("metadata")?,
        });
    }
    sqlx::query("UPDATE image_locations SET status = 'deleted' WHERE image_id = $1")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(locations))
}

/// Marks a running upload, stage or import (an image in `status`) as alive
/// (see `data::reset_stale_uploads`).
pub async fn image_touch(
    conn: &mut Conn,
    id: &ImageId,
    status: ImageStatus,
) -> Result<(), ImageError> {
    sqlx::query("UPDATE images SET updated_at = $1 WHERE id = $2 AND status = $3 AND deleted = 0")
        .bind(time::to_db(time::now()))
        .bind(id.to_string())
        .bind(status.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Images in `status` not marked alive since `cutoff`.
pub async fn images_stale(
    conn: &mut Conn,
    status: ImageStatus,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<ImageId>, ImageError> {
    let rows =
        sqlx::query("SELECT id FROM images WHERE status = $1 AND deleted = 0 AND updated_at < $2")
            .bind(status.as_str())
            .bind(time::to_db(cutoff))
            .fetch_all(&mut *conn)
            .await?;
    let mut ids = Vec::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        ids.push(id.parse().map_err(|_| corrupt("id", &id))?);
    }
    Ok(ids)
}

/// Compare-and-swap `status` → queued for an image still stale at `cutoff`.
pub async fn image_reset_stale(
    conn: &mut Conn,
    id: &ImageId,
    status: ImageStatus,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<bool, ImageError> {
    let r = sqlx::query(
        "UPDATE images SET status = 'queued', updated_at = $1, generation = generation + 1 \
         WHERE id = $2 AND status = $3 AND deleted = 0 AND updated_at < $4",
    )
    .bind(time::to_db(time::now()))
    .bind(id.to_string())
    .bind(status.as_str())
    .bind(time::to_db(cutoff))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
