//! stratus-compute
