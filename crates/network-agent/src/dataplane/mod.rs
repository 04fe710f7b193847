//! Linux dataplane primitives the agents are built from: network
//! namespaces, bridges, veth pairs, taps and addresses. Every operation is
//! idempotent ("ensure" / "remove"), so an agent can replay a whole network's
//! state after a restart or a duplicated bus message.
//!
//! Links and addresses go through netlink (`rtnetlink`). Namespaces are made
//! with `ip netns` so that they are ordinary named namespaces under
//! /run/netns that operators can inspect with the usual tools; code that must
//! run inside one (a netlink socket, the metadata proxy's listener) is run on
//! a short-lived thread that `setns`-es into it (see [`netns`]).

pub mod cmd;
pub mod link;
pub mod names;
pub mod netns;
