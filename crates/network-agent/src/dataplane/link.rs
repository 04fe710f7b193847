//! Links and addresses over netlink, in the root namespace or inside a named
//! one. All operations are idempotent: "ensure" succeeds when the object is
//! already as wanted, "remove" when it is already gone.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth};

use crate::dataplane::{cmd, netns};
use crate::error::{AgentError, Result};

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const EADDRNOTAVAIL: i32 = 99;

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| c.get().abs()),
        _ => None,
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(mac: &str) -> Result<Vec<u8>> {
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| AgentError::BadRequest(format!("invalid MAC address {mac:?}")))?;
    if bytes.len() != 6 {
        return Err(AgentError::BadRequest(format!(
            "invalid MAC address {mac:?}"
        )));
    }
    Ok(bytes)
}

/// A netlink connection bound to one network namespace.
pub struct Links {
    handle: Handle,
}

impl Links {
    /// A connection in the agent's own (root) namespace.
    pub fn host() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// A connection whose socket lives in the named namespace; it is driven
    /// by the caller's runtime.
    pub async fn in_namespace(ns: &str) -> Result<Self> {
        let rt = tokio::runtime::Handle::current();
        let (conn, handle, _) = netns::run_in(ns, move || {
            let _guard = rt.enter();
            rtnetlink::new_connection()
        })
        .await??;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    async fn get(&self, name: &str) -> Result<Option<LinkMessage>> {
        let mut req = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match req.try_next().await {
            Ok(m) => Ok(m),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The interface index of `name`, if it exists.
    pub async fn index(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.get(name).await?.map(|m| m.header.index))
    }

    async fn require(&self, name: &str) -> Result<u32> {
        self.index(name)
            .await?
            .ok_or_else(|| AgentError::Dataplane(format!("no interface {name}")))
    }

    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.index(name).await?.is_some())
    }

    /// The bridge's index of the port `name` is attached to, if any.
    pub async fn controller(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.get(name).await?.and_then(|m| {
            m.attributes.iter().find_map(|a| match a {
                LinkAttribute::Controller(i) => Some(*i),
                _ => None,
            })
        }))
    }

    /// Names of the interfaces attached to `bridge` (empty if it is absent).
    pub async fn ports_of(&self, bridge: &str) -> Result<Vec<String>> {
        let Some(bidx) = self.index(bridge).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut s = self.handle.link().get().execute();
        while let Some(m) = s.try_next().await? {
            let on_bridge = m
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::Controller(i) if *i == bidx));
            if on_bridge {
                if let Some(name) = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                }) {
                    out.push(name);
                }
            }
        }
        Ok(out)
    }

    /// A bridge without addresses, up.
    pub async fn ensure_bridge(&self, name: &str, mtu: u32) -> Result<()> {
        if self.index(name).await?.is_none() {
            let msg = LinkBridge::new(name).mtu(mtu).build();
            if let Err(e) = self.handle.link().add(msg).execute().await {
                if errno(&e) != Some(EEXIST) {
                    return Err(e.into());
                }
            }
        }
        self.set_up(name).await
    }

    /// A veth pair whose `ns_end` lives in namespace `ns`; `host_end` stays
    /// here. A half-made pair (peer not in the namespace) is rebuilt.
    pub async fn ensure_veth_into(&self, host_end: &str, ns_end: &str, ns: &str) -> Result<()> {
        let inside = Links::in_namespace(ns).await?;
        if self.exists(host_end).await? {
            if inside.exists(ns_end).await? {
                return Ok(());
            }
            if !self.exists(ns_end).await? {
                // The peer is gone or elsewhere: start again.
                self.remove(host_end).await?;
            }
        }
        if !self.exists(host_end).await? {
            self.handle
                .link()
                .add(LinkVeth::new(host_end, ns_end).build())
                .execute()
                .await?;
        }
        let file = File::open(netns::path(ns))?;
        let idx = self.require(ns_end).await?;
        self.handle
            .link()
            .set(
                LinkUnspec::new_with_index(idx)
                    .setns_by_fd(file.as_raw_fd())
                    .build(),
            )
            .execute()
            .await?;
        drop(file);
        Ok(())
    }

    /// A persistent tap device (as a hypervisor would make for a guest). Made
    /// with `ip tuntap`: creating a tap is an ioctl on /dev/net/tun, not a
    /// netlink request.
    pub async fn ensure_tap(&self, name: &str) -> Result<()> {
        if !self.exists(name).await? {
            cmd::run("ip", &["tuntap", "add", "dev", name, "mode", "tap"]).await?;
        }
        Ok(())
    }

    pub async fn set_up(&self, name: &str) -> Result<()> {
        let idx = self.require(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).up().build())
            .execute()
            .await?;
        Ok(())
    }

    pub async fn set_mtu(&self, name: &str, mtu: u32) -> Result<()> {
        let idx = self.require(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).mtu(mtu).build())
            .execute()
            .await?;
        Ok(())
    }

    pub async fn set_mac(&self, name: &str, mac: &str) -> Result<()> {
        let bytes = parse_mac(mac)?;
        let idx = self.require(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).address(bytes).build())
            .execute()
            .await?;
        Ok(())
    }

    /// Attaches `name` to `bridge` (no-op if already there).
    pub async fn set_controller(&self, name: &str, bridge: &str) -> Result<()> {
        let bidx = self.require(bridge).await?;
        if self.controller(name).await? == Some(bidx) {
            return Ok(());
        }
        let idx = self.require(name).await?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(idx).controller(bidx).build())
            .execute()
            .await?;
        Ok(())
    }

    /// Deletes the link if it exists.
    pub async fn remove(&self, name: &str) -> Result<()> {
        let Some(idx) = self.index(name).await? else {
            return Ok(());
        };
        match self.handle.clone().link().del(idx).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The addresses on `name` as (address, prefix length).
    pub async fn addresses(&self, name: &str) -> Result<Vec<(IpAddr, u8)>> {
        let idx = self.require(name).await?;
        let mut out = Vec::new();
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(idx)
            .execute();
        while let Some(m) = s.try_next().await? {
            for a in &m.attributes {
                if let AddressAttribute::Address(ip) = a {
                    out.push((*ip, m.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// Makes `name` carry exactly `wanted` (IPv6 link-local addresses, which
    /// the kernel manages, are left alone).
    pub async fn sync_addresses(&self, name: &str, wanted: &[(IpAddr, u8)]) -> Result<()> {
        let idx = self.require(name).await?;
        let have = self.addresses(name).await?;
        for (ip, len) in wanted {
            if have.contains(&(*ip, *len)) {
                continue;
            }
            if let Err(e) = self.handle.address().add(idx, *ip, *len).execute().await {
                if errno(&e) != Some(EEXIST) {
                    return Err(e.into());
                }
            }
        }
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(idx)
            .execute();
        let mut stale = Vec::new();
        while let Some(m) = s.try_next().await? {
            let addr = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(ip) = addr {
                let link_local =
                    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
                if !link_local && !wanted.contains(&(ip, m.header.prefix_len)) {
                    stale.push(m);
                }
            }
        }
        for m in stale {
            if let Err(e) = self.handle.address().del(m).execute().await {
                if errno(&e) != Some(EADDRNOTAVAIL) {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }
}
