//! stratus-network
