//! stratus-identity
