//! Identity's own ids beside the shared ones (users, projects, domains,
//! roles live in stratus-common because other services carry them).

stratus_common::keystone_id!(
    /// A group of users.
    GroupId
);
stratus_common::keystone_id!(
    /// A catalog service.
    ServiceId
);
stratus_common::keystone_id!(
    /// A catalog endpoint.
    EndpointId
);
