//! What `/v2.0/network-ip-availabilities` counts: addresses allocated per
//! subnet (every port's, DHCP ports included, as Neutron counts them).

use std::collections::HashMap;

use sqlx::Row;
use stratus_common::ids::SubnetId;

use super::{parse, Conn};
use crate::error::Result;

/// The number of allocated addresses of every subnet that has any.
pub async fn allocation_counts(conn: &mut Conn) -> Result<HashMap<SubnetId, i64>> {
    let rows =
        sqlx::query("SELECT subnet_id, COUNT(*) AS used FROM ip_allocations GROUP BY subnet_id")
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|r| Ok((parse(r, "subnet_id")?, r.try_get::<i64, _>("used")?)))
        .collect()
}
