//! Claiming addresses in the database. A port and its addresses are written
//! in one transaction; an address is claimed by inserting its
//! `ip_allocations` row, whose primary key `(subnet_id, ip_address)` makes
//! double allocation impossible whatever the number of API processes. When
//! two requests pick the same free address, the loser's insert fails, its
//! transaction is rolled back and the whole port is tried again with a fresh
//! view of what is taken. A requested address that is taken is a 409, not a
//! retry.
//!
//! The first attempt takes the lowest free address (predictable addresses
//! when nobody races). A retry means concurrent writers are picking from the
//! same view, and would all pick the same lowest address again, so retries
//! pick at random among the first [`SPREAD_WINDOW`] free addresses, as
//! Neutron's IPAM does (its window is 1000), which makes collisions rare.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use stratus_common::ids::SubnetId;
use stratus_db::Db;

use rand::Rng;

use super::{check_in_subnet, next_free, nth_free};
use crate::db::ports::{self, FixedIp, Port};
use crate::db::subnets::Subnet;
use crate::db::{Conn, Write};
use crate::domain::tags::Tagged;
use crate::error::{NetworkError, Result};

/// What a port asks of one subnet (or one IP version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpRequest {
    /// This address, from this subnet.
    Fixed { subnet: SubnetId, ip: IpAddr },
    /// The lowest free address of the first of these subnets that has one.
    AnyOf(Vec<SubnetId>),
}

/// Upper bound on retries; every retry means another request committed, so
/// this is only reached by a pathological number of racing writers.
const MAX_ATTEMPTS: usize = 500;

/// How many of the lowest free addresses a retry picks from.
pub const SPREAD_WINDOW: u128 = 64;

enum Attempt {
    Done(Vec<Port>),
    Retry,
    /// The generated MAC of this port is taken on its network.
    NewMac(usize),
}

/// One port of a (bulk) create: the row, its address requests and tags.
pub struct NewPort {
    pub port: Port,
    pub requests: Vec<IpRequest>,
    pub mac_generated: bool,
    pub tags: Vec<String>,
}

/// Writes `port` (its `fixed_ips` are ignored and filled from `requests`)
/// with its addresses and security groups, all or nothing.
pub async fn create_port(
    db: &Db,
    port: Port,
    requests: &[IpRequest],
    subnets: &HashMap<SubnetId, Subnet>,
    mac_generated: bool,
    tags: &[String],
) -> Result<Port> {
    let new = vec![NewPort {
        port,
        requests: requests.to_vec(),
        mac_generated,
        tags: tags.to_vec(),
    }];
    let mut done = create_ports(db, new, subnets).await?;
    done.pop()
        .ok_or_else(|| NetworkError::internal("a port create wrote no port"))
}

/// Writes several ports (a bulk create) in one transaction: every port with
/// its addresses, or none. `subnets` holds the subnets of all their
/// networks. A failure of any port (an address in use, none left) is the
/// answer for all.
pub async fn create_ports(
    db: &Db,
    mut new: Vec<NewPort>,
    subnets: &HashMap<SubnetId, Subnet>,
) -> Result<Vec<Port>> {
    for attempt in 0..MAX_ATTEMPTS {
        match try_create(db, &new, subnets, attempt > 0).await? {
            Attempt::Done(p) => return Ok(p),
            Attempt::Retry => tokio::task::yield_now().await,
            Attempt::NewMac(i) if new[i].mac_generated => {
                new[i].port.mac_address = crate::domain::port::random_mac()
            }
            Attempt::NewMac(i) => {
                return Err(NetworkError::MacAddressInUse {
                    net: new[i].port.network_id.to_string(),
                    mac: new[i].port.mac_address.clone(),
                })
            }
        }
    }
    Err(NetworkError::Conflict(
        "Too many concurrent address allocations; please retry.".to_owned(),
    ))
}

