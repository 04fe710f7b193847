//! The seed's table of how one launch travels through the cloud
//! (`../shared/seed/request-flow.md`), in its own words: `stratus trace`
//! prints each recorded event under its step's row.

/// One row of the seed's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedStep {
    pub number: u16,
    pub from: &'static str,
    pub to: &'static str,
    pub description: &'static str,
}

/// The step numbered `n`, if the seed has it.
pub fn step(n: u16) -> Option<&'static SeedStep> {
    STEPS.iter().find(|s| s.number == n)
}

/// Every step of the seed, in order.
pub const STEPS: &[SeedStep] = &[
    SeedStep {
        number: 1,
        from: "Client",
        to: "Keystone",
        description: "Authentication request",
    },
    SeedStep {
        number: 2,
        from: "Keystone",
        to: "Token Store",
        description: "Save token",
    },
    SeedStep {
        number: 3,
        from: "Keystone",
        to: "Client",
        description: "Pass authentication token",
    },
    SeedStep {
        number: 4,
        from: "Client",
        to: "Nova.api",
        description: "Start instance",
    },
    SeedStep {
        number: 5,
        from: "Nova.api",
        to: "Database",
        description: "Create initial entry for instance",
    },
    SeedStep {
        number: 6,
        from: "Nova.api",
        to: "RabbitMQ",
        description: "Make rpc.cast to request the new instance",
    },
    SeedStep {
        number: 7,
        from: "Nova.api",
        to: "Client",
        description: "Instance request complete",
    },
    SeedStep {
        number: 8,
        from: "Nova.scheduler",
        to: "RabbitMQ",
        description: "Subscribe new instance request",
    },
    SeedStep {
        number: 9,
        from: "Nova.scheduler",
        to: "Database",
        description: "Read filtering and weighing information",
    },
    SeedStep {
        number: 10,
        from: "Nova.scheduler",
        to: "Database",
        description: "Read cluster state",
    },
    SeedStep {
        number: 11,
        from: "Nova.scheduler",
        to: "Database",
        description: "Save instance state",
    },
    SeedStep {
        number: 12,
        from: "Nova.scheduler",
        to: "RabbitMQ",
        description: "Rpc.cast to launch instance",
    },
    SeedStep {
        number: 13,
        from: "Nova-compute",
        to: "RabbitMQ",
        description: "Subscribe new instance request",
    },
    SeedStep {
        number: 14,
        from: "Nova-compute",
        to: "RabbitMQ",
        description: "Rpc.call to Nova-conductor to fetch the instance information",
    },
    SeedStep {
        number: 15,
        from: "Nova-conductor",
        to: "RabbitMQ",
        description: "Subscribe new instance request",
    },
    SeedStep {
        number: 16,
        from: "Nova-conductor",
        to: "RabbitMQ",
        description: "Read instance state",
    },
    SeedStep {
        number: 17,
        from: "Nova-conductor",
        to: "RabbitMQ",
        description: "Publish new instance state",
    },
    SeedStep {
        number: 18,
        from: "Nova-compute",
        to: "RabbitMQ",
        description: "Subscribe new instance request",
    },
    SeedStep {
        number: 19,
        from: "Nova-compute",
        to: "Glance.api",
        description: "[REST] get Image URI by Image ID from glance",
    },
    SeedStep {
        number: 20,
        from: "Glance.api",
        to: "Nova-compute",
        description: "Return image URI",
    },
    SeedStep {
        number: 21,
        from: "Nova-compute",
        to: "Ceph_mon",
        description: "Retrieve cluster map",
    },
    SeedStep {
        number: 22,
        from: "Ceph_mon",
        to: "Nova-compute",
        description: "Return cluster map",
    },
    SeedStep {
        number: 23,
        from: "Nova-compute",
        to: "Ceph_rgw",
        description: "[REST] request for object",
    },
    SeedStep {
        number: 24,
        from: "Ceph_rgw",
        to: "Ceph_osd",
        description: "[Socket] get object",
    },
    SeedStep {
        number: 25,
        from: "Ceph_rgw",
        to: "Nova-compute",
        description: "Return object",
    },
    SeedStep {
        number: 26,
        from: "Nova-compute",
        to: "Neutron-server",
        description: "Allocate and configure the network for the instance",
    },
    SeedStep {
        number: 27,
        from: "Neutron-server",
        to: "RabbitMQ",
        description: "Request IP address",
    },
    SeedStep {
        number: 28,
        from: "Neutron-server",
        to: "RabbitMQ",
        description: "Request L2 configuration",
    },
    SeedStep {
        number: 29,
        from: "Neutron-DHCP-agent",
        to: "RabbitMQ",
        description: "Read request IP address",
    },
    SeedStep {
        number: 30,
        from: "Neutron-DHCP-agent",
        to: "Dnsmasq",
        description: "Allocate IP address",
    },
    SeedStep {
        number: 31,
        from: "Dnsmasq",
        to: "Neutron-DHCP-agent",
        description: "Reply",
    },
    SeedStep {
        number: 32,
        from: "Neutron-DHCP-agent",
        to: "RabbitMQ",
        description: "Reply IP address",
    },
    SeedStep {
        number: 33,
        from: "Neutron-server",
        to: "RabbitMQ",
        description: "Read IP address",
    },
    SeedStep {
        number: 34,
        from: "Neutron-L2-Agent",
        to: "RabbitMQ",
        description: "Read request for L2 configuration",
    },
    SeedStep {
        number: 35,
        from: "Neutron-L2-Agent",
        to: "Libvirt",
        description: "Configure L2",
    },
    SeedStep {
        number: 36,
        from: "Neutron-L2-Agent",
        to: "RabbitMQ",
        description: "Reply to L2 configuration",
    },
    SeedStep {
        number: 37,
        from: "Neutron-server",
        to: "Database",
        description: "Save instance network state",
    },
    SeedStep {
        number: 38,
        from: "Neutron-server",
        to: "Nova-compute",
        description: "Pass network information",
    },
    SeedStep {
        number: 39,
        from: "Nova-compute",
        to: "Cinder.api",
        description: "[REST] get volume data",
    },
    SeedStep {
        number: 40,
        from: "Cinder.api",
        to: "Keystone",
        description: "Validate token and permissions",
    },
    SeedStep {
        number: 41,
        from: "Keystone",
        to: "Cinder.api",
        description: "Update authentication headers with roles and acl",
    },
    SeedStep {
        number: 42,
        from: "Cinder.api",
        to: "Nova-compute",
        description: "Return volume information",
    },
    SeedStep {
        number: 43,
        from: "Nova-compute",
        to: "Libvirt",
        description: "Start VM",
    },
    SeedStep {
        number: 44,
        from: "Nova-compute",
        to: "Libvirt",
        description: "Update port information",
    },
    SeedStep {
        number: 45,
        from: "Nova-compute",
        to: "RabbitMQ",
        description: "Rpc.call to Nova-conductor to fetch the instance information",
    },
    SeedStep {
        number: 46,
        from: "Nova-conductor",
        to: "RabbitMQ",
        description: "Subscribe new instance request",
    },
    SeedStep {
        number: 47,
        from: "Nova-conductor",
        to: "RabbitMQ",
        description: "Publish new instance state",
    },
    SeedStep {
        number: 48,
        from: "Nova-compute",
        to: "Libvirt",
        description: "Pass volume information",
    },
    SeedStep {
        number: 49,
        from: "Libvirt",
        to: "Ceph_mon",
        description: "Get cluster map",
    },
    SeedStep {
        number: 50,
        from: "Ceph_mon",
        to: "Libvirt",
        description: "Return cluster map",
    },
    SeedStep {
        number: 51,
        from: "Libvirt",
        to: "Ceph_osd",
        description: "Mount volume",
    },
    SeedStep {
        number: 52,
        from: "VM-instance",
        to: "Neutron_metadata_proxy",
        description: "http rest 169.254.169.254",
    },
    SeedStep {
        number: 53,
        from: "Neutron_metadata_proxy",
        to: "Nova-api-metadata",
        description: "http rest add uuid into X-headers",
    },
    SeedStep {
        number: 54,
        from: "Neutron_metadata_proxy",
        to: "VM-instance",
        description: "Return metadata",
    },
    SeedStep {
        number: 55,
        from: "Client",
        to: "Nova-api",
        description: "Poll instance state",
    },
    SeedStep {
        number: 56,
        from: "Nova.api",
        to: "Database",
        description: "Read instance state",
    },
    SeedStep {
        number: 57,
        from: "Database",
        to: "Nova.api",
        description: "Return state",
    },
    SeedStep {
        number: 58,
        from: "Nova-api",
        to: "Client",
        description: "Return instance state",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_has_58_steps_in_order() {
        assert_eq!(STEPS.len(), 58);
        for (i, s) in STEPS.iter().enumerate() {
            assert_eq!(usize::from(s.number), i + 1);
        }
        assert_eq!(step(19).map(|s| s.to), Some("Glance.api"));
        assert!(step(59).is_none());
    }
}
