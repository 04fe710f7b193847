//! The documents the metadata API serves, as plain functions of an instance
//! and the configuration: `meta_data.json`, `network_data.json`, the vendor
//! data, and the EC2 tree. No I/O here.

pub mod ec2;
mod guest_net;
pub mod meta_data;
pub mod network_data;
pub mod vendor;

/// Host name as the guest sees it: `<hostname>.<dhcp_domain>` (Nova's
/// `_get_hostname`).
pub fn full_hostname(hostname: &str, dhcp_domain: &str) -> String {
    if dhcp_domain.is_empty() {
        hostname.to_owned()
    } else {
        format!("{hostname}.{dhcp_domain}")
    }
}