async fn try_create(
    db: &Db,
    new: &[NewPort],
    subnets: &HashMap<SubnetId, Subnet>,
    spread: bool,
) -> Result<Attempt> {
    let mut tx = crate::db::begin_write(db).await?;
    let mut done = Vec::with_capacity(new.len());
    for (i, n) in new.iter().enumerate() {
        let port = &n.port;
        // The port row goes first: on SQLite this takes the write lock
        // before anything is read, so the view of taken addresses cannot go
        // stale.
        match ports::port_insert(&mut tx, port).await? {
            Write::Done => {}
            Write::Duplicate => return Ok(Attempt::NewMac(i)),
            Write::Dangling => {
                return Err(NetworkError::NetworkNotFound(port.network_id.to_string()))
            }
            Write::Busy => return Ok(Attempt::Retry),
        }
        let mut fixed = Vec::new();
        for req in &n.requests {
            match claim(&mut tx, port, req, subnets, spread).await? {
                Some(f) => fixed.push(f),
                None => return Ok(Attempt::Retry),
            }
        }
        ports::port_sg_replace(&mut tx, &port.id, &port.security_groups).await?;
        let id = port.id.to_string();
        for t in &n.tags {
            match crate::db::tags::tag_add(&mut tx, Tagged::Port, &id, t).await? {
                Write::Done => {}
                Write::Busy => return Ok(Attempt::Retry),
                w @ (Write::Duplicate | Write::Dangling) => {
                    return Err(w.unexpected("tagging a port"))
                }
            }
        }
        let mut p = port.clone();
        fixed.sort_by_key(|f: &FixedIp| f.ip_address);
        p.fixed_ips = fixed;
        done.push(p);
    }
    match crate::db::commit(tx).await? {
        Write::Done => {}
        Write::Busy | Write::Duplicate => return Ok(Attempt::Retry),
        w @ Write::Dangling => return Err(w.unexpected("committing a port")),
    }
    Ok(Attempt::Done(done))
}

/// Claims one address; `None` means "lost a race, start again". `spread`:
/// a random one of the first free addresses rather than the lowest.
pub(crate) async fn claim(
    conn: &mut Conn,
    port: &Port,
    req: &IpRequest,
    subnets: &HashMap<SubnetId, Subnet>,
    spread: bool,
) -> Result<Option<FixedIp>> {
    match req {
        IpRequest::Fixed { subnet, ip } => {
            let s = subnets
                .get(subnet)
                .ok_or_else(|| NetworkError::SubnetNotFound(subnet.to_string()))?;
            check_in_subnet(&s.cidr, *ip)?;
            match ports::allocation_insert(conn, &port.network_id, subnet, *ip, &port.id).await? {
                Write::Done => Ok(Some(FixedIp {
                    subnet_id: *subnet,
                    ip_address: *ip,
                })),
                Write::Duplicate => Err(NetworkError::IpAddressInUse {
                    ip: ip.to_string(),
                    subnet: subnet.to_string(),
                }),
                Write::Busy => Ok(None),
                Write::Dangling => Err(NetworkError::SubnetNotFound(subnet.to_string())),
            }
        }
        IpRequest::AnyOf(candidates) => {
            for sid in candidates {
                let Some(s) = subnets.get(sid) else { continue };
                let taken: BTreeSet<IpAddr> = ports::allocations_for_subnet(conn, sid)
                    .await?
                    .into_iter()
                    .collect();
                let picked = if spread {
                    let n = rand::thread_rng().gen_range(0..SPREAD_WINDOW);
                    nth_free(&s.allocation_pools, &taken, n)
                } else {
                    None
                };
                let Some(ip) = picked.or_else(|| next_free(&s.allocation_pools, &taken)) else {
                    continue;
                };
                return match ports::allocation_insert(conn, &port.network_id, sid, ip, &port.id)
                    .await?
                {
                    Write::Done => Ok(Some(FixedIp {
                        subnet_id: *sid,
                        ip_address: ip,
                    })),
                    Write::Duplicate | Write::Busy => Ok(None),
                    Write::Dangling => Err(NetworkError::SubnetNotFound(sid.to_string())),
                };
            }
            Err(NetworkError::IpAddressGenerationFailure(
                port.network_id.to_string(),
            ))
        }
    }
}

/// Writes a port's changed attributes and groups and, when `ips` is given,
/// replaces its addresses with those requests, all or nothing.
pub async fn update_port(
    db: &Db,
    port: &Port,
    ips: Option<(&[IpRequest], &HashMap<SubnetId, Subnet>)>,
) -> Result<()> {
    for attempt in 0..MAX_ATTEMPTS {
        let mut tx = crate::db::begin_write(db).await?;
        ports::port_update(&mut tx, port).await?;
        ports::port_sg_replace(&mut tx, &port.id, &port.security_groups).await?;
        if let Some((requests, subnets)) = ips {
            ports::allocations_delete_for_port(&mut tx, &port.id).await?;
            let mut lost = false;
            for req in requests {
                if claim(&mut tx, port, req, subnets, attempt > 0)
                    .await?
                    .is_none()
                {
                    lost = true;
                    break;
                }
            }
            if lost {
                drop(tx);
                tokio::task::yield_now().await;
                continue;
            }
        }
        match crate::db::commit(tx).await? {
            Write::Done => return Ok(()),
            Write::Busy => continue,
            w @ (Write::Duplicate | Write::Dangling) => {
                return Err(w.unexpected("committing a port update"))
            }
        }
    }
    Err(NetworkError::Conflict(
        "Too many concurrent address allocations; please retry.".to_owned(),
    ))
}
